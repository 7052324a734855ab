"""How far a compiled program is from its source, measured on calibration input.

A layer the quantiser cannot call exact (rounded weights, a fan-in split, a range limit within an
inference) still deserves a number: the program runs on the emulator and the float source Graph on
the reference backend, with the same input spikes, and each layer is compared over the ticks they
share (a program layer that runs `shift` ticks behind its Graph layer, because of fan-in splits or
splitters, is compared shifted).

* spiking layers: `spike_count_error`, the summed |difference| of per-neuron spike counts over the
  source's spike total, and `spikes_differ`, the share of (sample, tick, neuron) entries that differ;
* read-outs: `max_abs_potential_error` in float units and the source's largest |potential|.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from neurocomp.backends.emulator import RunResult
from neurocomp.ir.layers import Network


def graph_depths(net: Network) -> dict[str, int]:
    """Ticks from an input spike to each layer of the Graph (one per edge into a neuron)."""
    depth = {i.name: 0 for i in net.inputs}
    for layer in net.layers:
        depth[layer.name] = 1 + max((depth[p.source] for p in layer.projections if p.source in depth), default=0)
    return depth


def _aligned(program: np.ndarray, source: np.ndarray, shift: int) -> tuple[np.ndarray, np.ndarray]:
    ticks = source.shape[1] - shift
    return program[:, shift:shift + ticks].astype(np.float64), source[:, :ticks].astype(np.float64)


def layer_errors(source_net: Network, program: RunResult, source: RunResult,
                 latency: Mapping[str, int]) -> dict[str, dict[str, Any]]:
    """Per layer of the source network that both runs recorded: its measured error (see module doc)."""
    depth = graph_depths(source_net)
    out: dict[str, dict[str, Any]] = {}
    for layer in source_net.layers:
        name = layer.name
        shift = max(int(latency.get(name, depth[name])) - depth[name], 0)
        if name in source.potentials and name in program.potentials:
            got, want = _aligned(np.asarray(program.potentials[name]), np.asarray(source.potentials[name]), shift)
            out[name] = {"max_abs_potential_error": float(np.abs(got - want).max(initial=0.0)),
                         "source_max_abs_potential": float(np.abs(want).max(initial=0.0)), "shift_ticks": shift}
        elif name in source.spikes and name in program.spikes:
            got, want = _aligned(np.asarray(program.spikes[name]), np.asarray(source.spikes[name]), shift)
            counts = np.abs(got.sum(axis=1) - want.sum(axis=1)).sum()
            out[name] = {"spike_count_error": float(counts / max(want.sum(), 1.0)),
                         "spikes_differ": float(np.mean(got != want)) if got.size else 0.0,
                         "source_spikes": int(want.sum()), "shift_ticks": shift}
    return out
