"""Does each layer map natively: every neuron's fan-in on one core, with no partial sums?

The rules are the target's (`hooks.native(layer, spec)` in targets/<family>/native.py);
this module holds the verdict type, the per-network check and the suggestion search the
hooks share. A suggestion is the fewest groups (a divisor of the input and output channel
counts) that make the layer's widest conv native; when no divisor works, the output channels
are rounded up to a multiple of the groups that do.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from neurocomp.errors import UserError
from neurocomp.ir.fold import fold_linear
from neurocomp.ir.graph import Graph
from neurocomp.ir.layers import Layer, Network, lower
from neurocomp.ir.reach import Reach
from neurocomp.target import Target


@dataclass(frozen=True)
class Usage:
    """One resource a layer's core needs: used vs allowed."""

    resource: str
    used: int
    allowed: int

    @property
    def ok(self) -> bool:
        return self.used <= self.allowed


@dataclass(frozen=True)
class Verdict:
    layer: str
    shape: tuple[int, ...]
    fan_in: int                  # inputs the widest neuron reads, all projections
    usage: tuple[Usage, ...]     # the first one is the axons fan-in costs
    suggestion: str = ""         # a change that makes the layer native ("" when native)
    impossible: str = ""         # why no grouping can ever fit ("" when one can)

    @property
    def native(self) -> bool:
        return all(u.ok for u in self.usage)

    @property
    def why(self) -> str:
        return "; ".join(f"{u.resource} {u.used} > {u.allowed}" for u in self.usage if not u.ok)

    def row(self) -> dict[str, Any]:
        return {"layer": self.layer, "shape": list(self.shape), "fan_in": self.fan_in,
                "axons": self.usage[0].used, "allowed": self.usage[0].allowed, "native": self.native,
                "why": self.why, "suggestion": self.suggestion,
                "usage": [{"resource": u.resource, "used": u.used, "allowed": u.allowed} for u in self.usage]}


# (in channels, out channels, groups) -> whether the layer would be native so shaped
Fits = Callable[[int, int, int], bool]


def suggest(r: Reach, fits: Fits) -> str:
    """The change to the projection's conv that `fits` accepts: fewest groups dividing both channel counts,
    else the fewest groups dividing the input channels with the output channels rounded up to a multiple."""
    if r.conv is None:
        return "fewer inputs per neuron (split the layer)"
    cin, cout, groups = r.conv
    options = [g for g in range(1, cin + 1) if cin % g == 0]
    for g in options:
        if cout % g == 0 and fits(cin, cout, g):
            return f"groups={g}" if g != groups else ""
    for g in options:
        rounded = -(-cout // g) * g
        if fits(cin, rounded, g):
            return f"groups={g}, out channels {cout} -> {rounded}"
    return ""


def verdicts(net: Network, target: Target) -> tuple[Verdict, ...]:
    """Every layer's verdict, from the target's hook."""
    return tuple(target.hooks.native(layer, target.spec) for layer in net.layers)


def check_graph(graph: Graph, target: Target) -> tuple[Verdict, ...]:
    """Verdicts on the layers the compiler maps (linear chains folded, before legalize splits any)."""
    return verdicts(lower(fold_linear(graph)), target)


def report(vs: tuple[Verdict, ...]) -> dict[str, Any]:
    """The compile report's and `neurocomp check`'s record: the summary line and one row per layer."""
    return {"summary": summary(vs), "native_layers": sum(v.native for v in vs), "total_layers": len(vs),
            "layers": [v.row() for v in vs]}


def summary(vs: tuple[Verdict, ...]) -> str:
    return f"{sum(v.native for v in vs)} of {len(vs)} layers map natively"


def require_possible(vs: tuple[Verdict, ...]) -> None:
    """A UserError naming the first layer no grouping can fit: the model needs a different shape."""
    bad = next((v for v in vs if v.impossible), None)
    if bad is not None:
        raise UserError(f"layer {bad.layer}: {bad.impossible}")


def verdict(layer: Layer, fan_in: int, usage: tuple[Usage, ...], suggestion: str = "", impossible: str = "") -> Verdict:
    """A read-out too wide for a core needs no reshaping: legalize splits it into host-summed parts, exactly."""
    native = all(u.ok for u in usage)
    if layer.kind == "readout":
        suggestion, impossible = "none needed: compile splits a read-out into host-summed parts (exact)", ""
    return Verdict(layer.name, tuple(layer.shape), fan_in, usage, "" if native else suggestion,
                   "" if native else impossible)
