"""One small array namespace over numpy and torch, so the emulator's integer kernels run on either.

Only what those kernels need and where the two libraries differ (construction, casts, `where`,
`any`, in-place updates into preallocated arrays, sparse matrices); operators (`+ - * @ << >> & | < >`), slicing and in-place updates are
written directly on the arrays. Both give identical integers: every kernel stays in int64, in
float ranges proven exact, or in int8 operands with int32 sums (torch's int8 product, on CPU, for large
products of spikes), and never relies on integer overflow.
"""
from __future__ import annotations

import contextlib
import functools
import sys
import warnings
from typing import Any, Iterator

import numpy as np
import scipy.sparse as sp

CLIP_MIN = 1 << 12   # elements from which np.clip beats np.maximum + np.minimum, and a product a masked assignment


@functools.cache
def _int_mm() -> Any:
    """torch's int8 x int8 -> int32 matrix product (VNNI / AMX kernels on CPU), or None where this torch has none.
    Imported only for products large enough to pay for it: a small run never loads torch."""
    try:
        import torch
    except ImportError:
        return None
    return getattr(torch, "_int_mm", None)


def int8_of(m: np.ndarray) -> tuple[np.ndarray, int] | None:
    """m == q * scale with q int8 and scale the largest power of two dividing every entry; None where m has
    non-integers or q leaves int8. Plan matrices hold weights of few bits times a power of two. The scale is the
    lowest set bit of all entries OR-ed together (the least of their lowest set bits), and the range is checked on
    m's extremes: a handful of passes over m, since every run of a program converts its dense blocks again."""
    if m.size == 0:
        return m.astype(np.int8), 1
    lo, hi = float(m.min()), float(m.max())
    if not (np.isfinite(lo) and np.isfinite(hi)) or max(-lo, hi) >= 1 << 62:
        return None
    ints = m.astype(np.int64)
    if not np.array_equal(ints, m):
        return None
    bits = int(np.bitwise_or.reduce(ints, axis=None))
    scale = bits & -bits if bits else 1
    if lo < -128 * scale or hi > 127 * scale:
        return None
    return (ints // scale if scale > 1 else ints).astype(np.int8), scale


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """torch at one intra-op thread meanwhile, where torch is loaded (threads started meanwhile start so too): the
    int8 kernel's second thread costs more than it saves at the emulator's sizes."""
    torch = sys.modules.get("torch")
    before = None if torch is None else torch.get_num_threads()
    if torch is not None:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch is not None:
            torch.set_num_threads(before)


class Numpy:
    """The default backend: numpy arrays and scipy CSR matrices."""

    name = "numpy"
    float32, float64, int32, int64, uint8, int8 = np.float32, np.float64, np.int32, np.int64, np.uint8, np.int8

    def asarray(self, a: Any, dtype: Any = None) -> np.ndarray:
        return np.asarray(a, dtype=dtype)

    def numpy(self, a: Any) -> np.ndarray:
        return np.asarray(a)

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return np.zeros(shape, dtype=dtype)

    def cast(self, a: np.ndarray, dtype: Any) -> np.ndarray:
        return a.astype(dtype, copy=False)

    def scalar(self, value: int, dtype: Any) -> Any:
        """A typed scalar: a bare int would be slower (numpy re-checks it) or change the result type."""
        return np.dtype(dtype).type(value)

    def contiguous(self, a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a)

    def rint(self, a: np.ndarray) -> np.ndarray:
        """In place: callers pass a temporary."""
        return np.rint(a, out=a)

    # the numpy functions themselves, no wrapper: a tick of a small net is a few such calls, a us each
    assign = staticmethod(functools.partial(np.copyto, casting="unsafe"))   # (dst, src): integers in floats convert exactly
    lshift = staticmethod(np.left_shift)     # (a, n, out=)
    matmul = staticmethod(np.matmul)         # (a, b, out=)
    greater = staticmethod(np.greater)       # (a, b, out=)

    def clamp_(self, a: np.ndarray, lo: Any, hi: Any = None) -> None:
        """In place; hi None: no upper bound. Small arrays take plain ufuncs (np.clip's wrapper costs
        a few us), large ones np.clip's kernel (several times faster than maximum and minimum)."""
        if a.size >= CLIP_MIN:   # bounds of a's own type: mixed with Python ints np.clip takes a loop 3x slower
            typed = a.dtype.type
            np.clip(a, typed(lo), typed(np.iinfo(a.dtype).max if hi is None else hi), out=a)
            return
        np.maximum(a, lo, out=a)
        if hi is not None:
            np.minimum(a, hi, out=a)

    def zero_where(self, a: np.ndarray, mask: np.ndarray) -> None:
        """In place. Large arrays as a product: a masked assignment branches per element, ten times slower
        there; on small ones it is the one cheaper call."""
        if a.size >= CLIP_MIN:
            np.multiply(a, ~mask, out=a)
        else:
            a[mask] = 0

    def segment_sum(self, a: np.ndarray, ptr: np.ndarray, dtype: Any) -> np.ndarray:
        """(M, S) sums, accumulated in dtype, of a (M, N) over the column ranges ptr[s]:ptr[s+1]; empty ranges give 0."""
        out = np.zeros((a.shape[0], ptr.size - 1), dtype=dtype)
        full = np.flatnonzero(np.diff(ptr) > 0)
        if full.size:
            out[:, full] = np.add.reduceat(a, ptr[full], axis=1, dtype=dtype)
        return out

    def where(self, cond: Any, a: Any, b: Any) -> np.ndarray:
        return np.where(cond, a, b)

    def matrix(self, m: np.ndarray | sp.csr_matrix, dtype: Any) -> np.ndarray | sp.csr_matrix:
        """`m` in `dtype`, itself where it already is (a plan's matrices are read, never written)."""
        return m.astype(dtype, copy=False)

    def int8_weights(self, q: np.ndarray) -> Any:
        """q (U, R) int8 (see `int8_of`) as the int8 kernel takes it; None where this torch has no such kernel."""
        if _int_mm() is None:
            return None
        import torch

        return torch.from_numpy(np.ascontiguousarray(q))

    def int8_matmul(self, z: np.ndarray, w: Any) -> np.ndarray:
        """z (M, U) of small integers (0/1 spikes) times `int8_weights` (U, R): exact int32 sums."""
        import torch

        z8 = torch.from_numpy(np.ascontiguousarray(z, dtype=np.int8))
        with one_torch_thread():
            return _int_mm()(z8, w).numpy()

    def scaled(self, y: np.ndarray, scale: int, dtype: Any, out: np.ndarray | None = None) -> np.ndarray:
        """y * scale in dtype, into out when given: exact wherever the plan proved dtype exact for the sums."""
        if out is None:
            out = np.empty(y.shape, dtype)
        np.multiply(y, np.float64(scale), out=out, casting="unsafe")
        return out


class Torch:
    """torch tensors on one device; sparse matrices become sparse CSR tensors."""

    name = "torch"

    def __init__(self, device: str) -> None:
        import torch

        self.torch, self.device = torch, torch.device(device)
        self.float32, self.float64, self.int32, self.int64, self.uint8, self.int8 = (
            torch.float32, torch.float64, torch.int32, torch.int64, torch.uint8, torch.int8)

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        if isinstance(a, np.ndarray) and dtype is None:
            return self.torch.from_numpy(np.ascontiguousarray(a)).to(self.device)
        return self.torch.as_tensor(a, dtype=dtype, device=self.device)

    def numpy(self, a: Any) -> np.ndarray:
        return a.cpu().numpy() if isinstance(a, self.torch.Tensor) else np.asarray(a)

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return self.torch.zeros(shape, dtype=dtype, device=self.device)

    def cast(self, a: Any, dtype: Any) -> Any:
        return a.to(dtype)

    def scalar(self, value: int, dtype: Any) -> Any:
        return value

    def contiguous(self, a: Any) -> Any:
        return a.contiguous()

    def rint(self, a: Any) -> Any:
        return a.round_()   # halves to even, as rint

    def assign(self, dst: Any, src: Any) -> None:
        dst.copy_(src)

    def lshift(self, a: Any, n: int, out: Any) -> Any:
        return self.torch.bitwise_left_shift(a, n, out=out)

    def matmul(self, a: Any, b: Any, out: Any) -> Any:
        """Through a temporary: torch's out= wants a contiguous tensor, and out may be a view."""
        return out.copy_(a @ b)

    def greater(self, a: Any, b: Any, out: Any) -> Any:
        return self.torch.gt(a, b, out=out)

    def clamp_(self, a: Any, lo: Any, hi: Any = None) -> None:
        a.clamp_(min=lo, max=hi)

    def zero_where(self, a: Any, mask: Any) -> None:
        a.masked_fill_(mask, 0)

    def segment_sum(self, a: Any, ptr: np.ndarray, dtype: Any) -> Any:
        t = self.torch
        ids = t.repeat_interleave(t.arange(ptr.size - 1), t.from_numpy(np.diff(ptr))).to(self.device)
        return t.zeros((a.shape[0], ptr.size - 1), dtype=dtype, device=self.device).index_add_(1, ids, a.to(dtype))

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        return self.torch.where(cond, a, b)

    def matrix(self, m: np.ndarray | sp.csr_matrix, dtype: Any) -> Any:
        if not sp.issparse(m):
            return self.asarray(np.asarray(m)).to(dtype)
        m, t = sp.csr_matrix(m), self.torch
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return t.sparse_csr_tensor(t.from_numpy(m.indptr.astype(np.int64)), t.from_numpy(m.indices.astype(np.int64)),
                                       t.from_numpy(m.data), size=m.shape, check_invariants=True).to(dtype=dtype, device=self.device)


    def int8_weights(self, q: np.ndarray) -> Any:
        """As Numpy's, on CPU only (the CUDA kernel wants aligned shapes; float products are fast there)."""
        return None if self.device.type != "cpu" or _int_mm() is None else self.torch.from_numpy(q.copy())

    def int8_matmul(self, z: Any, w: Any) -> Any:
        with one_torch_thread():
            return self.torch._int_mm(z.to(self.torch.int8).contiguous(), w)

    def scaled(self, y: Any, scale: int, dtype: Any, out: Any = None) -> Any:
        r = y.to(dtype) if scale == 1 else (y.to(self.float64) * scale).to(dtype)
        return r if out is None else out.copy_(r)


def namespace(device: str | None) -> Numpy | Torch:
    """None: numpy; "cpu", "cuda", "cuda:1", ...: torch on that device."""
    return Numpy() if device is None else Torch(device)
