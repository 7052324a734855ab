"""Network-level IR: frozen typed nodes close to NIR, with shapes inferred and checked.

Discrete-time semantics (shared by every backend, so results compare tick for tick):
every edge into a neuron node has a latency of one tick. A neuron node sums the
outputs of its incoming linear chains from tick t-1, then updates:

    IF : v <- v + I + bias
    LIF: v <- decay * v + I + bias
    spike when v >= threshold; then v <- 0 ("zero") or v <- v - threshold ("subtract");
    a neuron that does not spike is floored at v_min (default -inf: no floor)

Readout nodes accumulate without spiking (v <- v + I + bias). Weights and
thresholds are real numbers here; quantisation maps them to a target's integers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np

from neurocomp.encoding import ENCODINGS
from neurocomp.errors import GraphError

RESETS = ("zero", "subtract")


def _frozen_array(a: np.ndarray | Iterable[float], dtype=np.float64) -> np.ndarray:
    arr = np.array(a, dtype=dtype)
    arr.setflags(write=False)
    return arr


def _pair(v: int | Iterable[int]) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return (int(v), int(v))
    t = tuple(int(x) for x in v)
    if len(t) == 1:
        return (t[0], t[0])
    if len(t) != 2:
        raise GraphError(f"expected an int or a pair, got {v!r}")
    return t  # type: ignore[return-value]


@dataclass(frozen=True, eq=False)
class Node:
    name: str


@dataclass(frozen=True, eq=False)
class Input(Node):
    shape: tuple[int, ...]
    encoding: str = "spikes"  # one of neurocomp.encoding.ENCODINGS: how analog input becomes per-tick input

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if not self.shape or min(self.shape) < 1:
            raise GraphError(f"{self.name}: input shape {self.shape} must have positive sizes")
        if self.encoding not in ENCODINGS:
            raise GraphError(f"{self.name}: unknown input encoding {self.encoding!r}; expected one of {ENCODINGS}")


@dataclass(frozen=True, eq=False)
class Output(Node):
    pass


@dataclass(frozen=True, eq=False)
class Affine(Node):
    """y = W x + b; W shaped (out, in). Linear is Affine with bias None."""

    weight: np.ndarray
    bias: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight", _frozen_array(self.weight))
        if self.weight.ndim != 2:
            raise GraphError(f"{self.name}: Affine weight must be 2-D, got {self.weight.shape}")
        if self.bias is not None:
            object.__setattr__(self, "bias", _frozen_array(self.bias))
            if self.bias.shape != (self.weight.shape[0],):
                raise GraphError(f"{self.name}: bias shape {self.bias.shape} != ({self.weight.shape[0]},)")


@dataclass(frozen=True, eq=False)
class Conv2d(Node):
    """2-D cross-correlation (torch convention); weight (Cout, Cin/groups, kh, kw)."""

    weight: np.ndarray
    bias: np.ndarray | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight", _frozen_array(self.weight))
        object.__setattr__(self, "stride", _pair(self.stride))
        object.__setattr__(self, "padding", _pair(self.padding))
        if self.weight.ndim != 4:
            raise GraphError(f"{self.name}: Conv2d weight must be 4-D, got {self.weight.shape}")
        if self.groups < 1 or self.weight.shape[0] % self.groups:
            raise GraphError(f"{self.name}: {self.weight.shape[0]} output channels not divisible by groups={self.groups}")
        if min(self.stride) < 1 or min(self.padding) < 0:
            raise GraphError(f"{self.name}: stride must be >= 1 and padding >= 0")
        if self.bias is not None:
            object.__setattr__(self, "bias", _frozen_array(self.bias))
            if self.bias.shape != (self.weight.shape[0],):
                raise GraphError(f"{self.name}: bias shape {self.bias.shape} != ({self.weight.shape[0]},)")


@dataclass(frozen=True, eq=False)
class SumPool2d(Node):
    kernel: tuple[int, int]
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kernel", _pair(self.kernel))
        object.__setattr__(self, "stride", _pair(self.kernel if self.stride is None else self.stride))
        object.__setattr__(self, "padding", _pair(self.padding))
        if min(self.kernel) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise GraphError(f"{self.name}: SumPool2d needs kernel and stride >= 1 and padding >= 0")


@dataclass(frozen=True, eq=False)
class Flatten(Node):
    pass


@dataclass(frozen=True, eq=False)
class Scale(Node):
    """y = scale * x elementwise (scale broadcast to the input shape)."""

    scale: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", _frozen_array(self.scale))


@dataclass(frozen=True, eq=False)
class Neuron(Node):
    """Common per-neuron parameters; arrays are broadcast to the population shape."""

    threshold: np.ndarray = field(default_factory=lambda: np.ones(()))
    bias: np.ndarray = field(default_factory=lambda: np.zeros(()))
    v_init: np.ndarray = field(default_factory=lambda: np.zeros(()))
    reset: str = "zero"
    v_min: float = -np.inf  # floor applied when the neuron does not fire (-inf: none)

    def __post_init__(self) -> None:
        object.__setattr__(self, "v_min", float(self.v_min))
        if self.v_min > 0 or np.isnan(self.v_min):
            raise GraphError(f"{self.name}: v_min must be <= 0 or -inf, got {self.v_min}")
        for name in ("threshold", "bias", "v_init"):
            object.__setattr__(self, name, _frozen_array(getattr(self, name)))
        if self.reset not in RESETS:
            raise GraphError(f"{self.name}: reset must be one of {RESETS}, got {self.reset!r}")


@dataclass(frozen=True, eq=False)
class IF(Neuron):
    pass


@dataclass(frozen=True, eq=False)
class LIF(Neuron):
    decay: np.ndarray = field(default_factory=lambda: np.ones(()))

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "decay", _frozen_array(self.decay))
        if np.any(self.decay < 0) or np.any(self.decay > 1):
            raise GraphError(f"{self.name}: LIF decay must lie in [0, 1]")


@dataclass(frozen=True, eq=False)
class Readout(Neuron):
    """Non-spiking accumulator (membrane potential is the result)."""


LINEAR_OPS = (Affine, Conv2d, SumPool2d, Flatten, Scale)
NEURONS = (IF, LIF, Readout)


@dataclass(frozen=True, eq=False)
class Graph:
    nodes: tuple[Node, ...]
    edges: tuple[tuple[str, str], ...]
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "edges", tuple((str(a), str(b)) for a, b in self.edges))
        object.__setattr__(self, "metadata", dict(self.metadata))
        object.__setattr__(self, "_shapes", _infer_shapes(self))

    @property
    def node_map(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    def node(self, name: str) -> Node:
        try:
            return self.node_map[name]
        except KeyError:
            raise GraphError(f"no node named {name!r}") from None

    def shape(self, name: str) -> tuple[int, ...]:
        return self._shapes[name]  # type: ignore[attr-defined]

    def predecessors(self, name: str) -> list[str]:
        return [a for a, b in self.edges if b == name]

    def successors(self, name: str) -> list[str]:
        return [b for a, b in self.edges if a == name]

    @property
    def inputs(self) -> list[Input]:
        return [n for n in self.nodes if isinstance(n, Input)]

    @property
    def outputs(self) -> list[Output]:
        return [n for n in self.nodes if isinstance(n, Output)]

    def topological(self) -> list[str]:
        return _toposort(self)


def _toposort(g: Graph) -> list[str]:
    indeg = {n.name: 0 for n in g.nodes}
    for a, b in g.edges:
        indeg[b] += 1
    order, ready = [], [n.name for n in g.nodes if indeg[n.name] == 0]
    succ: dict[str, list[str]] = {n.name: [] for n in g.nodes}
    for a, b in g.edges:
        succ[a].append(b)
    while ready:
        cur = ready.pop(0)
        order.append(cur)
        for nxt in succ[cur]:
            indeg[nxt] -= 1
            if indeg[nxt] == 0:
                ready.append(nxt)
    if len(order) != len(g.nodes):
        cyc = sorted(k for k, v in indeg.items() if v > 0)
        raise GraphError(f"graph has a cycle through {cyc}; recurrent graphs are not supported yet")
    return order


def _conv_out(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


def _node_shape(node: Node, ins: list[tuple[int, ...]]) -> tuple[int, ...]:
    if isinstance(node, Input):
        return node.shape
    if not ins:
        raise GraphError(f"{node.name}: node has no input")
    if not isinstance(node, NEURONS) and len(ins) != 1:
        raise GraphError(f"{node.name}: {type(node).__name__} takes one input, got {len(ins)}")
    if len(set(ins)) != 1:
        raise GraphError(f"{node.name}: inputs disagree in shape: {ins}")
    shp = ins[0]
    if isinstance(node, Affine):
        n_in = int(np.prod(shp))
        if len(shp) != 1 or n_in != node.weight.shape[1]:
            raise GraphError(f"{node.name}: Affine expects input ({node.weight.shape[1]},), got {shp}")
        return (node.weight.shape[0],)
    if isinstance(node, (Conv2d, SumPool2d)):
        if len(shp) != 3:
            raise GraphError(f"{node.name}: {type(node).__name__} expects (C, H, W) input, got {shp}")
        c, h, w = shp
        if isinstance(node, Conv2d):
            cout, cin_g, kh, kw = node.weight.shape
            if cin_g * node.groups != c:
                raise GraphError(f"{node.name}: Conv2d expects {cin_g * node.groups} input channels, got {c}")
        else:
            cout, (kh, kw) = c, node.kernel
        oh = _conv_out(h, kh, node.stride[0], node.padding[0])
        ow = _conv_out(w, kw, node.stride[1], node.padding[1])
        if oh < 1 or ow < 1:
            raise GraphError(f"{node.name}: kernel {kh}x{kw} does not fit input {h}x{w}")
        return (cout, oh, ow)
    if isinstance(node, Flatten):
        return (int(np.prod(shp)),)
    if isinstance(node, Scale):
        try:
            np.broadcast_to(node.scale, shp)
        except ValueError:
            raise GraphError(f"{node.name}: scale shape {node.scale.shape} does not broadcast to {shp}") from None
        return shp
    if isinstance(node, Neuron):
        for pname in ("threshold", "bias", "v_init") + (("decay",) if isinstance(node, LIF) else ()):
            arr = getattr(node, pname)
            try:
                np.broadcast_to(arr, shp)
            except ValueError:
                raise GraphError(f"{node.name}: {pname} shape {arr.shape} does not broadcast to {shp}") from None
        return shp
    if isinstance(node, Output):
        return shp
    raise GraphError(f"{node.name}: unsupported node type {type(node).__name__}")


def _infer_shapes(g: Graph) -> dict[str, tuple[int, ...]]:
    names = [n.name for n in g.nodes]
    if len(set(names)) != len(names):
        raise GraphError("duplicate node names")
    known = set(names)
    for a, b in g.edges:
        for end in (a, b):
            if end not in known:
                raise GraphError(f"edge ({a!r}, {b!r}) names unknown node {end!r}")
    if not any(isinstance(n, Input) for n in g.nodes):
        raise GraphError("graph has no Input node")
    nodes = {n.name: n for n in g.nodes}
    shapes: dict[str, tuple[int, ...]] = {}
    for name in _toposort(g):
        ins = [shapes[a] for a, b in g.edges if b == name]
        shapes[name] = _node_shape(nodes[name], ins)
        _check_finite(nodes[name])
    return shapes


def _check_finite(node: Node) -> None:
    for key, val in vars(node).items():
        if isinstance(val, np.ndarray) and not np.all(np.isfinite(val)):
            raise GraphError(f"{node.name}: {key} contains NaN or Inf")
