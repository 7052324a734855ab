"""Compare the float SNN (reference backend) with the ANN, and calibrate gains and biases by the gap.

Layer l (1-based depth) of a run of T + depth ticks is read over ticks [0, T + l): its
T ticks of input plus the l ticks it waits for it. IF layers give spike counts / T,
comparable with the ANN's clip(a / lambda, 0, 1); the Readout gives its potential at
tick T + l - 1 divided by T, comparable with the ANN's logits.
"""
from __future__ import annotations

import numpy as np

from neurocomp.backends import reference
from neurocomp.convert.ann import Segment
from neurocomp.convert.build import INPUT, build_graph, layer_depths, layer_names
from neurocomp.convert.normalize import with_bias_shift, with_gain
from neurocomp.convert.options import ConvertOptions
from neurocomp.ir.layers import lower


def snn_outputs(plan: tuple[Segment, ...], x: np.ndarray, opts: ConvertOptions) -> list[np.ndarray]:
    """Per layer, (samples, *shape) rates (IF) or potential / T (Readout), in batches of opts.batch_size."""
    T, names, depths = opts.timesteps, layer_names(plan), layer_depths(plan)
    net = lower(build_graph(plan, x.shape[1:], opts))
    parts: list[list[np.ndarray]] = [[] for _ in names]
    for k, start in enumerate(range(0, len(x), opts.batch_size)):
        res = reference.run(net, {INPUT: x[start:start + opts.batch_size]}, T + depths[-1], seed=opts.seed + k)
        for depth, name in zip(depths, names):
            if name in res.spikes:
                parts[names.index(name)].append(res.spikes[name][:, : T + depth].sum(axis=1) / T)
            else:
                parts[names.index(name)].append(res.potentials[name][:, T + depth - 1] / T)
    return [np.concatenate(p) for p in parts]


def ann_targets(plan: tuple[Segment, ...], acts: list[np.ndarray], lams: list[np.ndarray]) -> list[np.ndarray]:
    """What each SNN layer should output: clip(a / lambda, 0, 1) for IF layers, the logits for the read-out."""
    out = []
    for seg, a, lam in zip(plan, acts, lams):
        if seg.spiking:
            lam_full = np.repeat(lam, a[0].size // lam.size).reshape(a.shape[1:])
            out.append(np.clip(a / lam_full, 0.0, 1.0))
        else:
            out.append(a)
    return out


def channel_mean(a: np.ndarray, channels: int) -> np.ndarray:
    return a.reshape(a.shape[0], channels, -1).mean(axis=(0, 2))


def channel_slope(snn: np.ndarray, ann: np.ndarray, channels: int) -> np.ndarray:
    """Per channel, the least-squares slope of the SNN output on the ANN target, clipped to [0.5, 2]."""
    a = np.moveaxis(ann.reshape(ann.shape[0], channels, -1), 1, 0).reshape(channels, -1)
    s = np.moveaxis(snn.reshape(snn.shape[0], channels, -1), 1, 0).reshape(channels, -1)
    a, s = a - a.mean(axis=1, keepdims=True), s - s.mean(axis=1, keepdims=True)
    var = (a * a).mean(axis=1)
    slope = np.where(var > 1e-12, (a * s).mean(axis=1) / np.maximum(var, 1e-12), 1.0)
    return np.clip(slope, 0.5, 2.0)


def calibrate(plan: tuple[Segment, ...], x: np.ndarray, targets: list[np.ndarray],
              opts: ConvertOptions) -> tuple[Segment, ...]:
    """Layer by layer (later layers see the fixes), `calibration_rounds` times: for IF layers with
    `calibrate_gain`, divide each channel's weights and bias by the slope of SNN rate on ANN target;
    then shift each channel's bias by E[ANN] - E[SNN] (Li et al.'s light calibration)."""
    plan = tuple(plan)
    for depth in range(len(plan)):
        c = plan[depth].weighted.channels
        for _ in range(opts.calibration_rounds):
            if opts.calibrate_gain and plan[depth].spiking:
                snn = snn_outputs(plan[: depth + 1], x, opts)[depth]
                plan = _replaced(plan, depth, with_gain(plan[depth], 1.0 / channel_slope(snn, targets[depth], c)))
            snn = snn_outputs(plan[: depth + 1], x, opts)[depth]
            gap = channel_mean(targets[depth], c) - channel_mean(snn, c)
            plan = _replaced(plan, depth, with_bias_shift(plan[depth], gap))
    return plan


def _replaced(plan: tuple[Segment, ...], k: int, seg: Segment) -> tuple[Segment, ...]:
    return plan[:k] + (seg,) + plan[k + 1:]


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))
