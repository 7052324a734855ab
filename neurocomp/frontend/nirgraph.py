"""NIR import and export (nir >= 1.0.7). docs/NIR.md has these rules with each framework's files and readers.

Time. NIR is continuous-time and leaves discretisation to the reader, so `dt` (seconds) is an option; a file
does not say the step its writer ran at (snnTorch and SpikingJelly: 1e-4, Norse: its own dt, Sinabs: one
step, dt = 1). Our Graph delays every edge into a neuron by one tick (neurocomp.ir.graph); NIR edges are
instantaneous, so an imported network answers one tick later per neuron layer, with the same spikes (a
Delay's relay layers add NIR's delay, no lag); inputs of a layer that would arrive a different number of
ticks late (a skip connection past a neuron layer) are refused. A layer L ticks late would integrate its bias
alone for L ticks before its input arrives: from_nir holds the bias back (bias_timing "held") by starting v
where those ticks end at NIR's initial potential (v0 = (v* - b (1 + d + .. + d^(L-1))) / d^L). Where that is
not exact it refuses and names bias_timing "early" (biases act from tick 0): a bias into a decaying current
(CubaLIF), which no starting potential holds back, and a start from which the bias alone crosses the threshold
or the floor before the input arrives. to_nir does the converse: it writes the start our early bias carries a
layer to (as v_reset), so the file means in NIR what our graph computes, refusing where NIR cannot say it;
with bias_timing "early" it writes our biases as they are and marks the file (metadata neurocomp_bias_timing),
which from_nir reads back unchanged.

Neurons. NIR spikes when v > v_threshold and then sets v = v_reset, starting from v = 0; ours spike when
u >= threshold and then set u = 0. With g > 0 the gain from input I to v per tick, u = (v - v_reset) / g
keeps every spike; s below is the step fraction of a time constant tau: dt/tau (integrator "euler", forward
Euler, needs dt <= tau) or 1 - exp(-dt/tau) ("exp": the exact solution with the input held over the step,
as Sinabs's LIF steps at dt = 1). The default "auto" is euler but refuses a LIF/CubaLIF in Rockpool's
convention, r = tau exp(-dt/tau) / dt, whose own step v = exp(-dt/tau) v + I no integrator reproduces.

    IF  (dv/dt = R I): NIR's equation gives v += dt r I (if_gain "nir"); Norse and Sinabs write r = 1 and
        mean v += I, which snnTorch's reader assumes too (if_gain "step": v += r I). "auto" reads r = 1/dt
        (SpikingJelly, to_nir) and r = 1 as unit gain and refuses any other r until if_gain says which.
    LIF (tau dv/dt = v_leak - v + R I): v += s (v_leak - v + r I); decay = 1 - s, g = s r,
        bias = (v_leak - v_reset) / r.
    CubaLIF (tau_syn dI/dt = -I + w_in S; tau_mem dv/dt = v_leak - v + R I), the new I feeding v in the same
        step (snnTorch's Synaptic order): decay_u = 1 - s_syn, decay = 1 - s_mem, g = s_mem r s_syn w_in,
        our current i = I / (s_syn w_in), bias = (v_leak - v_reset) / (r s_syn w_in).
    spiking: threshold = nextafter((v_threshold - v_reset) / g, +inf) (NIR's strict > as our >=),
        v_init = -v_reset / g, reset "zero". Any v_reset maps.
    Precision: a gain within 4 ulps of the file's own float type of 1 is 1, and where it is, the decay is
        rounded to that type: writers state unit gain as r = tau/dt, which float32 holds to ~1e-7, and
        snnTorch's beta = 0.75 must come back as 0.75 (not 1 - 1e-4/float32(4e-4)) or threshold ties flip.
    Threshold (z = H(x - threshold), stateless) becomes a LIF with decay 0 and threshold nextafter(threshold):
        v = x every tick. TrueNorth cannot hold it (linear leak only); Loihi's largest dv leaves v/4096,
        exact while |v| < 64.
    Read-outs (non-spiking) report v itself: I (v += r x), LI (decay = 1 - s, bias = s v_leak) and CubaLI
        (as CubaLIF, bias = s_mem v_leak) become a Readout with those decays, and their input gain (r, s r or
        g above) is folded into the output rows of the one Affine/Linear (uniform: Conv2d) that feeds only the
        read-out; otherwise a GraphError.

Recurrent edges (cycles) are kept: every edge into a neuron has one tick of latency, so a cycle through a
neuron is well defined (a framework's recurrent weights read the previous step's spikes: the same); a cycle
of linear ops only is an error. Delay (k = delay/dt ticks, uniform, on a spike path) becomes k relay IF
layers in a row (threshold 1, each repeats its input spikes one tick later); other Delays raise a GraphError.

Linear ops map one to one: Affine, Linear (bias None), Conv2d (int or pair padding, 'valid', and 'same' for
stride 1 and odd kernels; dilation 1 only), SumPool2d, Flatten (must flatten every non-batch dim). An Input
typed with a leading batch dimension of 1 (a torch exporter tracing a (1, ...) sample) loses it where every
consumer takes one dimension less. Our IR has no scaling op, so AvgPool2d becomes SumPool2d and Scale
disappears, their factor (1/kernel area, or the scale array) folded into the weights of the single
Affine/Linear/Conv2d that follows (through Flatten; a uniform factor also through pooling), or, where no
weighted op follows, a uniform factor into the gain g of the single IF/LIF/CubaLIF that does (its threshold,
bias and v_init divide by it). Nested NIR graphs are inlined as "outer.inner". Uniform neuron parameters
become scalars. Conv1d raises a GraphError naming the nodes.

Export (to_nir) writes the same mapping backwards with g = 1: IF with r = 1/dt (v += dt r I = I, what NIR's
equation, SpikingJelly's and Norse's readers take; snnTorch's reader refuses it, Sinabs's ignores r), LIF with
r = 1 and tau/dt folded into the weights feeding it (lif_r="1": every reader takes it, Norse's, which ignores r,
included) or r = tau/dt (lif_r="tau/dt": exact both ways, snnTorch's and SpikingJelly's readers take it; the
default "auto" folds each LIF whose inputs allow it and writes the others so), a LIF with
decay_u > 0 as CubaLIF with w_in = tau_syn/dt, Readouts as I, LI or CubaLI with unit gain, and v_reset =
-v_init, so the NIR potential is ours shifted. Reset by subtraction and a finite v_min have no NIR form and are
refused. Scale exports as nir.Scale (import folds it into the next weighted op again). save_nir writes under
neurocomp.safewrite and marks its files with the root HDF5 attribute `neurocomp_format` = "neurocomp.nir"
(NIR readers ignore it), so only such a file is replaced.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import nir
import numpy as np

from neurocomp.errors import FormatError, GraphError
from neurocomp.safewrite import Kind, write_file
from neurocomp.ir.graph import (IF, LIF, Affine, Conv2d, Correlation, Crop, Flatten, Graph, Input, Node, Output, Readout,
                                Scale, SumPool2d)

if TYPE_CHECKING:
    from neurocomp.ir.layers import Layer, Network

Edges = list[tuple[str, str]]

_UNSUPPORTED = {
    "Conv1d": "only 2-D convolutions are supported",
}
_SPIKING = (nir.Input, nir.IF, nir.LIF, nir.CubaLIF, nir.Threshold)
MAX_DELAY_TICKS = 64  # each tick of a Delay costs one layer of relay neurons
_WEIGHTED = (nir.Affine, nir.Linear, nir.Conv2d)
_NEURONS = (nir.IF, nir.LIF, nir.CubaLIF)
_SCALING = (nir.AvgPool2d, nir.Scale)


def load_nir(path: str | Path, dt: float = 1e-3, if_gain: str = "auto", integrator: str = "auto",
             bias_timing: str = "held") -> Graph:
    """Read a .nir file; `dt`, `if_gain`, `integrator` and `bias_timing` as in from_nir."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such file")
    g = _read(path)
    try:
        return from_nir(g, dt, if_gain, integrator, bias_timing)
    except GraphError as e:
        raise GraphError(f"{path}: {e}") from None


