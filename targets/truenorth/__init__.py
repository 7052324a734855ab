"""TrueNorth hooks: quantisation rules, core builder, and the neuron model the emulator runs."""
from __future__ import annotations

from neurocomp.targets.truenorth.emulation import (StochasticSynapses, deterministic, init_state, neuron_step, potential,
                                                   stepper, stochastic_synapses, synapse_matrix)
from neurocomp.targets.truenorth.exactness import exact_ticks
from neurocomp.targets.truenorth.legalize import adapt, legalize
from neurocomp.targets.truenorth.cores import SHARED_LISTS, build_netlist
from neurocomp.targets.truenorth.census import count_cores
from neurocomp.targets.truenorth.mapping import verify_netlist
from neurocomp.targets.truenorth.native import native
from neurocomp.targets.truenorth.quant import (WEIGHT_MODES, check_params, cluster_composed, cluster_weights, neuron_params,
                                               param_limits, weight_max)
from neurocomp.targets.truenorth.tables import check_tables
from neurocomp.targets.truenorth.timing import tick_seconds

__all__ = ["WEIGHT_MODES", "SHARED_LISTS", "adapt", "check_tables", "exact_ticks", "legalize", "native", "build_netlist", "count_cores", "verify_netlist", "check_params", "cluster_composed", "cluster_weights", "neuron_params", "param_limits",
           "weight_max", "synapse_matrix", "init_state", "neuron_step", "potential", "tick_seconds", "stepper",
           "stochastic_synapses", "StochasticSynapses", "deterministic"]
