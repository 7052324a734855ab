"""Spiking max pooling on rate codes: max(a, b) = b + relu(a - b), a tree of plain IF layers.

An IF neuron (threshold 1, no floor) fed a - b fires at rate ~ relu(rate a - rate b), and its
negative potential remembers a deficit, so the pair's maximum is the signed spike sum
b + that neuron. Pairing the window's k*k inputs level by level gives ceil(log2(k*k)) IF
layers, one neuron per pair and window; every candidate maximum is a signed sum of spike
trains (window positions of the pool's input and level neurons), so a level's drive is a
grouped convolution from each source. The layer after the pool reads the window maximum
through one projection per source (its own linear ops copied; sums happen at neurons), each
with no weights but its own, so quantisation and TrueNorth's 4 weight levels see only those.
Only IF neurons and grouped convolutions: it maps onto both targets. Each level
adds one tick on the pooled path.
"""
from __future__ import annotations

import math

import numpy as np

from neurocomp.convert.ann import Pool
from neurocomp.ir.graph import IF, Conv2d, Node

Coeffs = dict[str, np.ndarray]  # source -> weight per per-window channel of that source
Edge = tuple[str, str]


def levels(pool: Pool) -> int:
    return math.ceil(math.log2(pool.area)) if pool.area > 1 else 0


def spiking_max(source: str, channels: int, pool: Pool, layer: str,
                reset: str) -> tuple[list[Node], list[Edge], list[tuple[str, Node | None]]]:
    """Level layers (nodes and edges) of the max over `pool`'s windows of `source` (C = `channels`), and per
    source of the result the op that selects it as (C, Ho, Wo) (None: the source already is).

    Pairs (a, b) become a + IF(b - a), so the maximum is the window's first input plus one neuron per
    level; those pair-0 neurons form their own layer ("<layer>.maxL", the rest "<layer>.maxL.rest") and
    the first input is picked by a one-hot grouped conv: the layer after the pool then composes only
    its own weights."""
    n = pool.area
    width = {source: n}
    cands: list[Coeffs] = [{source: np.eye(n)[i]} for i in range(n)]
    nodes: list[Node] = []
    edges: list[Edge] = []
    for level in range(1, levels(pool) + 1):
        pairs = [(cands[i], cands[i + 1]) for i in range(0, len(cands) - 1, 2)]
        diffs = [_signed(b, a, -1.0) for a, b in pairs]
        parts = [(f"{layer}.max{level}", [0]), (f"{layer}.max{level}.rest", list(range(1, len(pairs))))]
        new: list[Coeffs] = []
        for name, idx in (part for part in parts if part[1]):
            for src in sorted({s for j in idx for s in diffs[j] if np.any(diffs[j][s])}):
                w = np.stack([diffs[j].get(src, np.zeros(width[src])) for j in idx])
                conv = _grouped(f"{name}.from.{src}", w, channels, pool if src == source else None)
                nodes.append(conv)
                edges += [(src, conv.name), (conv.name, name)]
            nodes.append(IF(name, threshold=1.0, reset=reset))
            width[name] = len(idx)
            new += [_signed(pairs[j][0], {name: np.eye(len(idx))[k]}, 1.0) for k, j in enumerate(idx)]
        cands = new + cands[2 * len(pairs):]
    first = _pick(f"{layer}.pick", channels, pool)
    return nodes, edges, [(src, first if src == source else None) for src in sorted(cands[0]) if np.any(cands[0][src])]


def _pick(name: str, channels: int, pool: Pool) -> Conv2d:
    """Each window's first input, as a grouped one-hot conv with the pool's geometry (a 1x1 sum pool
    would give ceil-sized maps when the window is wider than the stride)."""
    kernel = np.zeros((channels, 1, *pool.kernel))
    kernel[:, 0, 0, 0] = 1.0
    return Conv2d(name, kernel, stride=pool.stride, padding=pool.padding, groups=channels)


def _signed(a: Coeffs, b: Coeffs, sign: float) -> Coeffs:
    """a + sign * b."""
    out = {k: v.copy() for k, v in a.items()}
    for k, v in b.items():
        out[k] = out.get(k, 0.0) + sign * v
    return out


def _grouped(name: str, w: np.ndarray, channels: int, pool: Pool | None) -> Conv2d:
    """Per channel c, outputs c*m + j = sum_i w[j, i] * (per-window input i of channel c): over the pool's
    window positions for the pool's own input, else over a level layer's m_s neurons per window (1x1)."""
    m, k = w.shape
    if pool is None:
        return Conv2d(name, np.tile(w, (channels, 1)).reshape(channels * m, k, 1, 1), groups=channels)
    kernel = np.tile(w, (channels, 1)).reshape(channels * m, 1, *pool.kernel)
    return Conv2d(name, kernel, stride=pool.stride, padding=pool.padding, groups=channels)