def _declared_bytes(path: Path) -> float:
    """Bytes nir.read would allocate: every HDF5 dataset's declared size (compression can hide a huge one)."""
    import h5py

    sizes: list[float] = []
    try:
        with h5py.File(path, "r") as f:
            f.visititems(lambda _name, obj: sizes.append(float(np.prod(obj.shape, dtype=float)) * obj.dtype.itemsize)
                         if isinstance(obj, h5py.Dataset) and obj.shape is not None else None)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise FormatError(f"{path}: not a NIR (HDF5) file: {_one_line(e)}") from None
    return sum(sizes)


def _read(path: Path) -> nir.NIRGraph:
    """nir.read, retried without type checks (older files, e.g. rockpool's, fail them), after checking that its
    arrays fit in memory."""
    from neurocomp.memory import require

    require(f"{path} (its HDF5 datasets)", _declared_bytes(path))
    try:
        return nir.read(path)
    except OSError as e:
        raise FormatError(f"{path}: not a NIR (HDF5) file: {e}") from None
    except Exception as e:  # nir reports malformed graphs with ValueError, KeyError, assert, ...
        first = _one_line(e)
    try:
        g = nir.read(path, type_check=False)
    except Exception:  # same reason as above
        raise FormatError(f"{path}: not a readable NIR graph: {first}") from None
    g.metadata = {**g.metadata, "nir_type_check": f"failed, read without it: {first}"}
    return g


def _one_line(e: Exception) -> str:
    return f"{type(e).__name__}: {' '.join(str(e).split())}"


NIR_FORMAT = "neurocomp.nir"


