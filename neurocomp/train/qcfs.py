"""Clip-floor-shift activation (QCFS, Bu et al. ICLR 2022; reference/SIAMSNN.md §5.7) and straight-through roundings.

h(z) = lambda * clip(floor(z * L / lambda + 1/2), 0, L) / L. An IF neuron with threshold lambda, reset by
subtraction and initial potential lambda / 2, driven T = L ticks by a constant current z, fires exactly
floor(z * L / lambda + 1/2) times (clipped to [0, T]): the ANN trained with h is the SNN's rate code.
"""
from __future__ import annotations

import torch


def floor_ste(x: torch.Tensor) -> torch.Tensor:
    """floor in the forward pass, identity in the backward pass."""
    return x + (torch.floor(x) - x).detach()


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round half to even forward (numpy's rint, as the compiler rounds), identity backward."""
    return x + (torch.round(x) - x).detach()


def replace_ste(x: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """`value` forward, x's gradient backward: a projection computed outside autograd."""
    return x + (value.to(x.dtype) - x).detach()


def qcfs(z: torch.Tensor, lam: torch.Tensor, levels: int) -> torch.Tensor:
    """lambda * clip(floor(z L / lambda + 1/2), 0, L) / L; the floor passes gradients straight through, so
    lambda learns from both the clip and the step size."""
    steps = torch.clamp(floor_ste(z * levels / lam + 0.5), 0, levels)
    return steps * lam / levels
