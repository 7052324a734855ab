"""Random affine jitter of image batches: the augmentation that lets QAT keep a model trained with it.

A model trained with augmentation and then fine-tuned for the target on the bare images overfits them
in the long QAT run; jittering a fraction of each batch the same way keeps what it learned (validation
split of scikit-learn's digits, benchmarks/train_digits.py).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from neurocomp.errors import UserError


def require_images(x: torch.Tensor) -> None:
    """UserError unless `x` is a batch of images (samples, channels, height, width)."""
    if x.ndim != 4:
        raise UserError(f"jitter moves images (channels, height, width); the input is {tuple(x.shape[1:])} per sample")


def jitter(x: torch.Tensor, gen: torch.Generator, fraction: float = 1.0, degrees: float = 10.0, scale: float = 0.1,
           shift: float = 1.0) -> torch.Tensor:
    """`x` (N, C, H, W) with `fraction` of its images rotated by up to `degrees`, scaled by up to 1 +- `scale` and
    moved by up to `shift` pixels each way (bilinear, zeros outside); the rest unchanged. Draws from `gen` only."""
    require_images(x)
    n, dt = len(x), x.dtype
    pick = torch.rand(n, generator=gen, dtype=dt) < fraction
    angle = (torch.rand(n, generator=gen, dtype=dt) * 2 - 1) * math.radians(degrees)
    zoom = 1 + (torch.rand(n, generator=gen, dtype=dt) * 2 - 1) * scale
    pixel = 2 / torch.tensor(x.shape[-1:-3:-1], dtype=dt)[:, None]   # one pixel in affine_grid's [-1, 1] (x, y)
    move = (torch.rand(2, n, generator=gen, dtype=dt) * 2 - 1) * shift * pixel
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, move[0]], 1), torch.stack([sin, cos, move[1]], 1)], 1)
    moved = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), align_corners=False)
    return torch.where(pick[:, None, None, None], moved, x)
