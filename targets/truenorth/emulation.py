"""What the emulator runs of a TrueNorth core: the neuron update and its state, and stochastic synapses."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from neurocomp.ir.netlist import Netlist
from neurocomp.target import TargetSpec
from neurocomp.targets.truenorth.neuron import PRN_BITS, NeuronOptions, Stepper, init_v, step


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


def synapse_matrix(n: Netlist) -> sp.csr_matrix:
    """Effective integer weight of every deterministic crossbar bit: the neuron's weight for the axon's type.

    Stochastic synapses (b flags, `stochastic_synapses`) have no fixed weight and are left out.
    """
    types = n.syn_tables["axon_type"][n.syn_axon]
    keep = _stoch_flags(n)[n.syn_neuron, types] == 0
    w = n.params["w"][n.syn_neuron[keep], types[keep]]
    return sp.csr_matrix((w.astype(np.int64), (n.syn_neuron[keep], n.syn_axon[keep])), shape=(n.n_neurons, n.n_axons))


def deterministic(n: Netlist) -> bool:
    """Whether no update draws random numbers (stochastic leak, threshold or synapses). Then a neuron's fan-out
    copies (Netlist.copies), which share axons, weights and registers, stay identical, and a batch's samples
    give the same spikes however the batch is split."""
    p = n.params
    return not (np.any(p["c_lambda"]) or np.any(p["tm"]) or np.any(_stoch_flags(n)))


def _stoch_flags(n: Netlist) -> np.ndarray:
    """(N, 4) stochastic-synapse flags b per neuron and axon type; absent means all 0."""
    flags = n.params.get("stoch_syn")
    return np.zeros((n.n_neurons, 4), dtype=np.int64) if flags is None else np.asarray(flags)


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
