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


def reset_zero_counts(z: torch.Tensor, lam: torch.Tensor, levels: int) -> torch.Tensor:
    """What QCFS becomes on a neuron that resets to zero and fires at v > threshold (Loihi): driven T = L ticks
    by a constant current x = z / lambda thresholds per tick from v = 1/2, it fires first at tick
    floor(1 / 2x) + 1 and then every floor(1 / x) + 1 ticks, since each reset discards the charge above
    threshold that QCFS's subtraction keeps (x = 1/2: T/3 spikes, not T/2). Returned like `qcfs`, as
    lambda * count / L; the gradient is QCFS's (straight through the clip of x L), whose sign it shares."""
    x = z / lam
    pos = x.detach().clamp_min(1e-12)
    first, period = torch.floor(0.5 / pos) + 1, torch.floor(1 / pos) + 1
    count = torch.where((x.detach() > 0) & (first <= levels), torch.floor((levels - first) / period) + 1, 0 * pos)
    return replace_ste(torch.clamp(x * levels, 0, levels), count) * lam / levels
