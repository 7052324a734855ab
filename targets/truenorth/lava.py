"""TrueNorth cores as a Lava process, so `neurocomp run PROGRAM --backend lava` also runs truenorth programs.

Lava ships no TrueNorth model. `TrueNorthCores` holds every core of a program (crossbar with axon types and
per-neuron type weights, stochastic synapses, leak, thresholds, reset modes, destinations with delays) and its
CPU ProcessModel advances them like the emulator: the axons due this tick (a ring buffer of axon activity, one
slot per tick of delay; several spikes on one axon merge) drive the crossbar, `neurocomp.targets.truenorth.
neuron.step` updates the neurons, and spikes and input are scheduled onto their destination axons. One process
for all cores, because a TrueNorth destination is an (axon, delay) that Lava ports between processes cannot
express without adding Lava's one-step Dense latency.

Timing: our tick k is Lava step k + 1. The input RingBuffer sends x[k] at step k + 1 and the process puts it
on its axons' delay (1), so it drives the neurons at tick k + 1, as on the emulator. The model is tagged
"fixed_pt" as well as "truenorth", so the run config that picks Lava's fixed-point models picks it too.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from neurocomp.backends.lava import Built, routes
from neurocomp.backends.lava_compat import import_lava
from neurocomp.ir.netlist import Netlist
from neurocomp.target import Target
from neurocomp.targets.truenorth import synapse_matrix
from neurocomp.targets.truenorth.emulation import StochasticSynapses, stochastic_synapses
from neurocomp.targets.truenorth.neuron import NeuronOptions, step

import_lava()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort, PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.ports.ports import InPort, OutPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402


class TrueNorthCores(AbstractProcess):
    """All cores of a TrueNorth netlist: `s_in` takes the input channels, `s_out` sends every neuron's spike,
    `v` is the membrane potential after this tick's reset (graph units).

    Random draws replay the emulator's seeded Generator: each tick draws the emulator's (..., neurons, batch)
    arrays and keeps column `sample` of `column` = (sample, batch), so stochastic leak and thresholds equal the
    emulator's batch run sample by sample. Stochastic synapses draw binomials whose stream depends on every
    sample's input, so they equal the emulator only for batch 1 (larger batches: same distribution).
    """

    def __init__(self, *, netlist: Netlist, opts: NeuronOptions, stochastic: StochasticSynapses | None = None,
                 seed: int = 0, column: tuple[int, int] = (0, 1), name: str | None = None) -> None:
        super().__init__(netlist=netlist, opts=opts, stochastic=stochastic, seed=seed, column=column, name=name)
        self.s_in = InPort(shape=(netlist.n_inputs,))
        self.s_out = OutPort(shape=(netlist.n_neurons,))
        self.v = Var(shape=(netlist.n_neurons,), init=np.asarray(netlist.params["v_init"], dtype=np.int64))


class _BatchColumn:
    """The emulator's Generator as one sample sees it: uniform draws are made for the whole batch, one column kept."""

    def __init__(self, rng: np.random.Generator, column: tuple[int, int]) -> None:
        self._rng, (self._sample, self._batch) = rng, column

    def integers(self, low: int, high: int, size: tuple[int, ...], dtype: Any) -> np.ndarray:
        full = self._rng.integers(low, high, size=size[:-1] + (self._batch,), dtype=dtype)
        return full[..., self._sample:self._sample + 1]

    def binomial(self, n: np.ndarray, p: np.ndarray) -> np.ndarray:
        """This sample's counts only: the emulator's stream is reproduced for batch 1 alone."""
        return self._rng.binomial(n, p)


@implements(proc=TrueNorthCores, protocol=LoihiProtocol)
@requires(CPU)
@tag("truenorth", "fixed_pt")
class PyTrueNorthCoresModel(PyLoihiProcessModel):
    """Per step: axons due now -> crossbar (+ stochastic synapses) -> neuron.step -> schedule spikes and input."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=1)
    v: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def __init__(self, proc_params: Any) -> None:
        super().__init__(proc_params)
        n: Netlist = proc_params["netlist"]
        self._params, self._opts, self._stoch = n.params, proc_params["opts"], proc_params["stochastic"]
        self._crossbar = synapse_matrix(n)
        self._groups = [] if self._stoch is None else [self._pattern(n, self._stoch.groups == g)
                                                       for g in range(len(self._stoch.sign))]
        self._routes = routes(n)
        self._depth = max(list(self._routes) + [1]) + 1
        self._ring = np.zeros((self._depth, n.n_axons), dtype=np.int64)
        self._rng: Any = _BatchColumn(np.random.default_rng(proc_params["seed"]), proc_params["column"])  # as a Generator

    @staticmethod
    def _pattern(n: Netlist, keep: np.ndarray) -> sp.csr_matrix:
        """(neurons x axons) number of kept synapses."""
        return sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.int64), (n.syn_neuron[keep], n.syn_axon[keep])),
                             shape=(n.n_neurons, n.n_axons))

    def run_spk(self) -> None:
        try:
            spikes = self._tick(self.time_step - 1)
        except BaseException:
            # Lava waits for every process to finish the step: feed the ones downstream, then let it report.
            self.s_out.send(np.zeros(self.s_out.shape, dtype=np.int32))
            raise
        self.s_out.send(spikes.astype(np.int32))

    def _tick(self, t: int) -> np.ndarray:
        slot = t % self._depth
        act = (self._ring[slot] > 0).astype(np.int64)
        self._ring[slot] = 0
        acc = np.asarray(self._crossbar @ act)[:, None]
        if self._stoch is not None:   # one sample: its size-1 batch axis sits wherever the hook keeps it
            counts = np.stack([m @ act for m in self._groups]).reshape(self._stoch.sign.shape)
            acc = acc + self._stoch.integrate(counts, self._rng).reshape(-1, 1)
        v, spikes = step(self._params, self.v.astype(np.int64)[:, None], acc, self._opts, self._rng)
        self.v[:] = v[:, 0]
        sources = np.concatenate([spikes[:, 0], self.s_in.recv()]).astype(np.int64)
        for d, m in self._routes.items():
            self._ring[(t + d) % self._depth] += m @ sources
        return spikes[:, 0]


def processes(n: Netlist, target: Target, input_port: Any, seed: int, column: tuple[int, int]) -> Built:
    """The one TrueNorthCores process of a program, reading `input_port` (the hook neurocomp.backends.lava.build calls)."""
    cores = TrueNorthCores(netlist=n, opts=NeuronOptions.from_spec(target.spec.get),
                           stochastic=stochastic_synapses(n, target.spec), seed=seed, column=column, name="truenorth_cores")
    input_port.connect(cores.s_in)
    return (), (cores,), (np.arange(n.n_neurons),), {cores: PyTrueNorthCoresModel}
