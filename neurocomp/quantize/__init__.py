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

from neurocomp.errors import QuantizeError, VerifyError
from neurocomp.ir.graph import Affine, Conv2d, Graph, Neuron, Node, Scale
from neurocomp.ir.layers import Layer, Network, lower
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
    replaced: dict[str, Node] = {}
    qlayers: list[QLayer] = []
    owner: dict[str, str] = {}
    for layer in net.layers:
        for p in layer.projections:
            for op in p.chain:
                if isinstance(op, WEIGHTED) and owner.setdefault(op.name, layer.name) != layer.name:
                    raise QuantizeError(f"{op.name}: a weighted op feeding two layers ({owner[op.name]}, {layer.name}) is not supported")
        nodes, qlayer = _quantize_layer(layer, target, weights)
        replaced.update(nodes)
        qlayers.append(qlayer)
    g = net.graph
    qgraph = Graph(tuple(replaced.get(n.name, n) for n in g.nodes), g.edges, g.metadata)
    qnet = QNetwork(lower(qgraph), tuple(qlayers), target.name)
    verify_quantized(qnet, target)
    return qnet


def _exponent(w: np.ndarray, wmax: float) -> float:
    """log2 of the weight step: a whole power of two if it is exact for w, else the step putting max |w| on wmax."""
    peak = float(np.max(np.abs(w))) if w.size else 0.0
    if peak == 0:
        return -MAX_COARSEN
    e = math.ceil(math.log2(peak / wmax))
    return e if np.array_equal(w / 2.0 ** e, np.rint(w / 2.0 ** e)) else math.log2(peak / wmax)


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
    for ops in _weighted_ops(layer):
        for k, op in enumerate(ops):
            w = _values(op)
            wmax = target.hooks.weight_max(target.spec, w)
            small = k < len(ops) - 1 and np.array_equal(w, np.rint(w)) and float(np.max(np.abs(w), initial=0)) <= wmax
            exps[op.name] = 0.0 if small else max(_exponent(w, wmax), -MAX_COARSEN)
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


def _quantize_layer(layer: Layer, target: Target, weights: str) -> tuple[dict[str, Node], QLayer]:
    spec, hooks = target.spec, target.hooks
    exps, big = _layer_exponents(layer, target)
    last = _last_ops(layer)
    theta, bias, v0 = layer.param("threshold"), layer.bias(), layer.param("v_init")
    limits = hooks.param_limits(spec)
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
    scale = 2.0 ** big
    nodes, snr, exact = _quantize_ops(layer, exps, hooks, spec, weights)
    # Potentials are integers, so v >= theta is exactly v >= ceil(theta): the threshold never costs accuracy.
    # A decaying layer's potentials are fractional: the nearest unit instead, plus one step of Loihi's
    # potential grid, so the quantised graph fires exactly when Lava's v > vth does (only Loihi has decays).
    leaky = bool(np.any(layer.decays()[0] != 1) or np.any(layer.decays()[1]))
    q_theta = (np.maximum(np.rint(theta / scale), 1.0) + LEAKY_GRID if leaky else
               np.maximum(np.ceil(theta / scale), 1.0)) if spiking else theta / scale
    q_bias, q_v0 = np.rint(bias / scale), np.rint(v0 / scale)
    exact = exact and np.array_equal(q_bias * scale, bias) and np.array_equal(q_v0 * scale, v0)
    exact = exact and (not spiking or bool(np.all(theta > 0))) and layer.bias_exact() and not leaky
    fields = {"v_min": layer.neuron.v_min / scale,
              "threshold": q_theta.reshape(layer.shape) if spiking else np.ones(()),
              "bias": q_bias.reshape(layer.shape), "v_init": q_v0.reshape(layer.shape)}
    qneuron = dataclasses.replace(layer.neuron, **fields, **(_register_decays(layer) if leaky else {}))
    nodes[layer.name] = qneuron
    params = hooks.neuron_params(layer.name, qneuron, layer.size, spec)
    return nodes, QLayer(layer.name, scale, params, snr, bool(exact))


def _register_decays(layer: Layer) -> dict[str, np.ndarray]:
    """The decays the registers hold, 12-bit fractions (Loihi's dv and du; the one target with decays),
    so the quantised graph, and the reference run on it, decays as the chip does."""
    decay, decay_u = (np.rint(d * DECAY_ONE).reshape(layer.shape) for d in layer.decays())
    return {"decay": np.clip(decay, 1, DECAY_ONE) / DECAY_ONE, "decay_u": np.clip(decay_u, 0, DECAY_ONE - 1) / DECAY_ONE}


def _quantize_ops(layer: Layer, exps: Mapping[str, float], hooks, spec, mode: str) -> tuple[dict[str, Node], float, bool]:
    nodes: dict[str, Node] = {}
    signal = noise = 0.0
    for p in layer.projections:
        for op in p.chain:
            if isinstance(op, WEIGHTED):
                w = np.asarray(op.weight)
                step = 2.0 ** exps[op.name]
                wq = hooks.cluster_weights(np.rint(w / step).reshape(w.shape[0], -1), spec, mode).reshape(w.shape)
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
