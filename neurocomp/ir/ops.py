"""Structured linear ops: a torch forward (for the reference backend) and sparse rows
on demand (for core tables), so a conv stays a kernel until a core asks for its rows."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from neurocomp.ir.graph import Affine, Conv2d, Crop, Flatten, Node, Scale, SumPool2d

if TYPE_CHECKING:
    import torch


def forward(node: Node, x: torch.Tensor) -> torch.Tensor:
    """x is (batch, *in_shape), float64; returns (batch, *out_shape). torch is imported here, not with the
    module: running a compiled program needs the ops' rows, never their forward."""
    import torch
    import torch.nn.functional as F

    if isinstance(node, Affine):
        w = torch.from_numpy(np.array(node.weight))
        b = None if node.bias is None else torch.from_numpy(np.array(node.bias))
        return F.linear(x.reshape(x.shape[0], -1), w, b)
    if isinstance(node, Conv2d):
        w = torch.from_numpy(np.array(node.weight))
        b = None if node.bias is None else torch.from_numpy(np.array(node.bias))
        return F.conv2d(x, w, b, stride=node.stride, padding=node.padding, groups=node.groups)
    if isinstance(node, SumPool2d):
        c = x.shape[1]
        ones = torch.ones((c, 1) + node.kernel, dtype=x.dtype)
        return F.conv2d(x, ones, None, stride=node.stride, padding=node.padding, groups=c)
    if isinstance(node, Flatten):
        return x.reshape(x.shape[0], -1)
    if isinstance(node, Crop):
        return x[:, :, node.top:node.top + node.height, node.left:node.left + node.width]
    if isinstance(node, Scale):
        return x * torch.from_numpy(np.array(node.scale))
    raise TypeError(f"{node.name}: not a linear op")


def bias(node: Node, out_shape: tuple[int, ...]) -> np.ndarray:
    """The op's constant output term, flattened."""
    n = int(np.prod(out_shape))
    if isinstance(node, Affine) and node.bias is not None:
        return np.asarray(node.bias, dtype=np.float64)
    if isinstance(node, Conv2d) and node.bias is not None:
        return np.repeat(np.asarray(node.bias, dtype=np.float64), n // node.weight.shape[0])
    return np.zeros(n)


def rows(node: Node, in_shape: tuple[int, ...], out_shape: tuple[int, ...], idx: np.ndarray) -> sp.csr_matrix:
    """Sparse rows `idx` of the op's (out, in) matrix, built without Python loops over synapses: float64, or int32
    for a conv whose weights are all small integers (_window_rows)."""
    n_in = int(np.prod(in_shape))
    idx = np.asarray(idx, dtype=np.int64)
    if isinstance(node, Affine):
        return sp.csr_matrix(np.asarray(node.weight)[idx])
    if isinstance(node, (Flatten, Scale)):
        data = np.ones(len(idx)) if isinstance(node, Flatten) else np.broadcast_to(node.scale, in_shape).ravel()[idx]
        return sp.csr_matrix((data, (np.arange(len(idx)), idx)), shape=(len(idx), n_in))
    if isinstance(node, (Conv2d, SumPool2d)):
        return _window_rows(node, in_shape, out_shape, idx)
    if isinstance(node, Crop):
        c, y, x = np.unravel_index(idx, out_shape)
        cols = np.ravel_multi_index((c, y + node.top, x + node.left), in_shape)
        return sp.csr_matrix((np.ones(len(idx)), (np.arange(len(idx)), cols)), shape=(len(idx), n_in))
    raise TypeError(f"{node.name}: not a linear op")


def _narrow(weights: np.ndarray) -> np.ndarray:
    """Integer weights (a quantised layer's) as int16 where they all fit: the (row, tap) gathers below then move
    a quarter of float64's bytes (a 4096-row window of a 1,200-tap conv: 150 ms -> 40 ms)."""
    if weights.size and np.abs(weights).max() < 2 ** 15 and np.array_equal(weights, np.rint(weights)):
        return weights.astype(np.int16)
    return weights


def _window_rows(node: Node, in_shape: tuple[int, ...], out_shape: tuple[int, ...], idx: np.ndarray) -> sp.csr_matrix:
    """CSR straight from the (row, kernel tap) grid: taps run over (input channel, ky, kx), so each
    row's columns come out sorted and distinct, with no COO sort. A column is the row's window origin plus
    the tap's offset, one broadcast add; only rows whose window the padding clips test the taps' bounds. The
    grid is int32 where the input fits: a window of rows then allocates (and page-faults) a few arrays of its
    size, not a dozen. Its data are the weights: int32 where they are integers that fit int16 (a quantised
    layer's, gathered as int16: a window's float64 data were tens of MB to page-fault), else float64."""
    cin, h, w = in_shape
    ids = np.int32 if cin * h * w < 2 ** 31 else np.int64
    co, oy, ox = (a.astype(ids) for a in np.unravel_index(idx, out_shape))
    if isinstance(node, Conv2d):
        cout, cin_g, kh, kw = node.weight.shape
        live, kept = node.live_taps   # taps some output channel uses: a fan-in part's op is mostly zeros
        ci_local, ky, kx = (a.astype(ids) for a in np.unravel_index(live, (cin_g, kh, kw)))
        first = (co // (cout // node.groups)) * cin_g
        wts = _narrow(kept)[co]
        valid = wts != 0
    else:
        kh, kw = node.kernel
        ky, kx = (a.ravel().astype(ids) for a in np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij"))
        ci_local, first = np.zeros_like(ky), co
        wts = None
        valid = np.ones((len(idx), ky.size), dtype=bool)
    y0, x0 = oy * ids(node.stride[0]) - ids(node.padding[0]), ox * ids(node.stride[1]) - ids(node.padding[1])
    cols = ((first * ids(h) + y0) * ids(w) + x0)[:, None] + ((ci_local * ids(h) + ky) * ids(w) + kx)[None, :]
    clipped = np.flatnonzero((y0 < 0) | (y0 > h - kh) | (x0 < 0) | (x0 > w - kw))
    if clipped.size:
        iy, ix = y0[clipped, None] + ky[None, :], x0[clipped, None] + kx[None, :]
        valid[clipped] &= (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    indptr = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(np.count_nonzero(valid, axis=1), out=indptr[1:])
    flat_valid = valid.ravel()   # a 1-D mask: numpy's 2-D boolean index is ~10x slower (4096 x 1,200: 39 ms vs 3 ms)
    data = (wts.ravel()[flat_valid].astype(np.int32 if wts.dtype == np.int16 else np.float64) if wts is not None
            else np.ones(int(indptr[-1])))
    m = sp.csr_matrix((data, cols.ravel()[flat_valid], indptr), shape=(len(idx), cin * h * w))
    m.has_canonical_format = True
    return m
