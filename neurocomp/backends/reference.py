"""Float64 simulation of a Graph with the discrete-time semantics of neurocomp.ir.graph.

Run on the float Graph it shows what quantisation and mapping cost; run on the
quantised Graph it must equal the emulator wherever the quantiser reported `exact`.
Analog input is encoded per Input node (neurocomp.encoding): rate or seeded Poisson
spikes, or, for encoding "current", the real values themselves every tick.

A feed-forward layer runs all ticks at once: its drive for every tick comes from one
batched pass of its linear chains over its sources' whole output (shifted by the
edge's one tick), and only the neuron update loops over ticks -- a factor of `ticks`
fewer op calls. Recurrent layers (a strongly connected group of the layer graph)
take their outside drive the same way and step their inside projections tick by tick.
"""
from __future__ import annotations

import math
import time
from typing import Mapping, Sequence

import networkx as nx
import numpy as np
import torch

from neurocomp.backends.emulator import RunResult
from neurocomp.encoding import input_spikes
from neurocomp.ir import ops, sums
from neurocomp.ir.graph import Readout
from neurocomp.ir.layers import Layer, Network, Projection
from neurocomp.memory import batch_of, require_run


CHUNK = 1 << 22  # values per batched linear pass, to bound memory


def _drive(layer: Layer, outs: Mapping[str, torch.Tensor], projections: Sequence[Projection]) -> torch.Tensor:
    """(batch, ticks, *shape): the projections of their sources' outputs one tick earlier, plus the neuron's
    bias unless it has a current (then the bias goes into v, not the current)."""
    batch, ticks = next(iter(outs.values())).shape[:2]
    bias = np.zeros(()) if np.any(layer.decays()[1]) else np.asarray(layer.neuron.bias)
    total = torch.from_numpy(np.broadcast_to(bias, layer.shape).copy())
    total = total.expand((batch, ticks) + layer.shape).clone()
    for p in projections:
        src = outs[p.source]
        late = torch.cat([torch.zeros_like(src[:, :1]), src[:, :-1]], dim=1).reshape((batch * ticks,) + src.shape[2:])
        step = max(1, CHUNK // max(p.n_in, p.n_out))
        parts = [_chain(p, late[start:start + step]) for start in range(0, batch * ticks, step)]
        total += torch.cat(parts).reshape((batch, ticks) + layer.shape)
    return total


def _chain(p: Projection, x: torch.Tensor) -> torch.Tensor:
    for op in p.chain:
        x = ops.forward(op, x)
    return x


def _param(layer: Layer, name: str) -> torch.Tensor:
    return torch.from_numpy(np.broadcast_to(np.asarray(getattr(layer.neuron, name)), layer.shape).copy())


class _Population:
    """One layer's state and update: i <- decay_u i + x; v <- decay v + i + bias; spike, reset, floor.
    Without a current (decay_u = 0) i is x and the bias already rides in x, as before currents existed."""

    def __init__(self, layer: Layer, batch: int) -> None:
        self.n = layer.neuron
        shape = (batch,) + layer.shape
        decay, decay_u = (torch.from_numpy(d.reshape(layer.shape)) for d in layer.decays())
        self.decay = decay if bool((decay != 1).any()) else None
        self.decay_u = decay_u if bool(decay_u.any()) else None
        self.bias = _param(layer, "bias") if self.decay_u is not None else None  # else inside the drive
        self.theta = None if isinstance(self.n, Readout) else _param(layer, "threshold")
        self.v = _param(layer, "v_init").expand(shape).clone()
        self.i = torch.zeros(shape, dtype=torch.float64)

    def step(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Potential and spikes (float64) after one tick with drive x (batch, *shape) from `_drive`."""
        n = self.n
        v = self.v if self.decay is None else self.v * self.decay
        if self.decay_u is None:
            v = v + x
        else:
            self.i = self.i * self.decay_u + x
            v = v + self.i + self.bias
        if self.theta is None:
            self.v = v
            return v, torch.zeros_like(v)
        fired = v >= self.theta
        rest = v.clamp(min=n.v_min) if np.isfinite(n.v_min) else v
        self.v = torch.where(fired, torch.zeros_like(v) if n.reset == "zero" else v - self.theta, rest)
        return self.v, fired.to(torch.float64)


def _stages(net: Network) -> list[list[Layer]]:
    """Layers grouped into strongly connected groups, in dependency order (layer order among ties)."""
    index = {lay.name: k for k, lay in enumerate(net.layers)}
    dg = nx.DiGraph()
    dg.add_nodes_from(range(len(net.layers)))
    dg.add_edges_from((index[p.source], k) for k, lay in enumerate(net.layers) for p in lay.projections
                      if p.source in index)
    cond = nx.condensation(dg)
    groups = nx.lexicographical_topological_sort(cond, key=lambda c: min(cond.nodes[c]["members"]))
    return [[net.layers[k] for k in sorted(cond.nodes[c]["members"])] for c in groups]


def _run_stage(stage: list[Layer], outs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Potentials of a stage's layers; their spikes go into `outs`. Inside projections step per tick."""
    inside = {lay.name for lay in stage}
    recurrent = len(stage) > 1 or any(p.source in inside for p in stage[0].projections)
    outer = {lay.name: _drive(lay, outs, [p for p in lay.projections if p.source not in inside]) for lay in stage}
    batch, ticks = next(iter(outer.values())).shape[:2]
    pops = {lay.name: _Population(lay, batch) for lay in stage}
    pots = {lay.name: torch.empty_like(outer[lay.name]) for lay in stage}
    outs.update({lay.name: torch.zeros_like(outer[lay.name]) for lay in stage})
    for t in range(ticks):
        for lay in stage:
            x = outer[lay.name][:, t]
            if recurrent and t > 0:
                x = x + sum(_chain(p, outs[p.source][:, t - 1]) for p in lay.projections if p.source in inside)
            pots[lay.name][:, t], outs[lay.name][:, t] = pops[lay.name].step(x)
    return pots


def run(net: Network, inputs: Mapping[str, np.ndarray], ticks: int | None = None,
        record: Sequence[str] | None = None, seed: int = 0) -> RunResult:
    if ticks is not None:  # else the input's own ticks, already in memory
        require_run(sum(lay.size for lay in net.layers), sum(math.prod(i.shape) for i in net.inputs), batch_of(inputs),
                    ticks, 32)
    x = {i.name: input_spikes(inputs[i.name], i.shape, ticks, i.encoding, seed) for i in net.inputs}
    batch, ticks = next(iter(x.values())).shape[:2]
    outs = {name: torch.from_numpy(arr.astype(np.float64)) for name, arr in x.items()}
    spikes, pots = {}, {}
    table = sums.decode(net.graph.metadata)
    record = sums.expand(record, table)
    start = time.perf_counter()
    for stage in _stages(net):
        v = _run_stage(stage, outs)
        for layer in stage:
            if record is None or layer.name in record:
                if isinstance(layer.neuron, Readout):
                    pots[layer.name] = v[layer.name].numpy()
                else:
                    spikes[layer.name] = outs[layer.name].numpy().astype(np.uint8)
    return RunResult(spikes, sums.add(pots, table), {}, 0, ticks, batch, time.perf_counter() - start)
