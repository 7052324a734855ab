"""Host-side input encoding, shared by every backend so they all see the same spikes."""
from __future__ import annotations

import numpy as np

from neurocomp.errors import UserError


def rate_encode(x: np.ndarray, ticks: int) -> np.ndarray:
    """Deterministic rate code: accumulate x in [0, 1] each tick, spike when the sum reaches 1, subtract 1."""
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    acc = np.zeros_like(x)
    out = np.zeros((x.shape[0], ticks) + x.shape[1:], dtype=np.uint8)
    for t in range(ticks):
        acc += x
        fire = acc >= 1.0
        out[:, t] = fire
        acc -= fire
    return out


def input_spikes(data: np.ndarray, shape: tuple[int, ...], ticks: int | None) -> np.ndarray:
    """(batch, ticks, *shape) binary spikes from either spikes of that shape or analog (batch, *shape) values."""
    data = np.asarray(data)
    if not np.all(np.isfinite(data)):
        raise UserError("input contains NaN or Inf")
    if data.ndim == len(shape) + 2 and tuple(data.shape[2:]) == tuple(shape):
        if not np.isin(data, (0, 1)).all():
            raise UserError("spike input must hold only 0 and 1 (use analog (batch, *shape) values for rate coding)")
        spikes = data.astype(np.uint8)
        if ticks is not None and ticks > spikes.shape[1]:
            pad = np.zeros((spikes.shape[0], ticks - spikes.shape[1]) + tuple(shape), dtype=np.uint8)
            spikes = np.concatenate([spikes, pad], axis=1)
        return spikes if ticks is None else spikes[:, :ticks]
    if data.ndim == len(shape) + 1 and tuple(data.shape[1:]) == tuple(shape):
        if ticks is None:
            raise UserError("analog input needs a number of ticks")
        return rate_encode(data, ticks)
    raise UserError(f"input shape {data.shape} fits neither (batch, ticks, {', '.join(map(str, shape))}) spikes "
                    f"nor (batch, {', '.join(map(str, shape))}) analog values")