def _not_our_nir(path: Path) -> str | None:
    """safewrite's test for a .nir file save_nir may replace: it carries our root attribute."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            mark = f.attrs.get("neurocomp_format")
    except Exception:  # h5py raises OSError and others on files that are not HDF5
        return "not an HDF5 file"
    return None if mark == NIR_FORMAT else "no neurocomp_format attribute"


NIR_KIND = Kind("neurocomp-written .nir", False, _not_our_nir)


def save_nir(graph: Graph, path: str | Path, dt: float = 1e-3, inputs: Sequence[str | Path] = (),
             lif_r: str = "auto", bias_timing: str = "held") -> None:
    """Write under the neurocomp.safewrite policy; `inputs`: files the output must not replace or contain; `lif_r`
    and `bias_timing` as to_nir takes them."""
    import h5py

    g = to_nir(graph, dt, lif_r, bias_timing)

    def write(tmp: Path) -> None:
        nir.write(tmp, g)
        with h5py.File(tmp, "a") as f:
            f.attrs["neurocomp_format"] = NIR_FORMAT

    write_file(path, NIR_KIND, write, inputs)


# ---------------------------------------------------------------- import


IF_GAINS = ("auto", "nir", "step")
INTEGRATORS = ("auto", "euler", "exp")
BIAS_TIMINGS = ("held", "early")
# to_nir's mark: our biases act from tick 0, L ticks before the input of a layer at depth L, and from_nir keeps them so
BIAS_TIMING = "neurocomp_bias_timing"


def from_nir(g: nir.NIRGraph, dt: float = 1e-3, if_gain: str = "auto", integrator: str = "auto",
             bias_timing: str = "held") -> Graph:
    """Our Graph of a NIR graph discretised at `dt`; `if_gain` decides the IF reading, `integrator` the step of
    the leaky ones, `bias_timing` whether a layer's bias starts with its input ("held", NIR's meaning) or at
    tick 0 ("early") (module docstring)."""
    marked = BIAS_TIMING in (g.metadata or {})   # our own file: its biases act from tick 0
    reading = Reading(dt, if_gain, integrator, bias_timing)
    reading = dataclasses.replace(reading, bias_timing="early") if marked else reading
    nodes, edges = _inline(g)
    _check_supported(nodes)
    _drop_batch_dim(nodes, edges)
    folds = _scale_folds(nodes, edges)
    edges = _splice(nodes, edges, [k for k, n in nodes.items() if isinstance(n, nir.Scale)])
    ours = {name: _convert(name, node, reading, folds.get(name, [])) for name, node in nodes.items()}
    ours = _fold_readout_gains(ours, edges, {k: _readout_gain(k, n, reading) for k, n in nodes.items()
                                             if type(n) in _GAINS})
    relays = {name for name, node in nodes.items() if isinstance(node, nir.Delay)}
    for name in sorted(relays):
        edges = _relay_chain(ours, edges, name, _delay_ticks(name, nodes[name], nodes, edges, reading.dt))
    relays |= set(ours) - set(nodes)
    graph = _topo_ordered(Graph(tuple(ours.values()), tuple(edges), _metadata(g, reading)))
    return graph if reading.bias_timing == "early" else _delay_biases(graph, relays)


@dataclasses.dataclass(frozen=True)
class Reading:
    """How NIR's continuous equations become ticks: the step dt (seconds), the IF gain convention and the
    integrator of tau dv/dt = -v + ... over one step ("euler": v += dt/tau (...); "exp": the exact solution with
    the input held over the step, v = e v + (1 - e)(...), e = exp(-dt/tau), as Sinabs's LIF steps; "auto":
    euler, refusing a file in Rockpool's convention, which neither reproduces), and when a layer's bias starts
    ("held": with its input, as in NIR; "early": at tick 0, a layer at depth L integrating it alone L ticks)."""

    dt: float
    if_gain: str = "auto"
    integrator: str = "auto"
    bias_timing: str = "held"

    def __post_init__(self) -> None:
        if not self.dt > 0:
            raise GraphError(f"dt must be > 0 seconds, got {self.dt}")
        if self.if_gain not in IF_GAINS:
            raise GraphError(f"if_gain must be one of {IF_GAINS}, got {self.if_gain!r}")
        if self.integrator not in INTEGRATORS:
            raise GraphError(f"integrator must be one of {INTEGRATORS}, got {self.integrator!r}")
        if self.bias_timing not in BIAS_TIMINGS:
            raise GraphError(f"bias_timing must be one of {BIAS_TIMINGS}, got {self.bias_timing!r}")

    def check_writer(self, name: str, node: nir.LIF | nir.CubaLIF, param: str) -> None:
        """Refuse, unless an integrator is chosen, r = tau exp(-dt/tau) / dt: Rockpool writes that for its step
        v = exp(-dt/tau) v + I, which no integrator of NIR's equation gives (forward Euler reads
        v = (1 - dt/tau) v + exp(-dt/tau) I; exp reads v = e v + (1 - e) tau e / dt I)."""
        tau, r = _f64(getattr(node, param)), _f64(node.r)
        rockpool = np.abs(r * self.dt / tau - np.exp(-self.dt / tau)) <= 4 * np.finfo(_precision(node)).eps
        if self.integrator == "auto" and np.all(rockpool):
            raise GraphError(f"{type(node).__name__} {name!r}: r = {param} exp(-dt/{param}) / dt at dt={self.dt:g} "
                             f"s, as Rockpool writes its neurons, whose step v = exp(-dt/tau) v + I no reading of "
                             f"NIR's equation reproduces (forward Euler: decay 1 - dt/tau, input gain exp(-dt/tau)); "
                             f"pass integrator='euler' (or 'exp'; --integrator on the command line) to read it by the "
                             f"equation anyway")

    def step(self, name: str, node: nir.NIRNode, param: str) -> np.ndarray:
        """The fraction s of one step in v = (1 - s) v + s (...) for the time constant `param`: dt/tau, at most 1
        (forward Euler would overshoot beyond), or 1 - exp(-dt/tau)."""
        kind = type(node).__name__
        tau = _positive(name, kind, param, getattr(node, param))
        if self.integrator == "exp":
            return -np.expm1(-self.dt / tau)
        if np.any(self.dt > tau):
            raise GraphError(f"{kind} {name!r}: dt={self.dt:g} s exceeds {param} (min {tau.min():g} s), so forward "
                             f"Euler would overshoot; pass a dt <= {param} (snnTorch exports use tau = dt / (1 - beta))")
        return self.dt / tau


def _delay_biases(graph: Graph, relays: set[str]) -> Graph:
    """Hold each layer's bias back until its input arrives: NIR edges are instantaneous, ours take a tick into
    each neuron, so a layer L ticks behind NIR would integrate its bias alone for L ticks. Starting it at the v0
    that those L ticks carry to the NIR initial potential (v0 = (v* - b (1 + d + .. + d^(L-1))) / d^L) removes
    that; GraphError where no starting potential does."""
    return _per_biased_layer(graph, relays, _warm_start)


def _per_biased_layer(graph: Graph, relays: set[str], neuron: Callable[[Layer, int], Node]) -> Graph:
    """The graph with `neuron(layer, ticks)` in place of each biased layer's neuron that runs `ticks` > 0 behind
    NIR."""
    from neurocomp.ir.layers import lower

    net = lower(graph)
    lag = _lags(net, relays)
    moved = {lay.name: neuron(lay, lag[lay.name]) for lay in net.layers if lag.get(lay.name, 0) and np.any(lay.bias())}
    return Graph(tuple(moved.get(n.name, n) for n in graph.nodes), graph.edges, graph.metadata)


def _lags(net: Network, relays: set[str]) -> dict[str, int]:
    """Ticks each layer runs behind NIR: one per neuron layer from an Input, itself included, none for a Delay's
    relays (their tick is NIR's delay). Feed-forward inputs of a layer must agree: with instantaneous edges NIR
    adds branches of any depth in the same step, ours would add them ticks apart."""
    lag = {i.name: 0 for i in net.inputs}
    feedback = set(net.feedback())
    changed = True
    while changed:
        changed = False
        for lay in net.layers:
            known = [lag[p.source] for p in lay.projections if p.source in lag and (p.source, lay.name) not in feedback]
            own = min(known) + int(lay.name not in relays) if known else None
            if own is not None and lag.get(lay.name) != own:
                lag[lay.name], changed = own, True
    for lay in net.layers:
        sources = {p.source: lag.get(p.source) for p in lay.projections if (p.source, lay.name) not in feedback}
        if len(set(sources.values())) > 1:
            raise GraphError(f"{lay.name!r}: its inputs {sources} are that many neuron layers deep, and each layer "
                             f"adds a tick here where NIR's edges add none, so they would arrive ticks apart; "
                             f"our IR cannot realign them")
    return lag


def _warm_start(lay: Layer, ticks: int) -> Node:
    """The layer's neuron with v_init moved back `ticks` ticks of its bias (the only way our IR delays a bias).
    GraphError where that is not NIR's meaning: a bias through a decaying current (its current would hold
    `ticks` ticks of bias when the input arrives), or a start from which the bias alone fires or floors."""
    _require_plain_bias(lay, ticks, HOLD)
    b, d = lay.bias().reshape(lay.shape), lay.decays()[0].reshape(lay.shape)
    target = np.broadcast_to(np.asarray(lay.neuron.v_init, dtype=np.float64), lay.shape)
    carried, kept = sum(d ** k for k in range(ticks)), d ** ticks
    start = np.where(kept > 0, (target - b * carried) / np.where(kept > 0, kept, 1), target)
    _bias_alone(lay, start, ticks, HOLD)
    return dataclasses.replace(lay.neuron, v_init=_compact(start))


def _require_plain_bias(lay: Layer, ticks: int, doing: str) -> None:
    """GraphError where a bias flows through a decaying current: no starting potential shifts it by `ticks`."""
    if not lay.bias_exact():
        raise _unheld(lay, ticks, doing, "the bias flows into a decaying synaptic current, which no starting "
                                         "potential empties")


def _bias_alone(lay: Layer, start: np.ndarray, ticks: int, doing: str) -> np.ndarray:
    """The potential `ticks` ticks of bias alone carry `start` to; GraphError if it crosses the threshold or the
    floor on the way (the neuron would fire or floor before its input arrives)."""
    b, d = lay.bias().reshape(lay.shape), lay.decays()[0].reshape(lay.shape)
    theta = lay.param("threshold").reshape(lay.shape) if lay.kind == "spiking" else np.inf
    v, crossed = start, np.zeros(lay.shape, dtype=bool)
    for _ in range(ticks):
        v = d * v + b
        crossed |= (v >= theta) | (v < lay.neuron.v_min)
    if np.any(crossed):
        raise _unheld(lay, ticks, doing, f"the bias alone would take {int(crossed.sum())} neurons across the "
                                         f"threshold or the floor before the input")
    return v


HOLD, WRITE = "hold its bias back", "write its bias as starting with its input"
_EARLY = {HOLD: "to let every bias act from tick 0",
          WRITE: "to write the biases as they act here, from tick 0, in a file marked so (only neurocomp reads "
                 "the mark)"}


def _unheld(lay: Layer, ticks: int, doing: str, why: str) -> GraphError:
    return GraphError(f"{lay.name!r}: our IR cannot {doing} for the {ticks} tick{'s' * (ticks > 1)} until its input "
                      f"arrives (NIR's edges are instantaneous, ours take a tick per layer): {why}; pass "
                      f"bias_timing='early' (--bias-timing early) {_EARLY[doing]}")


def _drop_batch_dim(nodes: dict[str, nir.NIRNode], edges: Edges) -> None:
    """A leading batch dimension of 1 on an Input (as torch exporters trace a (1, ...) sample) is dropped where
    every consumer takes one dimension less (Affine/Linear: a vector; Conv2d: (C, H, W))."""
    for name, node in nodes.items():
        shape = node.input_type.get("input") if isinstance(node, nir.Input) else None
        if shape is None or np.ndim(shape) != 1 or len(shape) < 2 or np.asarray(shape).dtype.kind not in "iu" \
                or int(shape[0]) != 1:
            continue
        rest = tuple(int(v) for v in shape[1:])
        succs = [nodes[b] for a, b in edges if a == name]
        if succs and all(_takes(n, rest) for n in succs):
            nodes[name] = nir.Input(input_type=np.array(rest), metadata=node.metadata)


def _takes(node: nir.NIRNode, shape: tuple[int, ...]) -> bool:
    if isinstance(node, (nir.Affine, nir.Linear)):
        return len(shape) == 1 and np.shape(node.weight)[1] == shape[0]
    return isinstance(node, nir.Conv2d) and len(shape) == 3 and np.shape(node.weight)[1] * int(node.groups) == shape[0]


def _inline(g: nir.NIRGraph) -> tuple[dict[str, nir.NIRNode], Edges]:
    """Flatten nested graphs into "outer.inner" names and splice out their Input/Output nodes."""
    nodes: dict[str, nir.NIRNode] = {}
    edges: Edges = []
    ports: list[str] = []
    _collect(g, "", nodes, edges, ports)
    return nodes, _splice(nodes, edges, ports)


def _collect(g: nir.NIRGraph, prefix: str, nodes: dict[str, nir.NIRNode], edges: Edges, ports: list[str]) -> None:
    for key, node in g.nodes.items():
        name = f"{prefix}{key}"
        if isinstance(node, nir.NIRGraph):
            _collect(node, name + ".", nodes, edges, ports)
            ports += [f"{name}.{k}" for k, n in node.nodes.items() if isinstance(n, (nir.Input, nir.Output))]
        elif name in nodes:
            raise GraphError(f"node name {name!r} occurs twice once nested NIR graphs are inlined")
        else:
            nodes[name] = node
    edges += [(_port(g, prefix, str(a), nir.Output), _port(g, prefix, str(b), nir.Input)) for a, b in g.edges]


def _port(g: nir.NIRGraph, prefix: str, key: str, kind: type) -> str:
    """An edge naming a nested graph means that graph's single Input (or Output) node."""
    sub = g.nodes.get(key)
    if not isinstance(sub, nir.NIRGraph):
        return prefix + key
    found = [k for k, n in sub.nodes.items() if isinstance(n, kind)]
    if len(found) != 1:
        raise GraphError(f"nested NIR graph {prefix + key!r} has {len(found)} {kind.__name__} nodes; "
                         f"an edge naming the graph needs exactly one")
    return f"{prefix}{key}.{found[0]}"


