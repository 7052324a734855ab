"""Structural fan-in of a projection, from shapes, kernel sizes, groups, strides and padding.

A chain of Conv2d / SumPool2d / Crop / Scale ops is separable: the inputs a neuron
(c, y, x) reads are a product of the channels its channel c reaches, the rows y
reaches and the columns x reaches. Each factor is a small boolean (out, in) matrix, so
the widest neuron's fan-in is the product of the three widest rows, and the neurons
that read exactly the same inputs are the product of the three largest sets of equal
rows. An Affine (after a Flatten) breaks the product; from there the support is one
sparse (out, in) matrix. Nothing here visits neurons one by one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from neurocomp.ir.fold import pattern
from neurocomp.ir.graph import Affine, Conv2d, Correlation, Crop, Flatten, Node, Scale, SumPool2d
from neurocomp.ir.layers import Layer, Projection


@dataclass(frozen=True)
class Reach:
    """What one projection asks of the core its neurons sit on."""

    fan_in: int         # inputs the widest neuron reads
    sharing: int        # most neurons that read exactly the same inputs (one input set, one core)
    signed: bool        # weights of both signs reach some neuron
    bound: bool         # a Correlation: weights written at run time (neurocomp.bind)
    channels: int       # input channels the widest neuron reads (fan_in // channels: taps per channel)
    conv: tuple[int, int, int] | None  # (in channels, out channels, groups) of the last Conv2d; None after a Correlation

    @property
    def taps(self) -> int:
        return self.fan_in // max(self.channels, 1)


def _window(n_in: int, n_out: int, k: int, stride: int, pad: int, live: np.ndarray) -> np.ndarray:
    """(n_out, n_in) boolean: output o reads input o*stride - pad + t for each live tap t."""
    taps = np.flatnonzero(live)
    src = np.arange(n_out)[:, None] * stride - pad + taps[None, :]
    m = np.zeros((n_out, n_in + 1), dtype=bool)
    m[np.broadcast_to(np.arange(n_out)[:, None], src.shape), np.where((src >= 0) & (src < n_in), src, n_in)] = True
    return m[:, :n_in]


def _channels(op: Conv2d, live: np.ndarray, c_in: int) -> np.ndarray:
    """(Cout, Cin) boolean: output channel o reads input channel group(o) * cin_g + j where j is live."""
    cout, cin_g = live.shape
    group = np.arange(cout) // (cout // op.groups)
    m = np.zeros((cout, c_in), dtype=bool)
    rows, cols = np.nonzero(live)
    m[rows, group[rows] * cin_g + cols] = True
    return m


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The boolean product: float32 sums of 0/1 terms are exact below 2^24 terms, and BLAS multiplies them (numpy's
    int64 product is a plain loop: a paper-size conv's 384 x 384 channel maps took 0.16 s)."""
    dtype = np.float32 if a.shape[1] < 1 << 24 else np.int64
    return (a.astype(dtype) @ b.astype(dtype)) > 0


def _signs(op: Node) -> tuple[bool, bool]:
    """(has positive, has negative) weights of one op; ops without weights pass values on unchanged."""
    values = op.weight if isinstance(op, (Affine, Conv2d)) else op.scale if isinstance(op, Scale) else np.ones(1)
    return bool(np.any(np.asarray(values) > 0)), bool(np.any(np.asarray(values) < 0))


def _signed(proj: Projection) -> bool:
    """Both signs reach a neuron: some op mixes signs, or a run-time kernel may."""
    signs = [_signs(op) for op in proj.chain]
    return any(isinstance(op, Correlation) for op in proj.chain) or any(p and n for p, n in signs)


def _largest_class(m: np.ndarray | sp.csr_matrix) -> int:
    """Most rows of `m` with the same support (a random projection of each row is its key)."""
    if m.shape[0] == 0:
        return 0
    key = np.random.default_rng(0).random(m.shape[1])
    rows = np.stack([np.asarray(m @ key).ravel(), np.asarray(m.sum(axis=1)).ravel()], axis=1)
    return int(np.unique(rows, axis=0, return_counts=True)[1].max())


def reach(proj: Projection) -> Reach:
    """The projection's fan-in, input sharing and signs, from its ops' shapes and weight supports."""
    shape = proj.shapes[0]
    sep = [np.eye(n, dtype=bool) for n in shape] if len(shape) == 3 else None
    flat = None if sep is not None else sp.identity(int(np.prod(shape)), dtype=np.int64, format="csr")
    conv = None
    for op, (s_in, s_out) in zip(proj.chain, zip(proj.shapes[:-1], proj.shapes[1:])):
        op = pattern(op)
        if isinstance(op, Conv2d):
            w = np.asarray(op.weight) != 0
            conv = None if isinstance(op, Correlation) else (s_in[0], s_out[0], op.groups)
            sep = [_compose(_channels(op, w.any(axis=(2, 3)), s_in[0]), sep[0]),
                   _compose(_window(s_in[1], s_out[1], w.shape[2], op.stride[0], op.padding[0], w.any(axis=(0, 1, 3))), sep[1]),
                   _compose(_window(s_in[2], s_out[2], w.shape[3], op.stride[1], op.padding[1], w.any(axis=(0, 1, 2))), sep[2])]
        elif isinstance(op, SumPool2d):
            sep = [sep[0]] + [_compose(_window(s_in[d], s_out[d], op.kernel[d - 1], op.stride[d - 1], op.padding[d - 1],
                                               np.ones(op.kernel[d - 1], dtype=bool)), sep[d]) for d in (1, 2)]
        elif isinstance(op, Crop):
            sep = [sep[0], sep[1][op.top:op.top + op.height], sep[2][op.left:op.left + op.width]]
        elif isinstance(op, Flatten) and sep is not None:
            flat = sp.csr_matrix(sp.kron(sp.csr_matrix(sep[0]), sp.kron(sp.csr_matrix(sep[1]), sp.csr_matrix(sep[2]))),
                                 dtype=np.int64)
            sep = None
        elif isinstance(op, Affine):
            flat = sp.csr_matrix(sp.csr_matrix(np.asarray(op.weight) != 0, dtype=np.int64) @ flat)
            flat.data[:] = 1
    signed, bound = _signed(proj), any(isinstance(op, Correlation) for op in proj.chain)
    if sep is not None:
        widest = [int(m.sum(axis=1).max(initial=0)) for m in sep]
        sharing = int(np.prod([_largest_class(m) for m in sep]))
        return Reach(int(np.prod(widest)), sharing, signed, bound, widest[0], conv)
    fan = int(np.diff(flat.indptr).max(initial=0))
    return Reach(fan, _largest_class(flat), signed, bound, fan, conv)


def reaches(layer: Layer) -> tuple[Reach, ...]:
    """One Reach per projection into the layer."""
    return tuple(reach(p) for p in layer.projections)
