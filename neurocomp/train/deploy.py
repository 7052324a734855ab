"""The target as training sees it: its weight sets, register limits and reset, from its hooks (targets/<family>/train.py)."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch

from neurocomp.errors import UserError
from neurocomp.target import Target


@dataclass(frozen=True)
class Deploy:
    target: Target
    mode: str            # one of the target's WEIGHT_MODES
    hooks: ModuleType    # targets/<family>/train.py

    @property
    def reset(self) -> str:
        return self.hooks.RESET

    def chip_activation(self, z: torch.Tensor, lam: torch.Tensor, levels: int) -> torch.Tensor:
        """The target's model of what its IF neuron makes of QCFS (Loihi: reset to zero loses the residue)."""
        return self.hooks.qat_activation(z, lam, levels)

    def weight_max(self, w: np.ndarray) -> float:
        return float(self.target.hooks.weight_max(self.target.spec, w))

    def limit(self, key: str) -> float:
        return float(self.target.hooks.param_limits(self.target.spec)[key])

    def project(self, w: np.ndarray) -> np.ndarray:
        """Integer-unit weights (rows = neurons) onto the integers the compiler stores unchanged."""
        return self.hooks.project_weights(np.asarray(w, dtype=np.float64), self.target.spec, self.mode)

    def in_set(self, w: np.ndarray) -> bool:
        return bool(self.hooks.in_weight_set(np.asarray(w, dtype=np.float64), self.target.spec, self.mode))


def deploy_for(target: Target, mode: str | None = None) -> Deploy:
    """`mode` None: the target's default weight mode (its first)."""
    modes = tuple(target.hooks.WEIGHT_MODES)
    mode = mode or modes[0]
    if mode not in modes:
        raise UserError(f"weight mode {mode!r} is not one of {target.name}'s: {', '.join(modes)}")
    return Deploy(target, mode, importlib.import_module(f"{target.hooks.__name__}.train"))
