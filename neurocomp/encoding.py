"""Host-side input encoding, shared by every backend so they all see the same input.

An Input node's `encoding` says how analog values (batch, *shape) become per-tick input:

    "spikes", "rate"  deterministic rate code (accumulate x in [0, 1], spike at 1, subtract 1);
                      "spikes" marks a network trained on spikes, but analog input is still rate-coded
    "poisson"         one Bernoulli(x) draw per value and tick from a seeded generator
    "current"         x itself, every tick, as real-valued input current into the first layer;
                      on a target with graded messages (`core.message_bits` = b > 0, loihi2) the host
                      sends it as a signed integer payload round(clip(x, -1, 1) * (2**(b-1) - 1)) per
                      tick, and the compiler divides the first layer's weights by that payload scale

Analog values for a spiking encoding are rates: below 0 is refused (a rate cannot be
negative), above 1 saturates at a spike every tick. Input must be real (bool, integer or
float dtype), finite, and hold at least one sample and, with a ticks axis, one tick.

Input that already has a ticks axis (batch, ticks, *shape) passes through unchanged
(0/1 spikes, or any real currents for "current"; with graded messages, integer payloads
of at most `payload_max(b)` in magnitude are accepted as per-tick input of any encoding).
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from neurocomp.errors import FormatError, UserError
from neurocomp.memory import require

ENCODINGS = ("spikes", "rate", "poisson", "current")
SPIKING = ("spikes", "rate", "poisson")


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


def poisson_encode(x: np.ndarray, ticks: int, seed: int = 0) -> np.ndarray:
    """Bernoulli spikes with probability clip(x, 0, 1) per tick; the same seed gives the same spikes."""
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    draws = np.random.default_rng(seed).random((x.shape[0], ticks) + x.shape[1:])
    return (draws < x[:, None]).astype(np.uint8)


def current_encode(x: np.ndarray, ticks: int) -> np.ndarray:
    """The analog values repeated every tick: (batch, ticks, *shape) float64."""
    x = np.asarray(x, dtype=np.float64)
    return np.repeat(x[:, None], ticks, axis=1)


def payload_max(message_bits: int) -> int:
    """Largest magnitude of a signed `message_bits`-bit payload (0 bits: binary spikes, 1)."""
    return (1 << (message_bits - 1)) - 1 if message_bits > 1 else 1


def graded_payload(x: np.ndarray, message_bits: int) -> np.ndarray:
    """Analog values in [-1, 1] (saturating outside) as signed integer payloads, int32 as Lava's RingBuffer sends."""
    m = payload_max(message_bits)
    return np.rint(np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0) * m).astype(np.int32)


def input_spikes(data: np.ndarray, shape: tuple[int, ...], ticks: int | None, encoding: str = "rate",
                 seed: int = 0, message_bits: int = 0) -> np.ndarray:
    """(batch, ticks, *shape) input per tick: spikes (uint8), float64 currents for encoding "current", or int32
    payloads where the target sends graded messages (`message_bits` > 0): "current" input, or per-tick integers."""
    if encoding not in ENCODINGS:
        raise UserError(f"unknown input encoding {encoding!r}; expected one of {ENCODINGS}")
    data = np.asarray(data)
    _check_values(data, shape, ticks, encoding)
    if encoding == "current" and message_bits:
        return graded_payload(input_spikes(data, shape, ticks, encoding), message_bits)
    if data.ndim == len(shape) + 2 and tuple(data.shape[2:]) == tuple(shape):
        return _fit_ticks(_per_tick(data, encoding, message_bits), ticks)
    if data.ndim == len(shape) + 1 and tuple(data.shape[1:]) == tuple(shape):
        if ticks is None:
            raise UserError("analog input needs a number of ticks")
        if encoding == "poisson":
            return poisson_encode(data, ticks, seed)
        return current_encode(data, ticks) if encoding == "current" else rate_encode(data, ticks)
    raise UserError(f"input shape {data.shape} fits neither (batch, ticks, {', '.join(map(str, shape))}) spikes "
                    f"nor (batch, {', '.join(map(str, shape))}) analog values")


def require_real(data: np.ndarray, what: str) -> None:
    """Strings, objects, dates and complex numbers are refused rather than cast (a cast drops or invents values)."""
    if data.dtype.kind not in "biuf":
        raise UserError(f"{what} has dtype {data.dtype}; expected real numbers (bool, integer or float)")


def _check_values(data: np.ndarray, shape: tuple[int, ...], ticks: int | None, encoding: str) -> None:
    """Refuse what would otherwise be coerced silently or fail deep inside a backend."""
    require_real(data, "input")
    if data.ndim in (len(shape) + 1, len(shape) + 2) and data.shape[0] == 0:
        raise UserError(f"input {data.shape} holds no samples (batch size 0)")
    if data.ndim == len(shape) + 2 and data.shape[1] == 0 and not ticks:
        raise UserError(f"spike input {data.shape} holds no ticks")
    if ticks is not None and ticks < 1:
        raise UserError(f"ticks must be >= 1, got {ticks}")
    if not np.all(np.isfinite(data)):
        raise UserError("input contains NaN or Inf")
    if data.ndim == len(shape) + 1 and encoding in SPIKING and data.size and data.min() < 0:
        raise UserError(f"analog input for {encoding} coding is a rate and must be >= 0, got {data.min():g}")


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz, refusing anything else (.npy, empty, corrupt, pickled objects) with a
    FormatError, and arrays whose declared size exceeds the available memory before reading them."""
    fmt = np.lib.format
    if not path.is_file():
        raise FormatError(f"input file {path} not found")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            npy = f.read(6) == fmt.MAGIC_PREFIX
        hint = " (an .npy array? save it with np.savez(path, input=x))" if npy else ""
        raise FormatError(f"{path}: not an .npz archive{hint}")
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                with zf.open(info) as f:
                    version = fmt.read_magic(f)
                    shape, _, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(f)
                require(f"{path}: array {info.filename}", np.prod(shape, dtype=float) * dtype.itemsize)
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, NotImplementedError) as exc:
        raise FormatError(f"{path}: not a readable .npz ({type(exc).__name__}: {' '.join(str(exc).split())})") from None


def _per_tick(data: np.ndarray, encoding: str, message_bits: int = 0) -> np.ndarray:
    if encoding == "current":
        return data.astype(np.float64)
    if message_bits:
        m = payload_max(message_bits)
        if not (np.array_equal(data, np.rint(data)) and np.all(np.abs(data) <= m)):
            raise UserError(f"per-tick input must hold integer payloads in [-{m}, {m}] ({message_bits}-bit graded messages)")
        return data.astype(np.int32)
    if not np.isin(data, (0, 1)).all():
        raise UserError("spike input must hold only 0 and 1 (use analog (batch, *shape) values for rate coding)")
    return data.astype(np.uint8)


def _fit_ticks(x: np.ndarray, ticks: int | None) -> np.ndarray:
    """Zero-pad or cut the ticks axis to `ticks`."""
    if ticks is None:
        return x
    if ticks > x.shape[1]:
        pad = np.zeros((x.shape[0], ticks - x.shape[1]) + x.shape[2:], dtype=x.dtype)
        return np.concatenate([x, pad], axis=1)
    return x[:, :ticks]
