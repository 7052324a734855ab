"""TrueNorth hooks: quantisation rules, core builder, and the neuron model the emulator runs."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from neurocomp.ir.netlist import Netlist
from neurocomp.targets.truenorth.emulation import StochasticSynapses, init_state, neuron_step, potential, stepper, stochastic_synapses
from neurocomp.targets.truenorth.exactness import exact_ticks
from neurocomp.targets.truenorth.legalize import legalize
from neurocomp.targets.truenorth.mapping import build_netlist, verify_netlist
from neurocomp.targets.truenorth.native import native
from neurocomp.targets.truenorth.quant import (WEIGHT_MODES, check_params, cluster_composed, cluster_weights, neuron_params,
                                               param_limits, weight_max)
from neurocomp.targets.truenorth.tables import check_tables
from neurocomp.targets.truenorth.timing import tick_seconds

__all__ = ["WEIGHT_MODES", "check_tables", "exact_ticks", "legalize", "native", "build_netlist", "verify_netlist", "check_params", "cluster_composed", "cluster_weights", "neuron_params", "param_limits",
           "weight_max", "synapse_matrix", "init_state", "neuron_step", "potential", "tick_seconds", "stepper",
           "stochastic_synapses", "StochasticSynapses", "copies_identical"]


def synapse_matrix(n: Netlist) -> sp.csr_matrix:
    """Effective integer weight of every deterministic crossbar bit: the neuron's weight for the axon's type.

    Stochastic synapses (b flags, `stochastic_synapses`) have no fixed weight and are left out.
    """
    types = n.syn_tables["axon_type"][n.syn_axon]
    keep = _stoch_flags(n)[n.syn_neuron, types] == 0
    w = n.params["w"][n.syn_neuron[keep], types[keep]]
    return sp.csr_matrix((w.astype(np.int64), (n.syn_neuron[keep], n.syn_axon[keep])), shape=(n.n_neurons, n.n_axons))


def copies_identical(n: Netlist) -> bool:
    """Whether a neuron's fan-out copies stay identical (Netlist.copies): they share axons, weights and
    registers, so they do unless an update draws random numbers (stochastic leak, threshold or synapses),
    whose draws differ per copy."""
    p = n.params
    return not (np.any(p["c_lambda"]) or np.any(p["tm"]) or np.any(_stoch_flags(n)))


def _stoch_flags(n: Netlist) -> np.ndarray:
    """(N, 4) stochastic-synapse flags b per neuron and axon type; absent means all 0."""
    flags = n.params.get("stoch_syn")
    return np.zeros((n.n_neurons, 4), dtype=np.int64) if flags is None else np.asarray(flags)
