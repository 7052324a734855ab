"""TrueNorth hooks: quantisation rules, core builder, and the neuron model the emulator runs."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from neurocomp.ir.netlist import Netlist
from neurocomp.target import TargetSpec
from neurocomp.targets.truenorth.mapping import build_netlist, verify_netlist
from neurocomp.targets.truenorth.neuron import NeuronOptions, init_v, step
from neurocomp.targets.truenorth.quant import check_params, cluster_weights, neuron_params, param_limits, weight_max

__all__ = ["build_netlist", "verify_netlist", "check_params", "cluster_weights", "neuron_params", "param_limits",
           "weight_max", "synapse_matrix", "init_state", "neuron_step", "potential", "tick_seconds"]


def synapse_matrix(n: Netlist) -> sp.csr_matrix:
    """Effective integer weight of every crossbar bit: the neuron's weight for the axon's type."""
    w = n.params["w"][n.syn_neuron, n.syn_tables["axon_type"][n.syn_axon]]
    return sp.csr_matrix((w.astype(np.int64), (n.syn_neuron, n.syn_axon)), shape=(n.n_neurons, n.n_axons))


def init_state(n: Netlist, spec: TargetSpec, batch: int) -> dict[str, Any]:
    return {"v": init_v(n.params, batch), "opts": NeuronOptions.from_spec(lambda k, d: spec.get(k, d))}


def neuron_step(params: Mapping[str, np.ndarray], state: dict[str, Any], acc: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
    state["v"], spikes = step(params, state["v"], acc, state["opts"], rng)
    return spikes


def potential(state: dict[str, Any]) -> np.ndarray:
    """Membrane potential in integer graph units (TrueNorth stores it directly)."""
    return state["v"]


def tick_seconds(core_counts: Mapping[str, np.ndarray], spec: TargetSpec, n_routers: int) -> tuple[float, float | None]:
    """TrueNorth ticks at a fixed 1 ms in real-time mode; per-core work times are not published, so no slack."""
    tick = float(spec["timing.tick_s"])
    return tick, None
