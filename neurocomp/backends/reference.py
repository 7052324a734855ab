"""Float64 simulation of a Graph with the discrete-time semantics of neurocomp.ir.graph.

Run on the float Graph it shows what quantisation and mapping cost; run on the
quantised Graph it must equal the emulator wherever the quantiser reported `exact`.
Analog input is encoded per Input node (neurocomp.encoding): rate or seeded Poisson
spikes, or, for encoding "current", the real values themselves every tick.
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


def _drive(layer: Layer, prev: Mapping[str, torch.Tensor]) -> torch.Tensor:
    total = torch.from_numpy(np.broadcast_to(np.asarray(layer.neuron.bias), layer.shape).copy())
    for p in layer.projections:
        x = prev[p.source]
        for op in p.chain:
            x = ops.forward(op, x)
        total = total + x.reshape((x.shape[0],) + layer.shape)
    return total


def _update(layer: Layer, v: torch.Tensor, drive: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    n = layer.neuron
    if isinstance(n, LIF):
        v = torch.from_numpy(np.broadcast_to(np.asarray(n.decay), layer.shape).copy()) * v
    v = v + drive
    if isinstance(n, Readout):
        return v, torch.zeros_like(v)
    theta = torch.from_numpy(np.broadcast_to(np.asarray(n.threshold), layer.shape).copy())
    fired = v >= theta
    v = torch.where(fired, torch.zeros_like(v) if n.reset == "zero" else v - theta, v.clamp(min=n.v_min))
    return v, fired.to(torch.float64)


def run(net: Network, inputs: Mapping[str, np.ndarray], ticks: int | None = None,
        record: Sequence[str] | None = None, seed: int = 0) -> RunResult:
    x = {i.name: input_spikes(inputs[i.name], i.shape, ticks, i.encoding, seed) for i in net.inputs}
    batch, ticks = next(iter(x.values())).shape[:2]
    zeros = lambda shape: torch.zeros((batch,) + tuple(shape), dtype=torch.float64)  # noqa: E731
    prev = {name: zeros(net.source_shape(name)) for name in [i.name for i in net.inputs] + [l.name for l in net.layers]}
    v = {l.name: zeros(l.shape) + torch.from_numpy(np.broadcast_to(np.asarray(l.neuron.v_init), l.shape).copy()) for l in net.layers}
    keep = [l for l in net.layers if record is None or l.name in record]
    spikes = {l.name: np.zeros((batch, ticks) + l.shape, np.uint8) for l in keep if not isinstance(l.neuron, Readout)}
    pots = {l.name: np.zeros((batch, ticks) + l.shape) for l in keep if isinstance(l.neuron, Readout)}
    start = time.perf_counter()
    for t in range(ticks):
        cur = {}
        for layer in net.layers:
            v[layer.name], cur[layer.name] = _update(layer, v[layer.name], _drive(layer, prev))
        for name, arr in x.items():
            cur[name] = torch.from_numpy(arr[:, t].astype(np.float64))
        prev = cur
        for name in spikes:
            spikes[name][:, t] = cur[name].numpy()
        for name in pots:
            pots[name][:, t] = v[name].numpy()
    return RunResult(spikes, pots, {}, 0, ticks, batch, time.perf_counter() - start)
