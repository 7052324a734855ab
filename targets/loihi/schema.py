"""Spec fields of the loihi family (loihi, loihi2) beyond neurocomp.target.COMMON_FIELDS, with the
ranges its hooks rely on: Lava's Dense takes 1..8 weight bits (a mixed-sign weight needs 2), decays
are 12-bit fractions of 4096, and potentials and thresholds are held in int64 arithmetic."""
from __future__ import annotations

from neurocomp.target import Field

_S = "s"

SPEC_FIELDS: dict[str, Field] = {
    "core.output_axons": Field(int, "axons per core", 1, 2 ** 24),
    "core.synapse_bits": Field(int, "bits per core", 1, 2 ** 40),
    "core.synapses_per_chunk": Field(int, "synapses", 1, 2 ** 16),
    "core.synapse_chunk_overhead_bits": Field(int, "bits", 0, 2 ** 16),
    "core.weight_bits": Field(int, "bits", 2, 8),
    "core.weight_exp_min": Field(int, "power of two", -16, 16),
    "core.weight_exp_max": Field(int, "power of two", -16, 16),
    "core.vth_max": Field(int, "threshold mantissa", 1, 2 ** 30),
    "core.bias_mant_max": Field(int, "bias mantissa", 0, 2 ** 30),
    "core.bias_exp_max": Field(int, "power of two", 0, 16),
    "core.decay_max": Field(int, "1/4096 per tick", 0, 4095),
    "core.uv_bits": Field(int, "bits", 2, 32),
    "core.graded_spikes": Field(bool),
    "core.message_bits": Field(int, "bits", 0, 32, required=False),
    "core.compartment_configs": Field(int, "registers", 1, 2 ** 16),
    "core.vth_configs": Field(int, "registers", 1, 2 ** 16),
    "core.synapse_configs": Field(int, "registers", 1, 2 ** 16),
    "timing.synop_s": Field(float, _S, 0.0),
    "timing.neuron_update_active_s": Field(float, _S, 0.0),
    "timing.neuron_update_idle_s": Field(float, _S, 0.0),
    "timing.spike_s": Field(float, _S, 0.0),
    "timing.barrier_min_s": Field(float, _S, 0.0),
    "timing.barrier_max_s": Field(float, _S, 0.0),
    "timing.interchip_barrier_s": Field(float, _S, 0.0),
    "timing.realtime_tick_s": Field(float, _S, 0.0, above=0.0, required=False),
}
