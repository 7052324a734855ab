"""Training data and checkpoints: checked before any training starts, written atomically, resumable.

Data: an .npz with `input` (samples, *input_shape), real and finite, in [0, 1] (the chip rate-codes it),
and `labels` (samples,) integers in [0, classes). Checkpoints: a torch file of tensors and plain values
only (torch.load with weights_only=True), written through neurocomp.safewrite after every epoch; a
resumed run must have the same configuration (model, data, target, options), else it is refused.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurocomp.encoding import read_npz, require_real
from neurocomp.errors import UserError
from neurocomp.frontend.ptfile import save_torch, torch_kind

CHECKPOINT_FORMAT = "neurocomp.train.checkpoint"
CHECKPOINT_VERSION = 1


def check_data(x: np.ndarray, y: np.ndarray, input_shape: tuple[int, ...], classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs as float64, labels as int64), or a UserError naming the first problem."""
    require_real(np.asarray(x), "training input")
    require_real(np.asarray(y), "training labels")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != len(input_shape) + 1 or x.shape[1:] != tuple(input_shape) or len(x) == 0:
        raise UserError(f"training input must be (samples, {', '.join(map(str, input_shape))}), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise UserError("training input contains NaN or Inf")
    if x.min() < 0 or x.max() > 1:
        raise UserError(f"training input must lie in [0, 1] (the chip rate-codes it), got [{x.min():g}, {x.max():g}]")
    y = np.asarray(y)
    if y.shape != (len(x),):
        raise UserError(f"labels must be ({len(x)},), one per sample, got {y.shape}")
    if not np.all(np.isfinite(y)) or not np.array_equal(y, np.rint(y)) or y.min() < 0 or y.max() >= classes:
        raise UserError(f"labels must be integers in [0, {classes}) (the model has {classes} outputs)")
    return x, y.astype(np.int64)


def load_data(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data = read_npz(path)
    missing = [k for k in ("input", "labels") if k not in data]
    if missing:
        raise UserError(f"{path}: missing key(s) {missing}; expected 'input' and 'labels'")
    return data["input"], data["labels"]


def fingerprint(*parts: Any) -> str:
    """SHA-256 of the JSON of `parts` (files as their bytes' hash): what a resumed run must match."""
    h = hashlib.sha256()
    for p in parts:
        h.update(_file_hash(p).encode() if isinstance(p, Path) else json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _file_hash(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


CHECKPOINT_KIND = torch_kind("neurocomp training checkpoint", CHECKPOINT_FORMAT)


def save_checkpoint(path: Path, epoch: int, config: str, net: torch.nn.Module, opt: torch.optim.Optimizer,
                    inputs: list[Path]) -> None:
    data = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "epoch": epoch, "config": config,
            "net": net.state_dict(), "opt": opt.state_dict()}
    save_torch(data, path, CHECKPOINT_KIND, inputs)


def load_checkpoint(path: Path, config: str, net: torch.nn.Module, opt: torch.optim.Optimizer) -> int:
    """Restore net and optimizer; the epoch to continue from."""
    why = CHECKPOINT_KIND.not_ours(path)
    if why:
        raise UserError(f"cannot resume from {path}: {why}")
    data = torch.load(path, map_location="cpu", weights_only=True)
    if data.get("version") != CHECKPOINT_VERSION or data.get("config") != config:
        raise UserError(f"cannot resume from {path}: it was written for another model, data, target or options")
    net.load_state_dict(data["net"])
    opt.load_state_dict(data["opt"])
    return int(data["epoch"])
