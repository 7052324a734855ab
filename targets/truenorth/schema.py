"""Spec fields of the truenorth family beyond neurocomp.target.COMMON_FIELDS, with the ranges its
hooks rely on: at least 2 axon types (trinary weights use two) and at most 8 bit planes, a 1..32-bit
potential register, the NeuronOptions strings, and a real-time tick > 0 (throughput is 1 / tick)."""
from __future__ import annotations

from neurocomp.target import Field
from neurocomp.targets.truenorth.neuron import THRESHOLD_CMPS, OVERFLOW_MODES, STOCH_CMPS

SPEC_FIELDS: dict[str, Field] = {
    "core.axon_types": Field(int, "types", 2, 8),
    "core.destinations_per_neuron": Field(int, "targets", 1, 2 ** 10),
    "core.weight_max": Field(int, "weight units", 1, 2 ** 16),
    "core.leak_max": Field(int, "potential units per tick", 0, 2 ** 16),
    "core.alpha_max": Field(int, "potential units", 1, 2 ** 24),
    "core.beta_max": Field(int, "potential units", 0, 2 ** 24),
    "core.vr_max": Field(int, "bits", 0, 24),
    "core.v_bits": Field(int, "bits", 2, 32),
    "core.v_overflow": Field(str, choices=OVERFLOW_MODES),
    "core.leak_no_ringing": Field(bool),
    "core.neg_threshold_cmp": Field(str, choices=THRESHOLD_CMPS),
    "core.stoch_compare": Field(str, choices=STOCH_CMPS, required=False),
    "core.delay_min": Field(int, "ticks", 1, 2 ** 10),
    "core.delay_max": Field(int, "ticks", 1, 2 ** 10),
    "timing.tick_s": Field(float, "s", 0.0, above=0.0),
}