def _splice(nodes: dict[str, nir.NIRNode], edges: Edges, names: list[str]) -> Edges:
    """Remove pass-through nodes, joining each predecessor to each successor."""
    for name in names:
        preds = [a for a, b in edges if b == name]
        succs = [b for a, b in edges if a == name]
        edges = [e for e in edges if name not in e] + [(a, b) for a in preds for b in succs]
        del nodes[name]
    return edges


def _check_supported(nodes: dict[str, nir.NIRNode]) -> None:
    """One error listing every unmappable node type (a cycle of linear ops only is the Graph's error)."""
    unsupported: dict[str, list[str]] = {}
    for name, node in nodes.items():
        kind = type(node).__name__
        if kind not in _CONVERTERS and kind != "Scale":  # Scale nodes are folded away
            unsupported.setdefault(kind, []).append(name)
    problems = [f"unsupported NIR node type {kind} {names}: {_UNSUPPORTED.get(kind, 'no mapping to our IR')}"
                for kind, names in unsupported.items()]
    if problems:
        raise GraphError("; ".join(problems))


def _scale_folds(nodes: dict[str, nir.NIRNode], edges: Edges) -> dict[str, list[np.ndarray]]:
    """Where each AvgPool2d/Scale factor goes: the weighted node that follows it."""
    folds: dict[str, list[np.ndarray]] = {}
    for name, node in nodes.items():
        if isinstance(node, _SCALING):
            factor = _factor(node)
            folds.setdefault(_fold_target(name, node, factor, nodes, edges), []).append(factor)
    return folds


def _factor(node: nir.NIRNode) -> np.ndarray:
    if isinstance(node, nir.AvgPool2d):
        return np.array(1.0 / np.prod(_pair("kernel_size", node.kernel_size)))
    return _compact(np.asarray(node.scale, dtype=np.float64))


def _fold_target(name: str, node: nir.NIRNode, factor: np.ndarray, nodes: dict[str, nir.NIRNode], edges: Edges) -> str:
    through = (nir.Flatten, nir.Scale) if factor.ndim else (nir.Flatten, nir.Scale, nir.SumPool2d, nir.AvgPool2d)
    cur = name
    while True:
        succs = [b for a, b in edges if a == cur]
        if len(succs) == 1 and isinstance(nodes[succs[0]], _WEIGHTED + (() if factor.ndim else _NEURONS)):
            return succs[0]
        if len(succs) != 1 or not isinstance(nodes[succs[0]], through):
            feeds = [f"{type(nodes[s]).__name__} {s!r}" for s in succs] or ["nothing"]
            raise GraphError(f"{type(node).__name__} {name!r}: our IR has no scaling op, so its factor must fold "
                             f"into the weights of one following Affine/Linear/Conv2d, or if uniform into the "
                             f"threshold of one following IF/LIF/CubaLIF (through "
                             f"{'/'.join(t.__name__ for t in through)}), but {cur!r} feeds {', '.join(feeds)}")
        cur = succs[0]


