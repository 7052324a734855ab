"""Quantise: float SNN Graph + target -> integer Graph plus per-layer target neuron tables.

Each layer gets one scale 2^E (float value of an integer unit of membrane potential).
Weights become round(w / 2^e) per weighted op, thresholds, biases and initial
potentials round(x / 2^E). Per op, e is the power of two that fits when it represents
the weights exactly (an integer-valued network stays exact), else the real exponent
that puts the largest |w| on the target's largest weight: the whole mantissa (a
power of two wastes up to one bit, 3 dB on average). The quantised Graph is itself a Graph, so the
reference backend measures exactly what the chip computes. The target's hooks
set the ranges, cluster weights (TrueNorth: <= 4 levels per neuron) and turn
integer neuron parameters into its own registers.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from neurocomp.encoding import SPIKING, payload_max
from neurocomp.errors import QuantizeError, ResourceError, VerifyError
from neurocomp.ir.bounds import drive_bounds
from neurocomp.ir.graph import Affine, Conv2d, Graph, Neuron, Node, Scale, SumPool2d
from neurocomp.ir.layers import Layer, Network, Projection, lower
from neurocomp.partition.fanin import sample_rows
from neurocomp.target import Target

WEIGHTED = (Affine, Conv2d)
MAX_COARSEN = 64
LEAKY_GRID = 2.0 ** -6  # Lava's v holds 64 steps per unit of synaptic input
DECAY_ONE = 4096        # decays are 12-bit fractions


@dataclass(frozen=True)
class QLayer:
    name: str
    scale: float                        # float value of one integer unit of potential
    params: Mapping[str, np.ndarray]    # target registers per neuron, int64 (N,) or (N, k)
    weight_snr_db: float                # inf when the weights were represented exactly
    exact: bool                         # the integer layer computes the float layer exactly
    exact_ticks: float = math.inf       # ... for this many ticks (the target's range limits, `exact_ticks` hook)
    limit: str = ""                     # what ends exact_ticks


@dataclass(frozen=True)
class QNetwork:
    network: Network                    # the quantised (integer-valued) network
    layers: tuple[QLayer, ...]
    target: str

    def qlayer(self, name: str) -> QLayer:
        return next(q for q in self.layers if q.name == name)


def quantize(net: Network, target: Target, weights: str | None = None) -> QNetwork:
    """`weights` is one of the target's WEIGHT_MODES (how its hook clusters a neuron's weights); None: its first."""
    weights = weights or target.hooks.WEIGHT_MODES[0]
    bits = int(target.spec.get("core.message_bits", 0))
    peaks = {i.name: float(payload_max(bits)) for i in net.inputs if i.encoding not in SPIKING}
    replaced: dict[str, Node] = {}
    qlayers: list[QLayer] = []
    owner: dict[str, str] = {}
    for layer in net.layers:
        for p in layer.projections:
            for op in p.chain:
                if isinstance(op, WEIGHTED) and owner.setdefault(op.name, layer.name) != layer.name:
                    raise QuantizeError(f"{op.name}: a weighted op feeding two layers ({owner[op.name]}, {layer.name}) is not supported")
        nodes, qlayer = _quantize_layer(layer, target, weights, peaks)
        replaced.update(nodes)
        qlayers.append(qlayer)
    g = net.graph
    qgraph = Graph(tuple(replaced.get(n.name, n) for n in g.nodes), g.edges, g.metadata)
    qnet = _range_limits(QNetwork(lower(qgraph), tuple(qlayers), target.name), target)
    verify_quantized(qnet, target)
    return qnet


def _range_limits(qnet: QNetwork, target: Target) -> QNetwork:
    """Each layer's exact_ticks from the target's `exact_ticks` hook (where its registers can saturate or
    floor the potential while the Graph's cannot), when it has one."""
    hook = getattr(target.hooks, "exact_ticks", None)
    if hook is None:
        return qnet
    limits = [hook(qnet.network, layer, q.params, target.spec) for layer, q in zip(qnet.network.layers, qnet.layers)]
    layers = tuple(dataclasses.replace(q, exact_ticks=t, limit=why) for q, (t, why) in zip(qnet.layers, limits))
    return dataclasses.replace(qnet, layers=layers)


def _exponent(w: np.ndarray, wmax: float, gain: float = 1.0, taps: int = 1) -> float:
    """log2 of the weight step: a whole power of two if it is exact for w, else the step putting max |w| on wmax.
    A stored weight that sums up to `taps` of these weights, `gain` times max |w| at most (a pool before a
    conv), gets the step putting that sum on wmax, less half a step per extra rounded tap."""
    peak = float(np.max(np.abs(w))) if w.size else 0.0
    if peak == 0:
        return -MAX_COARSEN
    gain = max(gain, 1.0)    # w must fit alone too (a padded conv can store fewer of its taps than it has)
    if peak * gain / wmax == 0:  # subnormal weights underflow: the coarsest step, as for weights of 1e-300
        return -MAX_COARSEN
    e = math.ceil(math.log2(peak * gain / wmax))
    if np.array_equal(w / 2.0 ** e, np.rint(w / 2.0 ** e)):
        return e
    return math.log2(peak * gain / max(wmax - (taps - 1) / 2, 1.0))


def stored_signs(layer: Layer) -> np.ndarray:
    """The signs the layer's stored (composed) weights can take, e.g. [-1, 1]: a core stores one sign mode for
    every projection of its layer (Loihi), so each op is sized by the layer's. An op with both signs makes its
    chain mixed; one-signed ops multiply their signs."""
    out: set[float] = set()
    for ops in _weighted_ops(layer):
        signs = {1.0}
        for op in ops:
            w = _values(op)
            signs = {a * b for a in signs for b in (set(np.sign(w[w != 0]).tolist()) or {1.0})}
        out |= signs
    return np.array(sorted(out or {1.0}))


def _chain_gain(layer: Layer, p: Projection, rows: np.ndarray) -> tuple[float, int]:
    """(gain, taps) of the last stored-weight op of a chain that composes several terms into one stored weight
    (pooling or several weighted ops, see _exponent); (1, 1) for one op that is stored as it is."""
    last = _weighted_ops(Layer(layer.name, layer.neuron, layer.shape, (p,)))[0]
    if not last or (len(last) == 1 and not any(isinstance(op, SumPool2d) for op in p.chain)):
        return 1.0, 1
    peak = float(np.max(np.abs(_values(last[-1])), initial=0)) or 1.0

    def composed(value) -> float:
        chain = tuple(_with_values(op, value(op)) if op in last else op for op in p.chain)
        m = Projection(p.source, chain, p.shapes).matrix(rows)
        return float(abs(m).max()) if m.nnz else 0.0   # abs: a negative Scale may sit in the chain

    gain = composed(lambda op: np.abs(_values(op)) / (peak if op is last[-1] else 1.0))
    return gain, int(round(composed(lambda op: (_values(op) != 0).astype(np.float64))))


def _with_values(op: Node, values: np.ndarray) -> Node:
    return dataclasses.replace(op, scale=values) if isinstance(op, Scale) else dataclasses.replace(op, weight=values, bias=None)


def _weighted_ops(layer: Layer) -> list[list[Node]]:
    """Per projection, the ops whose values become stored weights: its Affine/Conv2d ops, or, in a
    chain without them (e.g. partial sums into a fan-in-split layer), its Scale ops."""
    out = []
    for p in layer.projections:
        ops = [op for op in p.chain if isinstance(op, WEIGHTED)]
        out.append(ops or [op for op in p.chain if isinstance(op, Scale)])
    return out


def _last_ops(layer: Layer) -> list[str]:
    """The last stored-weight op of each projection: where a projection's scale is adjusted."""
    return [ops[-1].name for ops in _weighted_ops(layer) if ops]


def _values(op: Node) -> np.ndarray:
    return np.asarray(op.scale if isinstance(op, Scale) else op.weight)


def _layer_exponents(layer: Layer, target: Target) -> tuple[dict[str, float], float]:
    """Per weighted op exponent e_k, and the layer exponent E shared by all projections. In a chain of
    several weighted ops (e.g. a max-pool pick before a Linear) the targets store the composed weights,
    so a leading op whose weights are small integers keeps them (e = 0) and only the last op takes
    the full weight range; scaling each to full range would multiply their ranges."""
    exps: dict[str, float] = {}
    sums = []
    wmax = target.hooks.weight_max(target.spec, stored_signs(layer))
    rows = sample_rows(layer)
    for ops, p in zip(_weighted_ops(layer), layer.projections):
        gain, taps = _chain_gain(layer, p, rows)
        for k, op in enumerate(ops):
            w = _values(op)
            small = k < len(ops) - 1 and np.array_equal(w, np.rint(w)) and float(np.max(np.abs(w), initial=0)) <= wmax
            last = k == len(ops) - 1
            exps[op.name] = 0.0 if small else max(_exponent(w, wmax, gain if last else 1.0, taps if last else 1),
                                                  -MAX_COARSEN)
        sums.append(sum(exps[op.name] for op in ops))
    big = max(sums)
    for ops, s in zip(_weighted_ops(layer), sums):
        if s < big:
            if not ops:
                raise QuantizeError(f"{layer.name}: an unweighted input and a weighted one need different scales")
            exps[ops[-1].name] += big - s
    return exps, big


def _whole_threshold(layer: Layer, exps: dict[str, float], big: float) -> tuple[dict[str, float], float]:
    """Make a layer-wide threshold a whole number of units, N = floor(theta / scale): the step grows by
    less than 1/N (weights keep nearly all their range) instead of the threshold rounding up by up to a unit."""
    theta = layer.param("threshold")
    last = _last_ops(layer)
    units = float(theta[0]) / 2.0 ** big if theta.size else 0.0
    if layer.kind != "spiking" or np.ptp(theta) > 0 or units < 1 or units == math.floor(units) or len(last) < len(layer.projections):
        return exps, big
    shift = math.log2(units / math.floor(units))
    return {k: v + shift if k in last else v for k, v in exps.items()}, big + shift


def _quantize_layer(layer: Layer, target: Target, weights: str,
                    peaks: Mapping[str, float]) -> tuple[dict[str, Node], QLayer]:
    spec, hooks = target.spec, target.hooks
    exps, big = _layer_exponents(layer, target)
    last = _last_ops(layer)
    theta, bias, v0 = layer.param("threshold"), layer.bias(), layer.param("v_init")
    limits = hooks.param_limits(spec)
    floor = limits.get("threshold_min", -math.inf)
    if layer.kind == "spiking" and np.any(theta <= floor):
        i = int(np.argmax(theta <= floor))
        raise QuantizeError(f"{layer.name}: neuron {i} has threshold {theta[i]:g}; {target.name} fires only when the "
                            f"potential exceeds a threshold above {floor:g} (a neuron at v >= {theta[i]:g} would fire "
                            "without input)")
    for _ in range(MAX_COARSEN * 2):
        scale = 2.0 ** big
        spiking = layer.kind == "spiking"
        fits = (not spiking or np.max(theta) / scale <= limits["threshold"]) and np.max(np.abs(bias)) / scale <= limits["bias"]
        if fits:
            break
        big += 1
        exps = {k: v + 1 if k in last else v for k, v in exps.items()}   # a chain coarsens at its last op
    else:
        raise QuantizeError(f"{layer.name}: threshold/bias cannot fit the target's registers at any scale")
    exps, big = _whole_threshold(layer, exps, big)
    nodes, big, snr, exact = _fit_current(layer, exps, big, target, weights, peaks)
    scale = 2.0 ** big
    # Potentials are integers, so v >= theta is exactly v >= ceil(theta): the threshold never costs accuracy.
    # A decaying layer's potentials are fractional: the nearest unit instead, plus one step of Loihi's
    # potential grid, so the quantised graph fires exactly when Lava's v > vth does (only Loihi has decays).
    leaky = bool(np.any(layer.decays()[0] != 1) or np.any(layer.decays()[1]))
    q_theta = (np.maximum(np.rint(theta / scale), 1.0) + LEAKY_GRID if leaky else
               np.maximum(np.ceil(theta / scale), 1.0)) if spiking else theta / scale
    q_bias, q_v0 = np.rint(bias / scale), np.rint(v0 / scale)
    exact = exact and np.array_equal(q_bias * scale, bias) and np.array_equal(q_v0 * scale, v0)
    exact = exact and (not spiking or bool(np.all(theta > 0))) and layer.bias_exact() and not leaky
    # v >= theta rounds exactly on integer potentials, but subtracting a rounded threshold does not
    exact = exact and not (spiking and layer.neuron.reset == "subtract" and not np.array_equal(q_theta * scale, theta))
    fields = {"v_min": layer.neuron.v_min / scale,
              "threshold": q_theta.reshape(layer.shape) if spiking else np.ones(()),
              "bias": q_bias.reshape(layer.shape), "v_init": q_v0.reshape(layer.shape)}
    qneuron = dataclasses.replace(layer.neuron, **fields, **(_register_decays(layer) if leaky else {}))
    nodes[layer.name] = qneuron
    params = hooks.neuron_params(layer.name, qneuron, layer.size, spec)
    return nodes, QLayer(layer.name, scale, params, snr, bool(exact))


def _fit_current(layer: Layer, exps: dict[str, float], big: float, target: Target, weights: str,
                 peaks: Mapping[str, float]) -> tuple[dict[str, Node], float, float, bool]:
    """Quantise the ops, coarsening the layer until its worst-case current fits the target's current register
    (param_limits' `current`, integer units; none: unbounded): every input at its largest at once, the
    current accumulating as its decay allows (decay_u near 1 multiplies it by up to 4096). A register that
    wraps would change the layer's meaning completely; a coarser step only rounds its weights."""
    limit = target.hooks.param_limits(target.spec).get("current", math.inf)
    gain = 1.0 / (1.0 - _register_decays(layer)["decay_u"].ravel())
    last = _last_ops(layer)
    worst = 0.0
    for _ in range(MAX_COARSEN):
        nodes, snr, exact = _quantize_ops(layer, exps, target.hooks, target.spec, weights)
        if not math.isfinite(limit):
            return nodes, big, snr, exact
        chains = tuple(dataclasses.replace(p, chain=tuple(nodes.get(op.name, op) for op in p.chain))
                       for p in layer.projections)
        up, down = drive_bounds(dataclasses.replace(layer, projections=chains), dict(peaks))
        worst = float(np.max(np.maximum(up, down) * gain, initial=0.0))
        if worst < limit:
            return nodes, big, snr, exact
        if len(last) < len(layer.projections):
            break
        shift = math.floor(math.log2(worst / limit)) + 1
        big += shift
        exps = {k: v + shift if k in last else v for k, v in exps.items()}
    raise ResourceError(layer.name, "worst-case current (integer units)", worst, limit,
                        "one tick of input can overflow the current register at any weight step: reduce its fan-in "
                        "or give every input a weighted op")


def _register_decays(layer: Layer) -> dict[str, np.ndarray]:
    """The decays the registers hold, 12-bit fractions (Loihi's dv and du; the one target with decays),
    so the quantised graph, and the reference run on it, decays as the chip does."""
    decay, decay_u = (np.rint(d * DECAY_ONE).reshape(layer.shape) for d in layer.decays())
    return {"decay": np.clip(decay, 1, DECAY_ONE) / DECAY_ONE, "decay_u": np.clip(decay_u, 0, DECAY_ONE - 1) / DECAY_ONE}


def _clustered(layer: Layer, exps: Mapping[str, float], hooks, spec, mode: str) -> dict[str, np.ndarray]:
    """Integer weights of every Affine/Conv2d after the target's clustering. A neuron stores the weights of all its
    projections (TrueNorth: <= 4 levels per neuron), so the last such ops of several projections, when their rows
    are alike (one per output neuron or channel), are clustered as one row each, side by side."""
    ints = {op.name: np.rint(np.asarray(op.weight) / 2.0 ** exps[op.name]).reshape(op.weight.shape[0], -1)
            for p in layer.projections for op in p.chain if isinstance(op, WEIGHTED)}
    rows = sample_rows(layer)
    taps = {[op for op in p.chain if isinstance(op, WEIGHTED)][-1].name: _chain_gain(layer, p, rows)[1]
            for p in layer.projections if any(isinstance(op, WEIGHTED) for op in p.chain)}
    last = list(taps)
    joint = last if len(last) > 1 and len({ints[k].shape[0] for k in last}) == 1 else []
    out = {k: _cluster(hooks, w, spec, mode, taps.get(k, 1)) for k, w in ints.items() if k not in joint}
    if joint:
        both = _cluster(hooks, np.concatenate([ints[k] for k in joint], axis=1), spec, mode, max(taps[k] for k in joint))
        out |= dict(zip(joint, np.split(both, np.cumsum([ints[k].shape[1] for k in joint])[:-1], axis=1)))
    return out


def _cluster(hooks, w: np.ndarray, spec, mode: str, taps: int) -> np.ndarray:
    """The target's clustering; for stored weights that sum `taps` > 1 of these, its `cluster_composed` if it has one."""
    composed = getattr(hooks, "cluster_composed", None)
    return composed(w, spec, mode, taps) if taps > 1 and composed is not None else hooks.cluster_weights(w, spec, mode)


def _quantize_ops(layer: Layer, exps: Mapping[str, float], hooks, spec, mode: str) -> tuple[dict[str, Node], float, bool]:
    nodes: dict[str, Node] = {}
    signal = noise = 0.0
    clustered = _clustered(layer, exps, hooks, spec, mode)
    for p in layer.projections:
        for op in p.chain:
            if isinstance(op, WEIGHTED):
                w = np.asarray(op.weight)
                step = 2.0 ** exps[op.name]
                wq = clustered[op.name].reshape(w.shape)
                signal += float(np.sum(w * w))
                noise += float(np.sum((w - wq * step) ** 2))
                nodes[op.name] = dataclasses.replace(op, weight=wq, bias=None)
            elif isinstance(op, Scale) and op.name in exps:
                w = np.asarray(op.scale)
                wq = np.rint(w / 2.0 ** exps[op.name])
                signal += float(np.sum(w * w))
                noise += float(np.sum((w - wq * 2.0 ** exps[op.name]) ** 2))
                nodes[op.name] = dataclasses.replace(op, scale=wq)
            elif getattr(op, "bias", None) is not None:
                nodes[op.name] = dataclasses.replace(op, bias=None)
    snr = math.inf if noise == 0 else (10 * math.log10(signal / noise) if signal > 0 else -math.inf)
    return nodes, snr, noise == 0


def verify_quantized(qnet: QNetwork, target: Target) -> None:
    """Every integer the target will store is an integer and in range."""
    for layer, q in zip(qnet.network.layers, qnet.layers):
        for p in layer.projections:
            for op in p.chain:
                if isinstance(op, WEIGHTED):
                    w = np.asarray(op.weight)
                    if not np.array_equal(w, np.rint(w)):
                        raise VerifyError(f"{layer.name}: {op.name} has non-integer weights after quantisation")
                    wmax = target.hooks.weight_max(target.spec, w)
                    if np.max(np.abs(w), initial=0) > wmax:
                        raise VerifyError(f"{layer.name}: {op.name} weight {np.max(np.abs(w))} exceeds {wmax}")
        for key, arr in q.params.items():
            if arr.dtype.kind not in "iu":
                raise VerifyError(f"{layer.name}: parameter {key} is not an integer array")
        target.hooks.check_params(q.name, q.params, target.spec)
