"""Energy model: event counts x per-event constants from the target's spec.toml, plus static power."""
from __future__ import annotations

from typing import Mapping

from neurocomp.target import TargetSpec

TERMS = (
    ("synaptic_events", "energy.synaptic_event_j"),
    ("neuron_active", "energy.neuron_update_active_j"),
    ("neuron_idle", "energy.neuron_update_idle_j"),
    ("spikes", "energy.spike_j"),
    ("hops_ew", "energy.hop_ew_j"),
    ("hops_ns", "energy.hop_ns_j"),
    ("interchip", "energy.interchip_hop_j"),
)


def energy(totals: Mapping[str, float], spec: TargetSpec, seconds: float, chips: int, inferences: float) -> dict:
    """Joules per inference with a per-term breakdown; `totals` are event counts over all inferences."""
    breakdown = {key: float(totals.get(key, 0.0)) * float(spec[const]) / inferences for key, const in TERMS}
    breakdown["static"] = float(spec["energy.static_power_w"]) * chips * seconds / inferences
    return {
        "per_inference_j": sum(breakdown.values()),
        "dynamic_per_inference_j": sum(v for k, v in breakdown.items() if k != "static"),
        "breakdown_j": breakdown,
        "constants": {const: {"value": spec[const], "source": spec.source(const)} for _, const in TERMS}
        | {"energy.static_power_w": {"value": spec["energy.static_power_w"], "source": spec.source("energy.static_power_w")}},
    }
