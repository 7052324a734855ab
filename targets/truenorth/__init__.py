"""TrueNorth hooks: quantisation rules, core builder, and the neuron model the emulator runs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from neurocomp.backends.emulator.copies import groups
from neurocomp.ir.netlist import Netlist
from neurocomp.target import TargetSpec
from neurocomp.targets.truenorth.exactness import exact_ticks
from neurocomp.targets.truenorth.legalize import legalize
from neurocomp.targets.truenorth.mapping import build_netlist, verify_netlist
from neurocomp.targets.truenorth.native import native
from neurocomp.targets.truenorth.neuron import PRN_BITS, NeuronOptions, Stepper, init_v, step
from neurocomp.targets.truenorth.quant import (WEIGHT_MODES, check_params, cluster_composed, cluster_weights, neuron_params,
                                               param_limits, weight_max)
from neurocomp.targets.truenorth.tables import check_tables

__all__ = ["WEIGHT_MODES", "check_tables", "exact_ticks", "legalize", "native", "build_netlist", "verify_netlist", "check_params", "cluster_composed", "cluster_weights", "neuron_params", "param_limits",
           "weight_max", "synapse_matrix", "init_state", "neuron_step", "potential", "tick_seconds", "stepper",
           "stochastic_synapses", "StochasticSynapses", "copy_groups"]


def synapse_matrix(n: Netlist) -> sp.csr_matrix:
    """Effective integer weight of every deterministic crossbar bit: the neuron's weight for the axon's type.

    Stochastic synapses (b flags, `stochastic_synapses`) have no fixed weight and are left out.
    """
    types = n.syn_tables["axon_type"][n.syn_axon]
    keep = _stoch_flags(n)[n.syn_neuron, types] == 0
    w = n.params["w"][n.syn_neuron[keep], types[keep]]
    return sp.csr_matrix((w.astype(np.int64), (n.syn_neuron[keep], n.syn_axon[keep])), shape=(n.n_neurons, n.n_axons))


def copy_groups(n: Netlist) -> tuple[np.ndarray, tuple[str, ...]] | None:
    """First member of each neuron's group of identical neurons (fan-out copies, and any neurons of
    one core with equal registers and weight rows), for the emulator to run once; None when some
    update draws random numbers, whose order the copies must keep. No syn_table is per synapse."""
    p = n.params
    if np.any(p["c_lambda"]) or np.any(p["tm"]) or np.any(_stoch_flags(n)):
        return None
    return groups(n, synapse_matrix(n)), ()


def _stoch_flags(n: Netlist) -> np.ndarray:
    """(N, 4) stochastic-synapse flags b per neuron and axon type; absent means all 0."""
    flags = n.params.get("stoch_syn")
    return np.zeros((n.n_neurons, 4), dtype=np.int64) if flags is None else np.asarray(flags)


@dataclass(frozen=True)
class StochasticSynapses:
    """TrueNorth stochastic synapses (TRUENORTH.md §3.1): an active synapse of neuron j whose axon type G
    has b_j^G = 1 adds sgn(s) with probability P(F(s, rho)), rho a uniform 8-bit PRN: (|s| + 1) / 256
    under the default `>=` compare, |s| / 256 under `>` (both "about |s| / 256").

    IBM's PRNG (LFSR, seeding, draw order) is not public, so the draws come from the numpy Generator
    the emulator passes in: runs match the hardware's distribution, not its bits. The active synapses
    of one neuron, type and tick are independent Bernoulli draws with one probability, so their sum is
    drawn as one binomial per (type, neuron, sample), in that order, every tick.
    """

    groups: np.ndarray   # per synapse: its axon type if stochastic, else -1
    sign: np.ndarray     # (4, 1, N) sgn(s) per type
    prob: np.ndarray     # (4, 1, N)

    def integrate(self, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Summed stochastic input (B, N) int64 from counts (4, B, N) of active stochastic synapses."""
        return np.sum(self.sign * rng.binomial(counts, self.prob), axis=0)


def stochastic_synapses(n: Netlist, spec: TargetSpec) -> StochasticSynapses | None:
    """The flagged synapses and their probabilities, or None when every b flag is 0 (deterministic)."""
    flags = _stoch_flags(n)
    if not flags.any():
        return None
    types = n.syn_tables["axon_type"][n.syn_axon]
    opts = NeuronOptions.from_spec(lambda k, d: spec.get(k, d))
    w = n.params["w"].T[:, None, :]
    prob = np.minimum(np.abs(w) + (opts.stoch_compare == ">="), 1 << PRN_BITS) / float(1 << PRN_BITS)
    return StochasticSynapses(np.where(flags[n.syn_neuron, types] != 0, types, -1), np.sign(w), prob)


def init_state(n: Netlist, spec: TargetSpec, batch: int) -> dict[str, Any]:
    return {"v": init_v(n.params, batch), "opts": NeuronOptions.from_spec(lambda k, d: spec.get(k, d))}


def neuron_step(params: Mapping[str, np.ndarray], state: dict[str, Any], acc: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
    state["v"], spikes = step(params, state["v"], acc, state["opts"], rng)
    return spikes


def potential(state: dict[str, Any]) -> np.ndarray:
    """Membrane potential in integer graph units (TrueNorth stores it directly)."""
    return state["v"]


def stepper(n: Netlist, spec: TargetSpec, batch: int, acc_bound: int, xp) -> Stepper:
    """The emulator's fast neuron update for the whole netlist (acc_bound is not needed: all int64)."""
    return Stepper(n.params, NeuronOptions.from_spec(lambda k, d: spec.get(k, d)), batch, xp)


def tick_seconds(core_counts: Mapping[str, np.ndarray], spec: TargetSpec, n_routers: int,
                 n_chips: int = 1) -> tuple[float | np.ndarray, None]:
    """TrueNorth ticks at a fixed 1 ms in real-time mode, on one chip or many; per-core work times are
    not published, so the slack against that tick is unknown (None). Counts may carry extra axes
    (per tick); the tick is the same for all of them."""
    tick = float(spec["timing.tick_s"])
    extra = np.shape(next(iter(core_counts.values()), np.zeros(1)))[1:]
    return (np.full(extra, tick) if extra else tick), None
