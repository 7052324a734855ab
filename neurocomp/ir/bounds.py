"""Worst-case input per tick: interval arithmetic over a projection's chain of linear ops.

Range checks (does a potential or current register overflow?) need, per neuron, the largest rise and
fall one tick of input can cause. Inputs lie in [-low, high] (spikes: [0, 1]; signed graded payloads:
[-p, p]); each op maps the interval of its input to that of its output, split into its positive and
negative parts. Exact for a chain with one signed op; an upper bound for several.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from neurocomp.ir import ops
from neurocomp.ir.graph import Affine, Conv2d, Node, Scale
from neurocomp.ir.layers import Layer, Projection


def _signed_parts(op: Node) -> tuple[Node, Node] | None:
    """(positive part, magnitude of the negative part) of an op with values; None for the others."""
    if isinstance(op, Scale):
        s = np.asarray(op.scale, dtype=np.float64)
        return dataclasses.replace(op, scale=np.maximum(s, 0)), dataclasses.replace(op, scale=np.maximum(-s, 0))
    if isinstance(op, (Affine, Conv2d)):
        w = np.asarray(op.weight, dtype=np.float64)
        return (dataclasses.replace(op, weight=np.maximum(w, 0), bias=None),
                dataclasses.replace(op, weight=np.maximum(-w, 0), bias=None))
    return None


def _sums_exactly(op: Conv2d, high: float, low: float) -> bool:
    """Are the op's weights and the input's bounds integers, so that its sums are exact in any order (float64
    holds integers to 2^53)? Read on its live taps (a fan-in part's kernel is mostly zeros)."""
    w = op.live_taps[1]
    top = np.abs(w).sum() * max(abs(high), abs(low))
    return float(high).is_integer() and float(low).is_integer() and top < 2 ** 53 and np.array_equal(w, np.rint(w))


def _one_channel(op: Conv2d) -> tuple[Conv2d, Conv2d]:
    """The positive part and the magnitude of the negative part of the conv on a constant input, as convs on one
    channel of it: each output sums its group's input channels, all equal, so their weights can be summed first (a
    paper-size conv's bounds in 1/C_in of the work), here from its live taps, exactly (_sums_exactly)."""
    live, kept = op.live_taps
    kh, kw = op.weight.shape[2:]
    position = np.zeros((live.size, kh * kw))
    position[np.arange(live.size), live % (kh * kw)] = 1.0

    def summed(w: np.ndarray) -> Conv2d:
        return Conv2d(op.name, (w @ position).reshape(op.weight.shape[0], 1, kh, kw), None, op.stride, op.padding)
    return summed(np.maximum(kept, 0)), summed(np.maximum(-kept, 0))


def projection_bounds(p: Projection, high: float = 1.0, low: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Per output: the largest value and the largest negative value (as a magnitude) the chain can produce
    from inputs in [-low, high], biases left out."""
    import torch   # the ops' forward runs on tensors; importing the module (a target's hooks) needs no torch

    hi = torch.full((1,) + p.shapes[0], float(high), dtype=torch.float64)
    lo = None if low == 0 else torch.full_like(hi, float(low))    # None: zero (spikes), skips half the passes
    for k, op in enumerate(p.chain):
        if k == 0 and isinstance(op, Conv2d) and len(p.shapes[0]) == 3 and _sums_exactly(op, high, low):
            parts = _one_channel(op)
            hi, lo = hi[:, :1], None if lo is None else lo[:, :1]
        else:
            parts = _signed_parts(op)
        if parts is None:
            hi, lo = ops.forward(op, hi), None if lo is None else ops.forward(op, lo)
        elif lo is None:
            hi, lo = ops.forward(parts[0], hi), ops.forward(parts[1], hi)
        else:
            pos, neg = parts
            hi, lo = ops.forward(pos, hi) + ops.forward(neg, lo), ops.forward(pos, lo) + ops.forward(neg, hi)
    return hi.numpy().ravel(), np.zeros(hi.numel()) if lo is None else lo.numpy().ravel()


def drive_bounds(layer: Layer, peaks: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Per neuron: the largest rise and fall (magnitude) of its summed input in one tick. `peaks` gives the
    largest |value| of a signed graded source; any other source sends spikes in {0, 1}."""
    up, down = np.zeros(layer.size), np.zeros(layer.size)
    for p in layer.projections:
        peak = peaks.get(p.source)
        hi, lo = projection_bounds(p, 1.0, 0.0) if peak is None else projection_bounds(p, peak, peak)
        up, down = up + hi, down + lo
    return up, down
