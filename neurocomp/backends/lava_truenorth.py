"""TrueNorth cores as a Lava process, so `neurocomp run PROGRAM --backend lava` also runs truenorth programs.

Lava ships no TrueNorth model. `TrueNorthCores` holds every core of a program (crossbar with axon types and
per-neuron type weights, leak, thresholds, reset modes, destinations with delays) and its CPU ProcessModel
advances them exactly like the emulator: the axons due this tick (a ring buffer of axon activity, one slot per
delay) drive the crossbar, `neurocomp.targets.truenorth.neuron.step` updates the neurons, spikes are scheduled
onto their destination axons. One process for all cores, because a TrueNorth destination is an (axon, delay)
that Lava ports cannot express between processes without adding Lava's one-step Dense latency.

Timing: our tick k is Lava step k + 1. The input RingBuffer sends x[k] at step k + 1; the process puts it on its
axons' delay (1), so it drives the neurons at tick k + 1, as on the emulator. The model is tagged "fixed_pt"
as well as "truenorth", so the run config that picks Lava's fixed-point models picks it too.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from neurocomp.backends.emulator import _routing
from neurocomp.backends.lava_compat import import_lava
from neurocomp.ir.netlist import Netlist
from neurocomp.targets.truenorth import synapse_matrix
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

    `seed` and `column` = (sample, batch) fix the stochastic leak/threshold draws: the model draws the
    emulator's (neurons, batch) array each tick and keeps column `sample`, so a stochastic program equals
    the emulator's batch run sample by sample.
    """

    def __init__(self, *, netlist: Netlist, opts: NeuronOptions, seed: int = 0, column: tuple[int, int] = (0, 1),
                 name: str | None = None) -> None:
        super().__init__(netlist=netlist, opts=opts, seed=seed, column=column, name=name)
        self.s_in = InPort(shape=(netlist.n_inputs,))
        self.s_out = OutPort(shape=(netlist.n_neurons,))
        self.v = Var(shape=(netlist.n_neurons,), init=np.asarray(netlist.params["v_init"], dtype=np.int64))


class _BatchColumn:
    """The emulator's Generator as seen by one sample: each draw is made for the whole batch, one column kept."""

    def __init__(self, rng: np.random.Generator, column: tuple[int, int]) -> None:
        self._rng, (self._sample, self._batch) = rng, column

    def integers(self, low: int, high: int, size: tuple[int, ...], dtype: Any) -> np.ndarray:
        full = self._rng.integers(low, high, size=size[:-1] + (self._batch,), dtype=dtype)
        return full[..., self._sample:self._sample + 1]


@implements(proc=TrueNorthCores, protocol=LoihiProtocol)
@requires(CPU)
@tag("truenorth", "fixed_pt")
class PyTrueNorthCoresModel(PyLoihiProcessModel):
    """Emulator semantics per step: axons due now -> crossbar -> neuron.step -> schedule spikes and input."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=1)
    v: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def __init__(self, proc_params: Any) -> None:
        super().__init__(proc_params)
        n: Netlist = proc_params["netlist"]
        self._params, self._opts = n.params, proc_params["opts"]
        self._crossbar = synapse_matrix(n)
        self._route = _routing(n, n.edge_src, n.edge_axon, n.edge_delay, n.n_neurons)
        self._feed = _routing(n, n.in_channel, n.in_axon, n.in_delay, n.n_inputs)
        self._depth = max(list(self._route) + list(self._feed) + [1]) + 1
        self._ring = np.zeros((self._depth, n.n_axons), dtype=np.int64)
        self._rng = _BatchColumn(np.random.default_rng(proc_params["seed"]), proc_params["column"])

    def run_spk(self) -> None:
        t = self.time_step - 1
        slot = t % self._depth
        act = (self._ring[slot] > 0).astype(np.int64)
        self._ring[slot] = 0
        acc = np.asarray(self._crossbar @ act)[:, None]
        v, spikes = step(self._params, self.v.astype(np.int64)[:, None], acc, self._opts, self._rng)  # type: ignore[arg-type]
        self.v[:] = v[:, 0]
        x = self.s_in.recv().astype(np.int64)
        for d, m in self._route.items():
            self._ring[(t + d) % self._depth] += m @ spikes[:, 0].astype(np.int64)
        for d, m in self._feed.items():
            self._ring[(t + d) % self._depth] += m @ x
        self.s_out.send(spikes[:, 0].astype(np.int32))
