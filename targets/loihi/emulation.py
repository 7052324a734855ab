"""What the emulator runs of a Loihi core: Lava's prepared Dense weights and its bit-exact LIF update."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from neurocomp.ir.netlist import Netlist
from neurocomp.target import TargetSpec
from neurocomp.targets.loihi.mapping import SIGN_CODES
from neurocomp.targets.loihi.neuron import ACT_SHIFT, LifStepper, dense_output, init_state as _init_lif, prepare_weights, step

SIGN_NAMES = tuple(sorted(SIGN_CODES, key=SIGN_CODES.get))   # Lava's name of each netlist sign_mode code


def synapse_matrix(n: Netlist) -> sp.csr_matrix:
    """Weights exactly as Lava's Dense prepares them (sign mode, clip, LSB truncation) per core."""
    core = n.axon_core()[n.syn_axon]
    modes = n.syn_tables["sign_mode"][core]
    w = n.syn_tables["weight"].astype(np.int64)   # stored narrow (int16); prepared and summed wide
    for code, name in enumerate(SIGN_NAMES):
        sel = modes == code
        if sel.any():
            w[sel] = prepare_weights(w[sel], sign_mode=name)
    return sp.csr_matrix((w, (n.syn_neuron, n.syn_axon)), shape=(n.n_neurons, n.n_axons))


def init_state(n: Netlist, spec: TargetSpec, batch: int) -> dict[str, Any]:
    return _init_lif(n.params, batch)


def neuron_step(params: Mapping[str, np.ndarray], state: dict[str, Any], acc: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
    new, spikes = step(params, state, dense_output(acc, params["weight_exp"]))
    state.update(new)
    return spikes


def potential(state: dict[str, Any]) -> np.ndarray:
    """v in graph units: one graph unit is 64 in Lava's v."""
    return state["v"] / float(1 << ACT_SHIFT)


def stepper(n: Netlist, spec: TargetSpec, batch: int, acc_bound: int, xp) -> LifStepper:
    """The emulator's fast Dense-output + LIF update for the whole netlist, given max |acc|."""
    return LifStepper(n.params, batch, acc_bound, xp)


def stochastic_synapses(n: Netlist, spec: TargetSpec) -> None:
    """Loihi's synapses are deterministic."""
    return None


def deterministic(n: Netlist) -> bool:
    """No Loihi update modelled here draws random numbers (and Loihi netlists have no fan-out copies)."""
    return True
