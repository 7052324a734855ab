"""The hooks a chip family provides (targets/<family>/__init__.py), as a typed protocol.

Generic code reaches a family only through these names; `check_hooks` verifies, when a family loads, that its
package defines every one with the protocol's parameters, so a missing or mis-shaped hook is one TargetError
naming the family and the hook instead of an AttributeError deep in a stage. A hook a family has no use for
still exists and says so (TrueNorth's `count_cores` refuses; Loihi's `stochastic_synapses` returns None).
"""
from __future__ import annotations

import inspect
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

import numpy as np

from neurocomp.errors import TargetError

if TYPE_CHECKING:
    import scipy.sparse as sp

    from neurocomp.ir.graph import Graph, Neuron
    from neurocomp.ir.layers import Layer, Network
    from neurocomp.ir.netlist import Netlist
    from neurocomp.native import Verdict
    from neurocomp.partition.build import LayerCount
    from neurocomp.quantize.qnetwork import QNetwork
    from neurocomp.target import TargetSpec


class TargetHooks(Protocol):
    """One chip family: legalise, quantise, build cores, check tables, emulate its neurons, time a tick."""

    WEIGHT_MODES: tuple[str, ...]   # weight modes it can store; the first is the default
    SHARED_LISTS: bool              # cores that repeat a span name one synapse list (neurocomp.ir.synapses), so a
                                    # conv's synapses are not all stored; the builder checks memory per list it makes

    def adapt(self, graph: Graph, spec: TargetSpec) -> tuple[Graph, tuple[str, ...]]:
        """The graph as the family's neurons can run it, and one note per change (compile reports them, and the
        program stores the adapted graph, so its reference backend computes what the chip does)."""

    def legalize(self, net: Network, spec: TargetSpec, weights: str = "levels") -> Network:
        """Rewrite layers no core can hold (fan-in splits, read-out parts)."""

    def native(self, layer: Layer, spec: TargetSpec) -> Verdict:
        """Does the layer map natively (every neuron's fan-in on one core), and why not."""

    def weight_max(self, spec: TargetSpec, w: np.ndarray) -> float:
        """The largest integer weight an op with weights `w` may store."""

    def param_limits(self, spec: TargetSpec) -> dict[str, float]:
        """Register limits in graph units (threshold, bias, ...)."""

    def cluster_weights(self, w: np.ndarray, spec: TargetSpec, mode: str = "levels") -> np.ndarray:
        """Integer weights as the cores can store them in `mode`, one row per neuron or channel. A column that is zero
        in every row must stay zero and change no other: a conv's are clustered on its live taps alone."""

    def cluster_composed(self, w: np.ndarray, spec: TargetSpec, mode: str, taps: int) -> np.ndarray:
        """`cluster_weights` for stored weights that each sum `taps` of the op's weights (a pool before it)."""

    def neuron_params(self, name: str, neuron: Neuron, size: int, spec: TargetSpec) -> dict[str, np.ndarray]:
        """Per-neuron registers of a layer, in the family's units."""

    def check_params(self, name: str, params: dict[str, np.ndarray], spec: TargetSpec) -> None:
        """Refuse registers outside the spec's ranges."""

    def exact_ticks(self, net: Network, layer: Layer, params: Mapping[str, np.ndarray],
                    spec: TargetSpec) -> tuple[float, str]:
        """Ticks before a register limit the Graph lacks can act, and which limit."""

    def build_netlist(self, qnet: QNetwork, spec: TargetSpec) -> Netlist:
        """The cores: tables, destinations, delays."""

    def count_cores(self, qnet: QNetwork, spec: TargetSpec,
                    progress: Callable[[str], None] | None = None) -> list[LayerCount]:
        """Cores per layer as build_netlist would cut them, without building tables (a census); `progress(name)` as
        each layer's count starts."""

    def verify_netlist(self, n: Netlist, spec: TargetSpec) -> None:
        """Per-core limits the generic check does not know."""

    def check_tables(self, params: Mapping[str, np.ndarray], tables: Mapping[str, np.ndarray],
                     count: Mapping[str, int]) -> str | None:
        """Why a loaded program's tables cannot be this family's (None: they can)."""

    def synapse_matrix(self, n: Netlist) -> sp.csr_matrix:
        """Effective integer weight of every synapse, as the chip applies it."""

    def stochastic_synapses(self, n: Netlist, spec: TargetSpec) -> Any | None:
        """The synapses that fire with a probability, or None when all are deterministic."""

    def deterministic(self, n: Netlist) -> bool:
        """Whether no update draws random numbers: fan-out copies (Netlist.copies) then compute identical spikes,
        and a batch can be split."""

    def stepper(self, n: Netlist, spec: TargetSpec, batch: int, acc_bound: int, xp: Any) -> Any:
        """The emulator's vectorised neuron update for the whole netlist."""

    def potential(self, state: dict[str, Any]) -> np.ndarray:
        """Membrane potential in graph units from the neuron state."""

    def tick_seconds(self, core_counts: Mapping[str, np.ndarray], spec: TargetSpec, n_routers: int,
                     n_chips: int = 1) -> tuple[Any, Any]:
        """Seconds per tick (and the slack against real time, where known) from per-core counts."""


HOOKS = tuple(name for name in vars(TargetHooks) if not name.startswith("_")) + ("WEIGHT_MODES", "SHARED_LISTS")


def check_hooks(module: ModuleType, family: str) -> None:
    """Every hook of the protocol present in `module`, callables with the protocol's parameter names."""
    for name in HOOKS:
        if not hasattr(module, name):
            raise TargetError(f"targets/{family}: hook {name!r} is missing (neurocomp.hooks.TargetHooks lists it)")
        want = getattr(TargetHooks, name, None)
        if callable(want):
            expected = list(inspect.signature(want).parameters)[1:]
            got = list(inspect.signature(getattr(module, name)).parameters)
            if got != expected:
                raise TargetError(f"targets/{family}: hook {name} takes ({', '.join(got)}), "
                                  f"the protocol ({', '.join(expected)})")
    modes = module.WEIGHT_MODES
    if not (isinstance(modes, tuple) and modes and all(isinstance(m, str) for m in modes)):
        raise TargetError(f"targets/{family}: WEIGHT_MODES must be a non-empty tuple of names")
    if not isinstance(module.SHARED_LISTS, bool):
        raise TargetError(f"targets/{family}: SHARED_LISTS must be True or False")
