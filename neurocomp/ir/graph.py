"""Network-level IR: frozen typed nodes close to NIR, with shapes inferred and checked.

Discrete-time semantics (shared by every backend, so results compare tick for tick):
every edge into a neuron node has a latency of one tick. A neuron node sums the
outputs of its incoming linear chains from tick t-1, then updates:

    IF : v <- v + I + bias
    LIF: i <- decay_u * i + I;  v <- decay * v + i + bias
    spike when v >= threshold; then v <- 0 ("zero") or v <- v - threshold ("subtract");
    a neuron that does not spike is floored at v_min (default -inf: no floor)

LIF with decay_u = 0 (the default) has no current memory (i = I), so the
second state costs nothing unless asked for; decay_u > 0 is a current-based
(CUBA) LIF, Loihi's native neuron. The biases of the linear ops feeding a
neuron are part of I. Readout nodes do not spike: the same update with
optional decay/decay_u (1 and 0: a plain accumulator v <- v + I + bias).

Because every edge into a neuron is delayed, a cycle through a neuron node is
well defined (a recurrent layer); a cycle of linear ops only is an error. Weights
and thresholds are real numbers here; quantisation maps them to a target's integers.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import mmap
import sys
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Iterable, Mapping

import numpy as np

from neurocomp.encoding import ENCODINGS
from neurocomp.errors import GraphError

RESETS = ("zero", "subtract")


def _frozen_array(a: np.ndarray | Iterable[float], dtype=np.float64) -> np.ndarray:
    """A read-only array of `a`. One that is read-only already and owns its data (a node's own array, as
    dataclasses.replace passes it on), or is a read-only view of all of such an array (on_taps' transposed kernel),
    is kept as it is: a dense paper-size conv's fan-in split copied its weights some 4,500 times (1.3 s) for
    nothing. A view of part of an array is copied, so that a node never keeps a larger array alive."""
    if isinstance(a, np.ndarray) and a.dtype == dtype and not a.flags.writeable and _whole_of_own(a):
        return a
    arr = np.array(a, dtype=dtype)
    arr.setflags(write=False)
    return arr


def _whole_of_own(a: np.ndarray) -> bool:
    """`a` is all of a read-only array that owns its data, or that wraps a mapping of its own (_zeros_apart)."""
    root = a
    while isinstance(root.base, np.ndarray):
        root = root.base
    own = root.flags.owndata or isinstance(root.base, mmap.mmap)
    return own and not root.flags.writeable and root.size == a.size


def _zeros_apart(shape: tuple[int, ...]) -> np.ndarray:
    """Zeros in an anonymous mapping of their own, whose pages stay unallocated until written. np.zeros gives that
    only while glibc maps the block apart: once a freed block of that size has raised its mmap threshold, it serves
    the block from its heap and clears all of it (the dense paper-size net's fan-in parts: 1.6 GB of zeros written,
    in small pages that every forked census worker then copies the page tables of). The kernel sets neighbouring
    mappings in one area, so thousands of parts stay a few hundred areas."""
    nbytes = math.prod(shape) * 8
    if nbytes < APART_BYTES or not hasattr(mmap, "MAP_ANONYMOUS"):
        return np.zeros(shape)
    try:
        mapped = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | NORESERVE)
    except OSError:   # out of mappings or address space: the allocator's zeros, as before
        return np.zeros(shape)
    return np.ndarray(shape, np.float64, buffer=mapped)


APART_BYTES = 1 << 16   # below this a kernel's zeros are a few pages, wherever they lie
# Linux's MAP_NORESERVE (<sys/mman.h>; Python's mmap does not name it): the mapping is not charged against memory
# as a whole, only its written pages are. Neighbouring mappings merge into one area, and under the default
# overcommit heuristic a fork fails on any charged area larger than RAM: a dense net's parts hold 40 GB of zeros.
NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000 if sys.platform.startswith("linux") else 0)


def fresh(a: np.ndarray) -> np.ndarray:
    """An array its caller has just computed and keeps no other use of, made read-only so that a Node holds it as
    it is instead of a copy (_frozen_array): a fan-in split's parts hand over a masked kernel each."""
    a.setflags(write=False)
    return a


def uniform_or_full(a: np.ndarray | float, shape: tuple[int, ...]) -> np.ndarray:
    """A per-neuron field as the Graph should hold it: one value (0-d) where every neuron has the same, else
    broadcast to `shape`. A fan-in split makes tens of millions of partial neurons that share one threshold,
    bias and initial potential: each would otherwise hold its own copy through every stage."""
    values = np.asarray(a, dtype=np.float64)
    flat = values.ravel()
    if flat.size and np.all(flat == flat[0]):
        return np.array(flat[0])
    return np.broadcast_to(values, shape).copy()


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

    @functools.cached_property
    def unfinite(self) -> str | None:
        """The first of the node's arrays that holds a NaN or Inf, or None. Its arrays are read-only, so the node is
        checked once, not again in every Graph it is part of (lowering, each rewrite, quantising): a dense paper-size
        net's fan-in parts were read in full some seven times."""
        return _unfinite(vars(self).items())


def _unfinite(fields: Iterable[tuple[str, object]]) -> str | None:
    return next((key for key, val in fields if isinstance(val, np.ndarray) and not np.all(np.isfinite(val))), None)


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

    @functools.cached_property
    def live_taps(self) -> tuple[np.ndarray, np.ndarray]:
        """(the flat (Cin/groups, kh, kw) taps some output channel weights, the weights on them, (Cout, taps)): a
        fan-in part keeps its layer's kernel shape, mostly zeros, and each window of its rows reads only these."""
        flat = self.weight.reshape(self.weight.shape[0], -1)
        live = np.flatnonzero(np.any(flat != 0, axis=0))
        return live, flat[:, live]


def on_taps(op: Conv2d, taps: np.ndarray, values: np.ndarray, **changes) -> Conv2d:
    """`op` (with `changes`) whose weight is `values` (Cout, taps.size) on the flat (Cin/groups, kh, kw) `taps`
    (ascending) and 0 elsewhere, its live_taps and finiteness (Node.unfinite) known from them. A fan-in part's kernel
    is its layer's masked to a few input channels: stored input-channel-major (a transposed view), those channels'
    weights are one block, so the rest of its pages stay the allocator's untouched zeros (on the dense paper-size net
    1.2-1.8 GB of zeros were written, huge page by huge page, then read by every pass of quantize)."""
    cout, cin_g, kh, kw = op.weight.shape
    if taps.size == cin_g * kh * kw:   # every tap (a whole conv): its kernel as it is
        weight = np.array(values, dtype=np.float64).reshape(op.weight.shape)
    else:
        stored = _zeros_apart((cin_g, cout, kh, kw))
        c, ky, kx = np.unravel_index(taps, (cin_g, kh, kw))
        stored[c[None, :], np.arange(cout)[:, None], ky[None, :], kx[None, :]] = values
        weight = fresh(stored).transpose(1, 0, 2, 3)
    node = dataclasses.replace(op, weight=fresh(weight), **changes)
    live = np.any(values != 0, axis=0)
    vars(node)["live_taps"] = (taps[live], values[:, live])
    vars(node)["unfinite"] = _unfinite([("weight", values)] + [kv for kv in vars(node).items() if kv[0] != "weight"])
    return node


def replaced(op: Node, **changes) -> Node:
    """dataclasses.replace(op, **changes), keeping a conv's live taps where its weight is the same: a fan-in part's
    kernel is mostly zeros, and finding its taps again reads and copies all of it (a renamed part, a dropped bias)."""
    node = dataclasses.replace(op, **changes)
    if "weight" not in changes and "live_taps" in vars(op):
        vars(node)["live_taps"] = vars(op)["live_taps"]
    return node


@dataclass(frozen=True, eq=False)
class Correlation(Conv2d):
    """A Conv2d with one output channel whose kernel is bound at run time (SiamFC's
    exemplar embedding, slid over the search embedding). The weight it is compiled with
    fixes the core structure; `neurocomp.bind` writes a new kernel into those cores.
    `reach` (1/0, the weight's shape; None: all of it) is where a bound kernel can be non-zero:
    set when a fixed op is folded in or a fan-in split keeps some channels, so cores are
    planned from it, never from the weight's values (partition.rows.structural)."""

    reach: np.ndarray | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.weight.shape[0] != 1 or self.groups != 1:
            raise GraphError(f"{self.name}: a Correlation has one output channel and groups=1, got "
                             f"weight {self.weight.shape}, groups={self.groups}")
        if self.reach is not None:
            reach = np.asarray(self.reach)
            object.__setattr__(self, "reach", _frozen_array(reach if reach.dtype == bool else reach != 0, dtype=bool))
            if self.reach.shape != self.weight.shape:
                raise GraphError(f"{self.name}: reach shape {self.reach.shape} != weight shape {self.weight.shape}")


@dataclass(frozen=True, eq=False)
class Crop(Node):
    """y = x[:, top:top+height, left:left+width]: a window of a (C, H, W) map."""

    top: int
    left: int
    height: int
    width: int

    def __post_init__(self) -> None:
        if min(self.top, self.left) < 0 or min(self.height, self.width) < 1:
            raise GraphError(f"{self.name}: crop offsets must be >= 0 and sizes >= 1")


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


def _set_decays(node: Neuron) -> None:
    """decay in [0, 1]; decay_u in [0, 1): a current that never decays would need an infinite bias fold."""
    for name, top in (("decay", 1.0), ("decay_u", np.nextafter(1.0, 0.0))):
        arr = _frozen_array(getattr(node, name))
        object.__setattr__(node, name, arr)
        if np.any(arr < 0) or np.any(arr > top):
            raise GraphError(f"{node.name}: {type(node).__name__} {name} must lie in [0, {'1' if top == 1 else '1)'}")


@dataclass(frozen=True, eq=False)
class LIF(Neuron):
    decay: np.ndarray = field(default_factory=lambda: np.ones(()))
    decay_u: np.ndarray = field(default_factory=lambda: np.zeros(()))  # synaptic current decay (0: none)

    def __post_init__(self) -> None:
        super().__post_init__()
        _set_decays(self)


@dataclass(frozen=True, eq=False)
class Readout(Neuron):
    """Non-spiking accumulator (membrane potential is the result); leaky with decay < 1 (NIR LI),
    with a synaptic current when decay_u > 0 (NIR CubaLI)."""

    decay: np.ndarray = field(default_factory=lambda: np.ones(()))
    decay_u: np.ndarray = field(default_factory=lambda: np.zeros(()))

    def __post_init__(self) -> None:
        super().__post_init__()
        _set_decays(self)


LINEAR_OPS = (Affine, Conv2d, SumPool2d, Flatten, Scale, Crop)
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

    @functools.cached_property
    def node_map(self) -> Mapping[str, Node]:
        """Nodes by name, built once and read-only: lowering looks up every projection's chain in it (a dense
        paper-size net's fan-in split has some 5,500 projections over as many nodes)."""
        return MappingProxyType({n.name: n for n in self.nodes})

    @functools.cached_property
    def _adjacent(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """(sources, destinations) of each node in edge order, built once: lowering asks for every node's."""
        into: dict[str, list[str]] = {n.name: [] for n in self.nodes}
        out: dict[str, list[str]] = {n.name: [] for n in self.nodes}
        for a, b in self.edges:
            into[b].append(a)
            out[a].append(b)
        return into, out

    def node(self, name: str) -> Node:
        try:
            return self.node_map[name]
        except KeyError:
            raise GraphError(f"no node named {name!r}") from None

    def shape(self, name: str) -> tuple[int, ...]:
        return self._shapes[name]  # type: ignore[attr-defined]

    def predecessors(self, name: str) -> list[str]:
        return list(self._adjacent[0].get(name, ()))

    def successors(self, name: str) -> list[str]:
        return list(self._adjacent[1].get(name, ()))

    @property
    def inputs(self) -> list[Input]:
        return [n for n in self.nodes if isinstance(n, Input)]

    @property
    def outputs(self) -> list[Output]:
        return [n for n in self.nodes if isinstance(n, Output)]

    def topological(self) -> list[str]:
        return _toposort(self)


def _toposort(g: Graph) -> list[str]:
    """Kahn's order (node order among ties, so feed-forward graphs keep their order). When only
    cycles remain, the first waiting neuron node with an ordered input enters next: its other
    inputs are feedback, which the one-tick edge latency makes well defined."""
    indeg = {n.name: 0 for n in g.nodes}
    succ: dict[str, list[str]] = {n.name: [] for n in g.nodes}
    for a, b in g.edges:
        indeg[b] += 1
        succ[a].append(b)
    neurons = [n.name for n in g.nodes if isinstance(n, NEURONS)]
    order, done, ready = [], set(), [n.name for n in g.nodes if indeg[n.name] == 0]
    while len(order) < len(g.nodes):
        if not ready:
            entry = next((n for n in neurons if n not in done and any(a in done for a in g.predecessors(n))), None)
            if entry is None:
                cyc = sorted(k for k in indeg if k not in done)
                raise GraphError(f"graph has a cycle through {cyc} with no neuron node on it (a loop of linear ops "
                                 f"has no latency), or nodes no Input reaches")
            indeg[entry], ready = 0, [entry]
        cur = ready.pop(0)
        order.append(cur)
        done.add(cur)
        for nxt in succ[cur]:
            indeg[nxt] -= 1
            if indeg[nxt] == 0 and nxt not in done:
                ready.append(nxt)
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
    if isinstance(node, Crop):
        if len(shp) != 3 or node.top + node.height > shp[1] or node.left + node.width > shp[2]:
            raise GraphError(f"{node.name}: crop {node.height}x{node.width} at ({node.top}, {node.left}) "
                             f"does not fit input {shp}")
        return (shp[0], node.height, node.width)
    if isinstance(node, Flatten):
        return (int(np.prod(shp)),)
    if isinstance(node, Scale):
        try:
            np.broadcast_to(node.scale, shp)
        except ValueError:
            raise GraphError(f"{node.name}: scale shape {node.scale.shape} does not broadcast to {shp}") from None
        return shp
    if isinstance(node, Neuron):
        for pname in ("threshold", "bias", "v_init") + (("decay", "decay_u") if isinstance(node, (LIF, Readout)) else ()):
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
    into: dict[str, list[str]] = {name: [] for name in names}   # each node's sources, in edge order
    for a, b in g.edges:
        into[b].append(a)
    shapes: dict[str, tuple[int, ...]] = {}
    order = _toposort(g)
    for name in order:  # feedback inputs are not known yet: a neuron takes its shape from the others
        shapes[name] = _node_shape(nodes[name], [shapes[a] for a in into[name] if a in shapes])
        _check_finite(nodes[name])
    rank = {name: i for i, name in enumerate(order)}
    for name in sorted({b for a, b in g.edges if rank[a] >= rank[b]}):  # feedback inputs must agree too
        _node_shape(nodes[name], [shapes[a] for a in into[name]])
    return shapes


def _check_finite(node: Node) -> None:
    if node.unfinite is not None:
        raise GraphError(f"{node.name}: {node.unfinite} contains NaN or Inf")
