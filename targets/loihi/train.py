"""What neurocomp.train needs from Loihi: its weight set (8-bit mantissa; the shared per-layer exponent's job is
done by the integer unit the trainer picks per layer, which the integer threshold absorbs, so the compiler finds
an exact power-of-two step and stores the mantissas as trained), its reset (Lava's LIF resets v to 0) and the integer update the
chip-in-the-loop surrogate differentiates through (neuron.LifStepper for IF neurons: du = 4095, dv = 0)."""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from neurocomp.target import TargetSpec
from neurocomp.targets.loihi.neuron import ACT_SHIFT, V_LIMIT
from neurocomp.targets.loihi.quant import weight_max
from neurocomp.train.qcfs import reset_zero_counts

RESET = "zero"


def qat_activation(z: torch.Tensor, lam: torch.Tensor, levels: int) -> torch.Tensor:
    """QCFS as Lava's IF computes it: reset to zero after v > vth, the charge above threshold lost."""
    return reset_zero_counts(z, lam, levels)


def project_weights(w: np.ndarray, spec: TargetSpec, mode: str) -> np.ndarray:
    """Integer-unit weights -> integers on the mantissa: 7 bits + sign when both signs occur, else 8 bits."""
    q = np.rint(w)
    top = weight_max(spec, q)   # signs after rounding: a weight rounding to 0 does not make the row mixed
    return np.clip(q, -top, top)


def in_weight_set(w: np.ndarray, spec: TargetSpec, mode: str) -> bool:
    return bool(np.array_equal(w, np.rint(w)) and np.max(np.abs(w), initial=0) <= weight_max(spec, w))


def surrogate_state(params: Mapping[str, np.ndarray], spec: TargetSpec) -> dict[str, torch.Tensor]:
    """Threshold and initial v in Lava's units (64 per graph unit); IF only: no current or voltage decay."""
    if np.any(np.asarray(params["du"]) != 4095) or np.any(np.asarray(params["dv"]) != 0):
        raise ValueError("the surrogate models IF neurons only (du = 4095, dv = 0)")
    vth = np.asarray(params["vth"], dtype=np.float64) * (1 << ACT_SHIFT)
    return {"vth": torch.as_tensor(vth), "v_init": torch.as_tensor(np.asarray(params["v_init"], dtype=np.float64))}


def surrogate_bias(params: Mapping[str, np.ndarray]) -> np.ndarray:
    """The trainable per-neuron bias register: the mantissa (its exponent, 6, puts it in graph units)."""
    if np.any(np.asarray(params["bias_exp"]) != ACT_SHIFT):
        raise ValueError(f"the surrogate expects bias_exp = {ACT_SHIFT}")
    return np.asarray(params["bias_mant"], dtype=np.float64)


def surrogate_step(v: torch.Tensor, syn: torch.Tensor, bias: torch.Tensor, r: Mapping[str, torch.Tensor],
                   fire) -> tuple[torch.Tensor, torch.Tensor]:
    """u = a << 6; v = clip(v + u + bias << 6, +-(2**23 - 1)); spike at v > vth << 6; v = 0 after a spike.
    Weights mixed in sign are stored doubled with weight_exp -1, whose halving of an even sum is exact, so
    the synaptic input is the graph's integer sum `syn`. The int32 wraps never act: the quantiser bounds u."""
    scale = float(1 << ACT_SHIFT)
    v = torch.clamp(v + (syn + bias) * scale, -float(V_LIMIT), float(V_LIMIT))
    s = fire(v, r["vth"] + 1)   # v > vth << 6 on integers is v >= (vth << 6) + 1
    return v * (1 - s), s


def surrogate_potential(v: torch.Tensor) -> torch.Tensor:
    """v in graph units: one graph unit is 64 in Lava's v."""
    return v / float(1 << ACT_SHIFT)
