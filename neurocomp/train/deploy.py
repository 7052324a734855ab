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
    """How training sees the target. `mode` constrains the spiking layers' weights; `readout_mode` the read-out's
    (None: `mode`), since a read-out's fan-in costs no copies: TrueNorth's trinary layers (two axons per input)
    under a "bits" read-out keep a tracker's conv5 precise where the chip has room for it."""

    target: Target
    mode: str            # one of the target's WEIGHT_MODES
    hooks: ModuleType    # targets/<family>/train.py
    readout_mode: str | None = None

    @property
    def compile_mode(self) -> str:
        """The weight mode to compile the trained Graph with: the read-out's, whose weight set holds the spiking
        layers' (deploy_for refuses a pair where it does not, by the hooks' HOLDS)."""
        return self.layer_mode(readout=True)

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

    def layer_mode(self, readout: bool) -> str:
        return (self.readout_mode or self.mode) if readout else self.mode

    def project(self, w: np.ndarray, readout: bool = False) -> np.ndarray:
        """Integer-unit weights (rows = neurons) onto the integers the compiler stores unchanged."""
        return self.hooks.project_weights(np.asarray(w, dtype=np.float64), self.target.spec, self.layer_mode(readout))

    def in_set(self, w: np.ndarray, readout: bool = False) -> bool:
        return bool(self.hooks.in_weight_set(np.asarray(w, dtype=np.float64), self.target.spec,
                                             self.layer_mode(readout)))


def deploy_for(target: Target, mode: str | None = None, readout_mode: str | None = None) -> Deploy:
    """`mode` None: the target's default weight mode (its first); `readout_mode` None: the read-out as `mode`."""
    modes = tuple(target.hooks.WEIGHT_MODES)
    mode = mode or modes[0]
    for m in (mode, readout_mode):
        if m is not None and m not in modes:
            raise UserError(f"weight mode {m!r} is not one of {target.name}'s: {', '.join(modes)}")
    hooks = importlib.import_module(f"{target.hooks.__name__}.train")
    readout_mode = None if readout_mode == mode else readout_mode
    if readout_mode is not None and mode not in getattr(hooks, "HOLDS", {}).get(readout_mode, ()):
        raise UserError(f"read-out weight mode {readout_mode!r} does not hold {mode!r} weights on {target.name}: the "
                        f"Graph is compiled in the read-out's mode, so it must keep the other layers' weights")
    return Deploy(target, mode, hooks, readout_mode)
