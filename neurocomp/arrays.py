"""One small array namespace over numpy and torch, so the emulator's integer kernels run on either.

Only what those kernels need and where the two libraries differ (construction, casts, `where`,
`any`, sparse matrices); operators (`+ - * @ << >> & | < >`), slicing and in-place updates are
written directly on the arrays. Both give identical integers: every kernel stays in int64 or in
float ranges proven exact, and never relies on integer overflow.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp


class Numpy:
    """The default backend: numpy arrays and scipy CSR matrices."""

    name = "numpy"
    float32, float64, int64, bool_ = np.float32, np.float64, np.int64, np.bool_

    def asarray(self, a: Any, dtype: Any = None) -> np.ndarray:
        return np.asarray(a, dtype=dtype)

    def numpy(self, a: Any) -> np.ndarray:
        return np.asarray(a)

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return np.zeros(shape, dtype=dtype)

    def cast(self, a: np.ndarray, dtype: Any) -> np.ndarray:
        return a.astype(dtype, copy=False)

    def copy(self, a: np.ndarray) -> np.ndarray:
        return a.copy()

    def where(self, cond: Any, a: Any, b: Any) -> np.ndarray:
        return np.where(cond, a, b)

    def any(self, a: np.ndarray, axis: int) -> np.ndarray:
        return a.any(axis=axis)

    def matrix(self, m: np.ndarray | sp.csr_matrix, dtype: Any) -> np.ndarray | sp.csr_matrix:
        return m.astype(dtype)


class Torch:
    """torch tensors on one device; sparse matrices become sparse CSR tensors."""

    name = "torch"

    def __init__(self, device: str) -> None:
        import torch

        self.torch, self.device = torch, torch.device(device)
        self.float32, self.float64, self.int64, self.bool_ = torch.float32, torch.float64, torch.int64, torch.bool

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

    def copy(self, a: Any) -> Any:
        return a.clone()

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        return self.torch.where(cond, a, b)

    def any(self, a: Any, axis: int) -> Any:
        return a.any(dim=axis)

    def matrix(self, m: np.ndarray | sp.csr_matrix, dtype: Any) -> Any:
        if not sp.issparse(m):
            return self.asarray(np.asarray(m)).to(dtype)
        m = sp.csr_matrix(m)
        t = self.torch
        return t.sparse_csr_tensor(t.from_numpy(m.indptr.astype(np.int64)), t.from_numpy(m.indices.astype(np.int64)),
                                   t.from_numpy(m.data), size=m.shape).to(dtype=dtype, device=self.device)


def namespace(device: str | None) -> Numpy | Torch:
    """None: numpy; "cpu", "cuda", "cuda:1", ...: torch on that device."""
    return Numpy() if device is None else Torch(device)
