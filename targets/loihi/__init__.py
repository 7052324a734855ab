"""Loihi hooks (also used by loihi2): quantisation rules, core builder, Lava-exact neuron model."""
from neurocomp.targets.loihi.emulation import (deterministic, init_state, neuron_step, potential, stepper,
                                               stochastic_synapses, synapse_matrix)
from neurocomp.targets.loihi.exactness import exact_ticks
from neurocomp.targets.loihi.legalize import adapt, legalize
from neurocomp.targets.loihi.cores import SHARED_LISTS, build_netlist
from neurocomp.targets.loihi.mapping import count_cores, verify_netlist
from neurocomp.targets.loihi.native import native
from neurocomp.targets.loihi.quant import (WEIGHT_MODES, check_params, cluster_composed, cluster_weights, neuron_params,
                                           param_limits, weight_max)
from neurocomp.targets.loihi.tables import check_tables
from neurocomp.targets.loihi.timing import tick_seconds

__all__ = ["WEIGHT_MODES", "SHARED_LISTS", "adapt", "check_tables", "exact_ticks", "legalize", "native", "build_netlist", "count_cores", "verify_netlist",
           "check_params", "cluster_composed", "cluster_weights", "neuron_params", "param_limits", "weight_max",
           "synapse_matrix", "stochastic_synapses", "deterministic", "init_state", "neuron_step", "potential",
           "tick_seconds", "stepper"]