def _convert(name: str, node: nir.NIRNode, reading: Reading, folds: list[np.ndarray]) -> Node:
    try:
        return _CONVERTERS[type(node).__name__](name, node, reading, folds)
    except FormatError as e:
        raise FormatError(f"{type(node).__name__} {name!r}: {e}") from None


def _input(name: str, node: nir.Input, reading: Reading, folds: list[np.ndarray]) -> Input:
    shape = node.input_type.get("input")
    if shape is None:
        raise GraphError(f"Input {name!r} has no shape")
    encoding = _text(node.metadata.get("encoding", "spikes"))
    return Input(name, _ints("input shape", shape), encoding)


def _affine(name: str, node: nir.Affine | nir.Linear, reading: Reading, folds: list[np.ndarray]) -> Affine:
    bias = getattr(node, "bias", None)
    return Affine(name, _folded(name, _f64(node.weight), folds), None if bias is None else _f64(bias))


def _conv(name: str, node: nir.Conv2d, reading: Reading, folds: list[np.ndarray]) -> Conv2d:
    if _pair("dilation", node.dilation) != (1, 1):
        raise GraphError(f"Conv2d {name!r}: dilation {_pair('dilation', node.dilation)} is not supported (only 1)")
    weight = _folded(name, _f64(node.weight), folds)
    stride = _pair("stride", node.stride)
    bias = None if node.bias is None else _f64(node.bias)
    if bias is not None and bias.ndim == 0:  # some exporters write a scalar bias
        bias = np.full(weight.shape[0], bias)
    padding = _conv_padding(name, node.padding, weight.shape[2:], stride)
    return Conv2d(name, weight, bias, stride, padding, _ints("groups", node.groups, 1)[0])


