"""Where a layer's rows repeat: runs of the partition order in which stepping one column of a tile band on
moves every row's inputs by a fixed number of source columns.

A conv's neuron one column to the right reads the same taps one stride further right, unless padding clips
either receptive field. So inside a band of neuron_order, away from the clipped columns, a core's span
shifted by whole columns has the same rows up to a shift of its inputs, and any core predicate that only
counts distinct inputs, synapses per input, weight levels and neurons (the targets' `fits`) answers the
same for both. split.split uses that to repeat a cycle of cores instead of searching every core
again: a layer's cores become a few distinct spans plus offsets, with exactly the spans a full search gives.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurocomp.ir.graph import Conv2d, Crop, Node, Scale, SumPool2d
from neurocomp.ir.layers import Layer, Projection
from neurocomp.partition.split import conv_groups, neuron_order


@dataclass(frozen=True)
class Run:
    """Partition positions [lo, hi) in which position i + step has position i's rows, each projection's
    inputs moved by `shifts[k]` (source indices). `copies` (per position, TrueNorth): each neuron's hardware
    copies, which a core's neuron count includes; their period is the consumers' (checked per cycle)."""

    lo: int
    hi: int
    step: int
    shifts: tuple[int, ...]
    copies: np.ndarray | None = field(default=None, compare=False, repr=False)


def runs(layer: Layer, band: int, copies: np.ndarray | None = None, by_channel: bool = True,
         order: np.ndarray | None = None) -> tuple[tuple[Run, ...], ...]:
    """The repeating runs of neuron_order(layer, band) in two families, each in order: whole bands moved down
    (per conv group, over the bands whose rows no padding clips) and columns moved right (per band, over the
    columns no padding clips); none for a layer whose projections do not all move with its map. `copies`:
    per neuron, in layer order; `by_channel`: neuron_order's; `order`: neuron_order(layer, band, by_channel) where the
    caller has it."""
    rows = [_reach(p, layer.shape, 1) for p in layer.projections]
    cols = [_reach(p, layer.shape, 2) for p in layer.projections]
    if len(layer.shape) != 3 or not cols or any(r is None for r in rows + cols):
        return ()
    ordered = None if copies is None else copies[neuron_order(layer, band, by_channel) if order is None else order]
    channels, height, width = layer.shape
    groups = conv_groups(layer, by_channel)
    per_group = channels // groups
    found: tuple[list[Run], list[Run]] = ([], [])
    top, bottom = max(r[1] for r in rows), min(r[2] for r in rows)
    first, last = max(c[1] for c in cols), min(c[2] for c in cols)
    bands = [b for b in range(-(-height // band)) if b * band >= top and (b + 1) * band - 1 <= bottom]
    down = tuple(band * r[0] * p.shapes[0][2] for r, p in zip(rows, layer.projections))
    for g in range(groups):
        base = g * per_group * height * width
        if len(bands) > 1:
            step = band * width * per_group
            found[0].append(Run(base + bands[0] * step, base + (bands[-1] + 1) * step, step, down, ordered))
        if last > first:
            for y in range(0, height, band):
                unit = min(band, height - y) * per_group
                at = base + y * width * per_group
                found[1].append(Run(at + first * unit, at + (last + 1) * unit, unit, tuple(c[0] for c in cols), ordered))
    return tuple(tuple(f) for f in found)


def _reach(p: Projection, shape: tuple[int, ...], axis: int) -> tuple[int, int, int] | None:
    """(source rows or columns per output one, first and last output one whose inputs no padding clips) of a
    projection into a (C, H, W) layer along `axis` (1: rows, 2: columns), or None when its rows do not move
    with the map (a dense op, a flatten, a scale that varies along it)."""
    if any(len(s) != 3 for s in p.shapes) or p.shapes[-1] != tuple(shape):
        return None
    stride, lo, hi = 1, 0, p.shapes[0][axis] - 1
    for op, s_in, s_out in zip(p.chain, p.shapes, p.shapes[1:]):
        window = _window(op, s_in, axis)
        if window is None:
            return None
        k, s, pad = window
        lo, hi = -(-(lo + pad) // s), (hi + pad - k + 1) // s
        lo, hi, stride = max(lo, 0), min(hi, s_out[axis] - 1), stride * s
    return stride, lo, hi


def _window(op: Node, in_shape: tuple[int, ...], axis: int) -> tuple[int, int, int] | None:
    """(kernel size, stride, padding) of an op along `axis`, or None when it does not slide along it."""
    i = axis - 1
    if isinstance(op, (Conv2d, SumPool2d)):
        size = op.weight.shape[2 + i] if isinstance(op, Conv2d) else op.kernel[i]
        return size, op.stride[i], op.padding[i]
    if isinstance(op, Crop):
        return 1, 1, -(op.top, op.left)[i]
    if isinstance(op, Scale):
        scale = np.broadcast_to(op.scale, in_shape)
        return None if np.any(np.diff(scale, axis=axis)) else (1, 1, 0)
    return None
