"""Per-channel weight equalisation: every output channel of an IF layer uses the whole weight range.

An IF neuron fires at the same ticks when its inputs, bias, threshold and initial potential are
all multiplied by one s > 0 (reset by subtraction or to zero; a floor at 0 or none). TrueNorth
stores a threshold and a leak per neuron but one weight scale per layer, so a channel whose
weights are small next to the layer's largest is left a few integer steps. Scaling each channel
by s = (layer's largest |w|) / (channel's largest |w|), rounded down to a power of two, gives every
channel at least half the 9-bit range; s is capped so the scaled bias and threshold still fit
the leak and threshold registers at the layer's weight scale (else the quantiser would coarsen
the whole layer). A power of two keeps the float Graph bit-exact (an integer network stays
integer, so its quantisation stays exact).
Read-outs (their potentials are the output) and Correlation layers (their kernel is bound at
run time) are left alone.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from neurocomp.ir.graph import IF, Affine, Conv2d, Correlation, Graph, Node
from neurocomp.ir.layers import Layer, Network, lower
from neurocomp.target import TargetSpec

MARGIN = 0.9   # of the leak / threshold register the scaled values may use


def equalise(net: Network, spec: TargetSpec) -> Network:
    changed: dict[str, Node] = {}
    for layer in net.layers:
        s = _scales(layer, spec)
        if s is None:
            continue
        for p in layer.projections:
            changed[p.chain[-1].name] = _scaled_op(p.chain[-1], s, layer)
        n = layer.neuron
        full = lambda v: np.broadcast_to(np.asarray(v, dtype=np.float64), layer.shape) * s.reshape(layer.shape)  # noqa: E731
        changed[layer.name] = dataclasses.replace(n, threshold=full(n.threshold), bias=full(n.bias), v_init=full(n.v_init))
    if not changed:
        return net
    g = net.graph
    return lower(Graph(tuple(changed.get(n.name, n) for n in g.nodes), g.edges, g.metadata))


def _scales(layer: Layer, spec: TargetSpec) -> np.ndarray | None:
    """s per neuron (constant over a conv channel), or None when the layer is left alone."""
    lasts = [p.chain[-1] if p.chain else None for p in layer.projections]
    if (type(layer.neuron) is not IF or layer.neuron.v_min not in (0.0, -np.inf) or not lasts
            or any(not isinstance(op, (Affine, Conv2d)) or isinstance(op, Correlation) for op in lasts)):
        return None
    peak = np.max([_row_peaks(op, layer) for op in lasts], axis=0)
    top = float(peak.max())
    if top == 0:
        return None
    unit = top / float(spec["core.weight_max"])
    bias = np.abs(layer.bias()).reshape(-1)
    theta = np.broadcast_to(np.asarray(layer.neuron.threshold, dtype=np.float64), layer.shape).reshape(-1)
    cap = np.minimum(MARGIN * spec["core.leak_max"] * unit / np.maximum(bias, 1e-300),
                     MARGIN * spec["core.alpha_max"] * unit / np.maximum(theta, 1e-300))
    s = np.where(peak > 0, top / np.maximum(peak, 1e-300), 1.0)
    if any(isinstance(op, Conv2d) for op in lasts):   # one s per channel: the conv kernel is shared
        channels = layer.shape[0]
        s = np.repeat(s.reshape(channels, -1).min(axis=1), layer.size // channels)
        cap = np.repeat(cap.reshape(channels, -1).min(axis=1), layer.size // channels)
    s = np.exp2(np.floor(np.log2(np.maximum(np.minimum(s, cap), 1.0))))
    return None if np.all(s == 1.0) else s


def _row_peaks(op: Affine | Conv2d, layer: Layer) -> np.ndarray:
    """Largest |w| into each neuron."""
    w = np.abs(np.asarray(op.weight)).reshape(op.weight.shape[0], -1).max(axis=1)
    return np.repeat(w, layer.size // w.size) if isinstance(op, Conv2d) else w


def _scaled_op(op: Affine | Conv2d, s: np.ndarray, layer: Layer) -> Node:
    rows = s.reshape(op.weight.shape[0], -1)[:, 0] if isinstance(op, Conv2d) else s
    w = np.asarray(op.weight) * rows.reshape((-1,) + (1,) * (op.weight.ndim - 1))
    b = None if op.bias is None else np.asarray(op.bias) * rows
    return dataclasses.replace(op, weight=w, bias=b)