def _conv_padding(name: str, padding: Any, kernel: tuple[int, ...], stride: tuple[int, int]) -> tuple[int, int]:
    if not isinstance(padding, (str, bytes)):
        return _pair("padding", padding)
    if _text(padding) == "valid":
        return (0, 0)
    if stride != (1, 1) or any(k % 2 == 0 for k in kernel):
        raise GraphError(f"Conv2d {name!r}: padding 'same' with stride {stride} and kernel {tuple(kernel)} "
                         f"needs asymmetric padding, which our Conv2d lacks (stride 1 and odd kernels only)")
    return (kernel[0] // 2, kernel[1] // 2)


def _pool(name: str, node: nir.SumPool2d | nir.AvgPool2d, reading: Reading, folds: list[np.ndarray]) -> SumPool2d:
    return SumPool2d(name, _pair("kernel_size", node.kernel_size), _pair("stride", node.stride),
                     _pair("padding", node.padding))


def _flatten(name: str, node: nir.Flatten, reading: Reading, folds: list[np.ndarray]) -> Flatten:
    shape = (node.input_type or {}).get("input")
    (start,), (end,) = _ints("start_dim", node.start_dim, 1), _ints("end_dim", node.end_dim, 1)
    if shape is None:
        full = (start, end) == (0, -1)
    else:
        n = len(shape)
        full = -n <= min(start, end) and max(start, end) < n and (start % n, end % n) == (0, n - 1)
    if not full:
        raise GraphError(f"Flatten {name!r}: start_dim={start}, end_dim={end} on input "
                         f"{None if shape is None else tuple(int(s) for s in shape)} flattens only some dims; "
                         f"our Flatten flattens every non-batch dim (start_dim=0, end_dim=-1)")
    return Flatten(name)


def _if(name: str, node: nir.IF, reading: Reading, folds: list[np.ndarray]) -> IF:
    r = _positive(name, "IF", "r", node.r)
    gain = _if_gain(name, node, r, reading.dt, reading.if_gain)
    return IF(name, bias=np.zeros(()), **_shifted(node, gain * _product(folds)))


def _if_gain(name: str, node: nir.IF, r: np.ndarray, dt: float, if_gain: str) -> np.ndarray:
    """Input to v per tick. NIR's dv/dt = r I gives dt r ("nir"); Norse and Sinabs write r = 1 meaning v += I
    (snnTorch reads it so): r per tick ("step"). "auto": r = 1/dt is the equation's unit gain (SpikingJelly
    writes it), r = 1 the per-tick one (no writer means dt); any other r is ambiguous between the two."""
    if if_gain == "nir":
        return _snap_unit(node, dt * r)
    if if_gain == "step":
        return r
    unit = (_snap_unit(node, dt * r) == 1) | (r == 1)
    if not np.all(unit):
        raise GraphError(f"IF {name!r}: r = {np.unique(r[~unit])[:3]} is neither 1 (v += I a tick, as Norse and "
                         f"Sinabs write it) nor 1/dt = {1 / dt:g} (NIR's dv/dt = r I at dt={dt:g} s), so the file does "
                         f"not say which it means: pass if_gain='nir' (v += dt r I) or if_gain='step' (v += r I); "
                         f"--if-gain on the command line")
    return np.ones_like(r)


def _product(folds: list[np.ndarray]) -> np.ndarray:
    """The uniform pool/scale factors folded into a neuron (1 for none)."""
    return np.asarray(np.prod([np.asarray(f, dtype=np.float64) for f in folds]) if folds else 1.0)


def _lif(name: str, node: nir.LIF, reading: Reading, folds: list[np.ndarray]) -> LIF:
    r = _positive(name, "LIF", "r", node.r)
    step = reading.step(name, node, "tau")
    reading.check_writer(name, node, "tau")
    f = _product(folds)
    bias = _compact((_f64(node.v_leak) - _f64(node.v_reset)) / (r * f))
    return LIF(name, bias=bias, decay=_decay(node, step, step * r), **_shifted(node, _snap_unit(node, step * r) * f))


def _cubalif(name: str, node: nir.CubaLIF, reading: Reading, folds: list[np.ndarray]) -> LIF:
    syn, mem = reading.step(name, node, "tau_syn"), reading.step(name, node, "tau_mem")
    reading.check_writer(name, node, "tau_mem")
    into_v = _positive(name, "CubaLIF", "r", node.r) * syn * _positive(name, "CubaLIF", "w_in", node.w_in)
    f = _product(folds)
    bias = _compact((_f64(node.v_leak) - _f64(node.v_reset)) / (into_v * f))
    return LIF(name, bias=bias, decay=_decay(node, mem, mem * into_v), decay_u=_decay(node, syn, mem * into_v),
               **_shifted(node, _snap_unit(node, mem * into_v) * f))


def _threshold(name: str, node: nir.Threshold, reading: Reading, folds: list[np.ndarray]) -> LIF:
    """Stateless z = H(x - threshold): a LIF that forgets everything each tick (decay 0)."""
    theta = np.nextafter(_f64(node.threshold), np.inf)
    return LIF(name, threshold=_compact(theta), decay=np.zeros(()), reset="zero")


def _readout(name: str, node: nir.I | nir.LI | nir.CubaLI, reading: Reading, folds: list[np.ndarray]) -> Readout:
    """Non-spiking read-outs report v itself: their input gain is folded into the weights before them."""
    if isinstance(node, nir.I):
        return Readout(name)
    if isinstance(node, nir.LI):
        mem = reading.step(name, node, "tau")
        return Readout(name, bias=_compact(mem * _f64(node.v_leak)), decay=_compact(1.0 - mem))
    syn, mem = reading.step(name, node, "tau_syn"), reading.step(name, node, "tau_mem")
    return Readout(name, bias=_compact(mem * _f64(node.v_leak)), decay=_compact(1.0 - mem), decay_u=_compact(1.0 - syn))


def _readout_gain(name: str, node: nir.I | nir.LI | nir.CubaLI, reading: Reading) -> np.ndarray:
    """Gain from the read-out's input to v per tick: r (I), s r (LI), s_mem r s_syn w_in (CubaLI); s as Reading.step."""
    kind = type(node).__name__
    r = _positive(name, kind, "r", node.r)
    if isinstance(node, nir.I):
        return _compact(r)
    if isinstance(node, nir.LI):
        return _compact(reading.step(name, node, "tau") * r)
    return _compact(reading.step(name, node, "tau_mem") * r * reading.step(name, node, "tau_syn")
                    * _positive(name, kind, "w_in", node.w_in))


def _fold_readout_gains(ours: dict[str, Node], edges: Edges, gains: dict[str, np.ndarray]) -> dict[str, Node]:
    """Scale the output rows of the one weighted op feeding each read-out whose gain is not 1."""
    for name, gain in gains.items():
        if np.allclose(gain, 1, rtol=4 * np.finfo(np.float64).eps, atol=0):  # 1 up to the rounding of our export
            continue
        preds = [a for a, b in edges if b == name]
        src = ours[preds[0]] if len(preds) == 1 else None
        if not isinstance(src, (Affine, Conv2d)) or [b for a, b in edges if a == src.name] != [name] \
                or (isinstance(src, Conv2d) and gain.ndim):
            raise GraphError(f"read-out {name!r}: its input gain {gain.min():g}..{gain.max():g} must fold into the "
                             f"weights of one Affine/Linear (or, uniform, Conv2d) that feeds only it; got {preds}")
        rows = gain.reshape((-1,) + (1,) * (src.weight.ndim - 1))
        bias = None if src.bias is None else src.bias * gain
        ours[src.name] = dataclasses.replace(src, weight=src.weight * rows, bias=bias)
    return ours


def _relay(name: str, node: nir.Delay, reading: Reading, folds: list[np.ndarray]) -> IF:
    """The first of a Delay's relays: an IF with threshold 1 repeats its input spikes one tick later."""
    return IF(name, threshold=np.ones(()))


def _delay_ticks(name: str, node: nir.Delay, nodes: dict[str, nir.NIRNode], edges: Edges, dt: float) -> int:
    """Ticks of a Delay: uniform, a whole number >= 1 of dt, on a spike path (relays repeat spikes only)."""
    ticks = _f64(node.delay) / dt
    k = float(np.rint(ticks.reshape(-1)[0])) if ticks.size else 0.0
    preds = [a for a, b in edges if b == name]
    if not 1 <= k <= MAX_DELAY_TICKS or not np.allclose(ticks, k, rtol=1e-9, atol=1e-9):
        raise GraphError(f"Delay {name!r}: delays {np.unique(ticks)[:4]} ticks at dt={dt:g} s; only one uniform "
                         f"whole number of ticks in 1..{MAX_DELAY_TICKS} maps (a chain of relay IF layers)")
    if not preds or not all(isinstance(nodes[p], _SPIKING) for p in preds):
        raise GraphError(f"Delay {name!r}: fed by {preds}; relays repeat spikes, so a Delay must follow a spiking "
                         f"node ({', '.join(t.__name__ for t in _SPIKING)})")
    return int(k)


def _relay_chain(ours: dict[str, Node], edges: Edges, name: str, ticks: int) -> Edges:
    """`ticks` relays in a row, the first keeping the Delay's name: each adds the one tick of its input edge."""
    chain = [name] + [f"{name}.{k}" for k in range(2, ticks + 1)]
    ours.update({c: IF(c, threshold=np.ones(())) for c in chain[1:]})
    return [(chain[-1] if a == name else a, b) for a, b in edges] + list(zip(chain[:-1], chain[1:]))


def _shifted(node: nir.IF | nir.LIF | nir.CubaLIF, gain: np.ndarray) -> dict[str, Any]:
    """Threshold, v_init and reset of u = (v - v_reset) / gain (gain: input to v per tick, times folded factors)."""
    v_reset = _f64(node.v_reset)
    threshold = np.nextafter((_f64(node.v_threshold) - v_reset) / gain, np.inf)
    return {"threshold": _compact(threshold), "v_init": _compact((0.0 - v_reset) / gain), "reset": "zero"}


def _precision(node: nir.NIRNode) -> type[np.floating]:
    """The coarsest float type among the node's arrays: the precision its writer stated the parameters in."""
    kinds = [a.dtype for a in map(np.asarray, vars(node).values()) if a.dtype.kind == "f"]
    return max(kinds, key=lambda d: np.finfo(d).eps, default=np.dtype(np.float64)).type


def _snap_unit(node: nir.NIRNode, gain: np.ndarray) -> np.ndarray:
    """A gain within the file's own rounding of 1 is 1: writers state unit gain as r = tau/dt (or 1/dt), which a
    float32 file holds only to ~1e-7, and 1 - 1e-8 would move a threshold tie (v = v_threshold) across it."""
    return np.where(np.abs(gain - 1) <= 4 * np.finfo(_precision(node)).eps, 1.0, gain)


def _decay(node: nir.NIRNode, step: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """1 - dt/tau; where the gain is unit (r = tau/dt: the writer started from a discrete decay, as snnTorch's beta),
    rounded to the file's precision, which recovers that decay (float32 0.75, not 1 - 1e-4/float32(4e-4))."""
    decay = 1.0 - step
    unit = _snap_unit(node, gain) == 1
    return _compact(np.where(unit, decay.astype(_precision(node)).astype(np.float64), decay))


def _output(name: str, node: nir.Output, reading: Reading, folds: list[np.ndarray]) -> Output:
    return Output(name)


_CONVERTERS = {
    "Input": _input, "Output": _output, "Affine": _affine, "Linear": _affine, "Conv2d": _conv,
    "SumPool2d": _pool, "AvgPool2d": _pool, "Flatten": _flatten,
    "IF": _if, "LIF": _lif, "CubaLIF": _cubalif, "Threshold": _threshold, "I": _readout, "LI": _readout,
    "CubaLI": _readout, "Delay": _relay,
}
_GAINS = (nir.I, nir.LI, nir.CubaLI)


def _folded(name: str, weight: np.ndarray, folds: list[np.ndarray]) -> np.ndarray:
    """Weights that absorb input scale factors: W diag(s), s uniform or one per input."""
    for factor in folds:
        if factor.ndim == 0:
            weight = weight * factor
        elif weight.ndim == 2 and factor.size == weight.shape[1]:
            weight = weight * factor.reshape(1, -1)
        else:
            raise GraphError(f"{name!r}: cannot fold a scale of shape {factor.shape} into weights "
                             f"{weight.shape} (Conv2d takes only a uniform scale)")
    return weight


def _positive(name: str, kind: str, param: str, value: Any) -> np.ndarray:
    arr = _f64(value)
    if not np.all(arr > 0):
        raise GraphError(f"{kind} {name!r}: {param} must be > 0 (min {arr.min():g}); "
                         f"a gain <= 0 would flip or silence the threshold test")
    return arr


def _pair(what: str, value: Any) -> tuple[int, int]:
    ints = _ints(what, value)
    if len(ints) not in (1, 2):
        raise GraphError(f"{what} {value!r} is not an int or a pair of ints")
    return (ints[0], ints[-1])


def _ints(what: str, value: Any, size: int | None = None) -> tuple[int, ...]:
    """A field that must hold whole numbers (`size` of them, if given), as Python ints."""
    arr = np.atleast_1d(np.asarray(value)).ravel()
    real = arr.astype(np.float64) if arr.dtype.kind in "iuf" else np.array([np.nan])
    if (size is not None and arr.size != size) or not np.all(np.abs(real) <= 2 ** 53) or np.any(real != np.round(real)):
        raise GraphError(f"{what} {value!r} is not {'an int' if size == 1 else 'a list of ints'}")
    return tuple(int(v) for v in real)


def _f64(value: Any) -> np.ndarray:
    """A numeric field as float64; strings, complex numbers and objects are refused, not cast."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise FormatError(f"expected real numbers, got {arr.dtype} values")
    return arr.astype(np.float64)


def _compact(arr: np.ndarray) -> np.ndarray:
    """A uniform parameter array as a 0-d array (the Graph broadcasts it)."""
    return arr.reshape(-1)[0].copy() if arr.size and np.all(arr == arr.reshape(-1)[0]) else arr


def _text(value: Any) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _metadata(g: nir.NIRGraph, reading: Reading) -> dict[str, str]:
    meta = {str(k): _text(v) for k, v in (g.metadata or {}).items()}
    return {**meta, "source": "nir", "nir_dt": repr(reading.dt), "nir_if_gain": reading.if_gain,
            "nir_integrator": reading.integrator, "nir_bias_timing": reading.bias_timing}


def _topo_ordered(graph: Graph) -> Graph:
    """The same graph with nodes and edges in topological order, for readable reports."""
    order = graph.topological()
    rank = {name: i for i, name in enumerate(order)}
    nodes = graph.node_map
    edges = sorted(graph.edges, key=lambda e: (rank[e[0]], rank[e[1]]))
    return Graph(tuple(nodes[n] for n in order), tuple(edges), graph.metadata)


# ---------------------------------------------------------------- export


LIF_RS = ("auto", "tau/dt", "1")


def to_nir(graph: Graph, dt: float = 1e-3, lif_r: str = "auto", bias_timing: str = "held") -> nir.NIRGraph:
    """NIR of our Graph at `dt`. lif_r="1" writes each LIF's unit input gain as r = 1 with tau/dt folded into the
    weights of the ops feeding it, the form every reader takes (Norse's ignores r); "tau/dt" writes r = tau/dt
    (exact both ways); "auto" folds every LIF whose inputs allow it (each an op with weights feeding only it) and
    writes the others with r = tau/dt.
    bias_timing="held" writes what our graph computes in NIR's terms: a layer L deep, whose bias acts L ticks
    before its input, starts where those ticks carry it (GraphError where no start does); "early" writes the
    biases as they are and marks the file, which only from_nir honours."""
    if not dt > 0:
        raise GraphError(f"dt must be > 0 seconds, got {dt}")
    if lif_r not in LIF_RS:
        raise GraphError(f"lif_r must be one of {LIF_RS}, got {lif_r!r}")
    if bias_timing not in BIAS_TIMINGS:
        raise GraphError(f"bias_timing must be one of {BIAS_TIMINGS}, got {bias_timing!r}")
    from neurocomp.ir.footprint import require_export

    require_export(graph)
    if bias_timing == "held":
        graph = _advance_biases(graph)
    plain = {n.name for n in graph.nodes if isinstance(n, LIF) and not np.any(n.decay_u)}
    unit_r = {"1": plain, "tau/dt": set(), "auto": {name for name in plain if _foldable(graph, name) is None}}[lif_r]
    graph = _fold_lif_gains(graph, unit_r)
    nodes = {n.name: _export(graph, n, dt, n.name in unit_r) for n in graph.nodes}
    meta = {k: v for k, v in graph.metadata.items() if k != BIAS_TIMING}
    meta |= {BIAS_TIMING: "from tick 0"} if bias_timing == "early" else {}
    return nir.NIRGraph(nodes=nodes, edges=[tuple(e) for e in graph.edges], metadata=meta)


def _advance_biases(graph: Graph) -> Graph:
    """The graph with each biased layer L ticks deep starting where L ticks of its bias alone carry it: NIR starts
    the bias with the input, so that start is what a NIR reader must be given to compute what ours does."""
    return _per_biased_layer(graph, set(), _advanced)


def _advanced(lay: Layer, ticks: int) -> Node:
    """The layer's neuron started `ticks` ticks of its bias later; GraphError where NIR cannot start it there."""
    _require_plain_bias(lay, ticks, WRITE)
    start = np.broadcast_to(np.asarray(lay.neuron.v_init, dtype=np.float64), lay.shape)
    end = _bias_alone(lay, start, ticks, WRITE)
    if lay.kind == "readout" and np.any(end != 0):
        raise _unheld(lay, ticks, WRITE, "NIR read-outs start at v = 0, and its bias moves it before the input")
    return dataclasses.replace(lay.neuron, v_init=_compact(end))


def _fold_lif_gains(graph: Graph, lifs: set[str]) -> Graph:
    """The graph with each named LIF's input gain tau/dt = 1/(1 - decay) folded into the rows of the
    Affine/Conv2d ops feeding it, each of which must feed only that LIF (a Conv2d: a uniform gain)."""
    scaled: dict[str, Node] = {}
    for name in lifs:
        pred = _foldable(graph, name)
        if pred is not None:
            raise GraphError(f"LIF {name!r}: r = 1 needs its input gain tau/dt in the weights of the ops feeding "
                             f"it, each an Affine (or, for a uniform gain, a Conv2d) feeding only it; "
                             f"{pred!r} ({type(graph.node(pred)).__name__}) is not; write it with lif_r='tau/dt'")
        gain = _lif_gain(graph, name)
        for pred in graph.predecessors(name):
            op = graph.node(pred)
            rows = gain if isinstance(op, Affine) else gain.reshape(-1)[:1]
            rows = rows.reshape((-1,) + (1,) * (op.weight.ndim - 1))
            bias = None if op.bias is None else op.bias * rows.reshape(-1)
            scaled[pred] = dataclasses.replace(op, weight=op.weight * rows, bias=bias)
    return Graph(tuple(scaled.get(n.name, n) for n in graph.nodes), graph.edges, graph.metadata)


def _lif_gain(graph: Graph, name: str) -> np.ndarray:
    """A LIF's input gain per tick, tau/dt = 1 / (1 - decay), per neuron."""
    decay = getattr(graph.node(name), "decay")
    return 1.0 / (1.0 - np.broadcast_to(np.asarray(decay, dtype=np.float64), graph.shape(name)))


def _foldable(graph: Graph, name: str) -> str | None:
    """None if the LIF's gain can go into the weights of every op feeding it, else the first op that cannot take
    it: not an Affine or Conv2d, feeding more than the LIF, or a Conv2d under a gain that is not uniform."""
    uniform = np.ptp(_lif_gain(graph, name)) == 0
    for pred in graph.predecessors(name):
        op = graph.node(pred)
        if not isinstance(op, (Affine, Conv2d)) or graph.successors(pred) != [name] or (isinstance(op, Conv2d)
                                                                                          and not uniform):
            return pred
    return None


def _export(graph: Graph, node: Node, dt: float, unit_r: bool) -> nir.NIRNode:
    if isinstance(node, (Correlation, Crop)):
        raise GraphError(f"{node.name}: NIR has no {type(node).__name__} (a kernel bound at run time, a crop); "
                         "a SiamSNN graph cannot be written as NIR")
    shape = graph.shape(node.name)
    preds = graph.predecessors(node.name)
    in_shape = graph.shape(preds[0]) if preds else shape
    if isinstance(node, Input):
        meta = {} if node.encoding == "spikes" else {"encoding": node.encoding}
        return nir.Input(input_type=np.array(node.shape), metadata=meta)
    if isinstance(node, Output):
        return nir.Output(output_type=np.array(shape))
    if isinstance(node, Affine):
        w = np.array(node.weight)
        return nir.Linear(weight=w) if node.bias is None else nir.Affine(weight=w, bias=np.array(node.bias))
    if isinstance(node, Conv2d):
        bias = np.zeros(node.weight.shape[0]) if node.bias is None else np.array(node.bias)
        conv = nir.Conv2d(input_shape=tuple(in_shape[1:]), weight=np.array(node.weight), stride=node.stride,
                          padding=node.padding, dilation=(1, 1), groups=node.groups, bias=bias)
        conv.input_type = {"input": np.array(in_shape)}  # nir 1.0.8 takes weight.shape[1] channels, wrong if groups > 1
        return conv
    if isinstance(node, SumPool2d):
        return nir.SumPool2d(kernel_size=np.array(node.kernel), stride=np.array(node.stride),
                             padding=np.array(node.padding))
    if isinstance(node, Flatten):
        return nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=0, end_dim=-1)
    if isinstance(node, Scale):
        return nir.Scale(scale=np.broadcast_to(node.scale, shape).astype(np.float64))
    if isinstance(node, Readout):
        return _export_readout(node, shape, dt)
    if isinstance(node, (IF, LIF)):
        return _export_neuron(node, shape, dt, unit_r)
    raise GraphError(f"{node.name}: no NIR export for {type(node).__name__}")


def _export_readout(node: Readout, shape: tuple[int, ...], dt: float) -> nir.I | nir.LI | nir.CubaLI:
    """I, LI or CubaLI with unit input gain, so the NIR v is our potential."""
    full = {k: np.broadcast_to(getattr(node, k), shape).astype(np.float64) for k in ("bias", "decay", "decay_u")}
    if np.any(node.v_init != 0):
        raise GraphError(f"Readout {node.name!r}: NIR read-outs start at v = 0; v_init must be 0")
    if np.all(full["decay"] == 1) and not np.any(full["decay_u"]):
        if np.any(full["bias"] != 0):
            raise GraphError(f"Readout {node.name!r}: NIR I has no bias; it must be 0")
        return nir.I(r=np.ones(shape))
    if np.any(full["decay"] >= 1):
        raise GraphError(f"Readout {node.name!r}: a non-leaky read-out with some decay < 1 or a current has no finite NIR tau")
    tau_mem = dt / (1.0 - full["decay"])
    v_leak = full["bias"] * tau_mem / dt
    if not np.any(full["decay_u"]):
        return nir.LI(tau=tau_mem, r=tau_mem / dt, v_leak=v_leak)
    tau_syn = dt / (1.0 - full["decay_u"])
    return nir.CubaLI(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, v_leak=v_leak, w_in=tau_syn / dt)


def _export_neuron(node: IF | LIF, shape: tuple[int, ...], dt: float, unit_r: bool) -> nir.IF | nir.LIF | nir.CubaLIF:
    kind = type(node).__name__
    if node.reset != "zero":
        raise GraphError(f"{kind} {node.name!r}: reset {node.reset!r} has no NIR equivalent (NIR resets to v_reset)")
    if np.isfinite(node.v_min):
        raise GraphError(f"{kind} {node.name!r}: the floor v_min = {node.v_min:g} has no NIR equivalent (NIR "
                         f"potentials are unbounded)")
    full = {k: np.broadcast_to(getattr(node, k), shape).astype(np.float64) for k in ("threshold", "bias", "v_init")}
    v_reset = 0.0 - full["v_init"]
    v_threshold = np.nextafter(full["threshold"], -np.inf) + v_reset
    if isinstance(node, IF):
        if np.any(full["bias"] != 0):
            raise GraphError(f"IF {node.name!r}: NIR IF has no bias; fold it into the incoming weights' bias")
        return nir.IF(r=np.full(shape, 1.0 / dt), v_threshold=v_threshold, v_reset=v_reset)
    decay = np.broadcast_to(node.decay, shape).astype(np.float64)
    if np.any(decay >= 1):
        raise GraphError(f"LIF {node.name!r}: decay 1 (no leak) has no finite NIR tau; use IF")
    tau = dt / (1.0 - decay)
    r = tau / dt
    decay_u = np.broadcast_to(node.decay_u, shape).astype(np.float64)
    if not np.any(decay_u):
        return nir.LIF(tau=tau, r=np.ones(shape) if unit_r else r, v_leak=full["bias"] * r + v_reset,
                       v_threshold=v_threshold, v_reset=v_reset)
    tau_syn = dt / (1.0 - decay_u)
    return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau, r=r, v_leak=full["bias"] * r + v_reset, v_threshold=v_threshold,
                       v_reset=v_reset, w_in=tau_syn / dt)
