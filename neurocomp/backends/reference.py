"""Float64 simulation of a Graph with the discrete-time semantics of neurocomp.ir.graph.

Run on the float Graph it shows what quantisation and mapping cost; run on the
quantised Graph it must equal the emulator wherever the quantiser reported `exact`.
Analog input is encoded per Input node (neurocomp.encoding): rate or seeded Poisson
spikes, or, for encoding "current", the real values themselves every tick.

The graph is feed-forward, so it runs layer by layer rather than tick by tick: a
layer's drive for every tick comes from one batched pass of its linear chains over
its sources' whole output (shifted by the edge's one tick), and only the neuron
update loops over ticks. Same semantics, a factor of `ticks` fewer op calls.
"""
from __future__ import annotations

import time
from typing import Mapping, Sequence

import numpy as np
import torch

from neurocomp.backends.emulator import RunResult
from neurocomp.encoding import input_spikes
from neurocomp.ir import ops
from neurocomp.ir.graph import LIF, Readout
from neurocomp.ir.layers import Layer, Network


CHUNK = 1 << 22  # values per batched linear pass, to bound memory


def _drive(layer: Layer, outs: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """(batch, ticks, *shape): bias plus every projection of its sources' outputs one tick earlier."""
    first = outs[layer.projections[0].source]
    batch, ticks = first.shape[:2]
    total = torch.from_numpy(np.broadcast_to(np.asarray(layer.neuron.bias), layer.shape).copy())
    total = total.expand((batch, ticks) + layer.shape).clone()
    for p in layer.projections:
        src = outs[p.source]
        late = torch.cat([torch.zeros_like(src[:, :1]), src[:, :-1]], dim=1).reshape((batch * ticks,) + src.shape[2:])
        step = max(1, CHUNK // max(p.n_in, p.n_out))
        parts = []
        for start in range(0, batch * ticks, step):
            x = late[start:start + step]
            for op in p.chain:
                x = ops.forward(op, x)
            parts.append(x)
        total += torch.cat(parts).reshape((batch, ticks) + layer.shape)
    return total


def _param(layer: Layer, name: str) -> torch.Tensor:
    return torch.from_numpy(np.broadcast_to(np.asarray(getattr(layer.neuron, name)), layer.shape).copy())


def _integrate(layer: Layer, drive: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Potentials and spikes (float64), both (batch, ticks, *shape), of the neuron update over all ticks."""
    n = layer.neuron
    v = _param(layer, "v_init").expand(drive[:, 0].shape).clone()
    decay = _param(layer, "decay") if isinstance(n, LIF) else None
    theta = None if isinstance(n, Readout) else _param(layer, "threshold")
    pots, spikes = torch.empty_like(drive), torch.zeros_like(drive)
    for t in range(drive.shape[1]):
        v = v * decay + drive[:, t] if decay is not None else v + drive[:, t]
        if theta is not None:
            fired = v >= theta
            spikes[:, t] = fired.to(torch.float64)
            rest = v.clamp(min=n.v_min) if np.isfinite(n.v_min) else v
            v = torch.where(fired, torch.zeros_like(v) if n.reset == "zero" else v - theta, rest)
        pots[:, t] = v
    return pots, spikes


def run(net: Network, inputs: Mapping[str, np.ndarray], ticks: int | None = None,
        record: Sequence[str] | None = None, seed: int = 0) -> RunResult:
    x = {i.name: input_spikes(inputs[i.name], i.shape, ticks, i.encoding, seed) for i in net.inputs}
    batch, ticks = next(iter(x.values())).shape[:2]
    outs = {name: torch.from_numpy(arr.astype(np.float64)) for name, arr in x.items()}
    spikes, pots = {}, {}
    start = time.perf_counter()
    for layer in net.layers:
        v, s = _integrate(layer, _drive(layer, outs))
        outs[layer.name] = s
        if record is None or layer.name in record:
            if isinstance(layer.neuron, Readout):
                pots[layer.name] = v.numpy()
            else:
                spikes[layer.name] = s.numpy().astype(np.uint8)
    return RunResult(spikes, pots, {}, 0, ticks, batch, time.perf_counter() - start)
