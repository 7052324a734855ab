"""Loihi hooks (also used by loihi2): quantisation rules, core builder, Lava-exact neuron model."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from neurocomp.ir.layers import Layer, Network
from neurocomp.ir.netlist import Netlist
from neurocomp.partition.fanin import fan_in, sample_rows, split_readouts
from neurocomp.target import TargetSpec
from neurocomp.targets.loihi.exactness import exact_ticks
from neurocomp.targets.loihi.mapping import build_netlist, count_cores, verify_netlist
from neurocomp.targets.loihi.native import native
from neurocomp.targets.loihi.neuron import LifStepper, dense_output, init_state as _init_lif, prepare_weights, step
from neurocomp.targets.loihi.quant import WEIGHT_MODES, check_params, cluster_weights, neuron_params, param_limits, weight_max
from neurocomp.targets.loihi.tables import check_tables

__all__ = ["WEIGHT_MODES", "check_tables", "exact_ticks", "legalize", "native", "build_netlist", "count_cores", "verify_netlist", "check_params", "cluster_weights", "neuron_params", "param_limits",
           "weight_max", "synapse_matrix", "init_state", "neuron_step", "potential", "tick_seconds", "stepper"]
SIGN_NAMES = ("excitatory", "inhibitory", "mixed")
ACT_SHIFT = 6
REALTIME_TICK_S = 1e-3  # the usual throttled real-time step (LOIHI.md §1); spec key timing.realtime_tick_s overrides


def legalize(net: Network, spec: TargetSpec, weights: str = "levels") -> Network:
    """A read-out whose neurons read more inputs than a core's axons becomes host-summed parts; other
    layers are left to the partitioner, which names any neuron no core can hold."""
    axons = int(spec["core.axons"])
    return split_readouts(net, lambda layer: _fan_in(layer) > axons, axons)


def _fan_in(layer: Layer) -> int:
    """Input axons the widest neuron needs: one per input it reads, over all its projections."""
    rows = sample_rows(layer)
    return sum(fan_in(p, rows) for p in layer.projections)


def synapse_matrix(n: Netlist) -> sp.csr_matrix:
    """Weights exactly as Lava's Dense prepares them (sign mode, clip, LSB truncation) per core."""
    core = n.axon_core()[n.syn_axon]
    modes = n.syn_tables["sign_mode"][core]
    w = n.syn_tables["weight"].copy()
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


def tick_seconds(core_counts: Mapping[str, np.ndarray], spec: TargetSpec, n_routers: int,
                 n_chips: int = 1) -> tuple[float | np.ndarray, float | np.ndarray]:
    """Tick estimate: the slowest core's work plus the barrier (LOIHI.md §4), and the slack against the
    1 ms real-time tick, 1 - tick / 1 ms (negative: the tick overruns real time).

    Counts are (cores,) or (cores, ...) for many ticks at once (then one estimate per column). On
    several chips the barrier is the inter-chip one (LOIHI.md §1: 14.3-16.2 us, measured on 768 chips;
    no figure for smaller systems is published, so it is used for any multi-chip program).
    """
    busy = (core_counts["synaptic_events"] * spec["timing.synop_s"]
            + core_counts["neuron_active"] * spec["timing.neuron_update_active_s"]
            + core_counts["neuron_idle"] * spec["timing.neuron_update_idle_s"]
            + core_counts["spikes"] * spec["timing.spike_s"])
    if n_chips > 1:
        barrier = spec["timing.interchip_barrier_s"]
    else:
        span = min(max(n_routers, 1), 32) / 32
        barrier = spec["timing.barrier_min_s"] + span * (spec["timing.barrier_max_s"] - spec["timing.barrier_min_s"])
    tick = np.max(busy, axis=0, initial=0.0) + barrier
    slack = 1.0 - tick / float(spec.get("timing.realtime_tick_s", REALTIME_TICK_S))
    return (float(tick), float(slack)) if np.ndim(tick) == 0 else (tick, slack)
