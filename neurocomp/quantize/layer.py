"""One layer to integers: weights clustered by the target, threshold, bias and initial potential in units of the
layer's scale, coarsened until the target's threshold, bias and current registers hold them."""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping

import numpy as np

from neurocomp.errors import QuantizeError, ResourceError
from neurocomp.ir.bounds import drive_bounds
from neurocomp.ir.graph import Conv2d, Node, Scale, on_taps, uniform_or_full
from neurocomp.ir.layers import Layer
from neurocomp.partition.fanin import sample_rows
from neurocomp.quantize.qnetwork import QLayer
from neurocomp.quantize.steps import (MAX_COARSEN, WEIGHTED, chain_gain, last_ops, layer_exponents, stored_values,
                                      whole_threshold)
from neurocomp.target import Target

LEAKY_GRID = 2.0 ** -6  # Lava's v holds 64 steps per unit of synaptic input
DECAY_ONE = 4096        # decays are 12-bit fractions

def quantize_layer(layer: Layer, target: Target, weights: str,
                    peaks: Mapping[str, float]) -> tuple[dict[str, Node], QLayer]:
    spec, hooks = target.spec, target.hooks
    exps, big = layer_exponents(layer, target)
    last = last_ops(layer)
    theta, bias, v0 = layer.held("threshold"), layer.held_bias(), layer.held("v_init")
    limits = hooks.param_limits(spec)
    floor = limits.get("threshold_min", -math.inf)
    if layer.kind == "spiking" and np.any(theta <= floor):
        i = int(np.argmax(np.ravel(theta) <= floor))
        low = float(np.ravel(theta)[i])
        raise QuantizeError(f"{layer.name}: neuron {i} has threshold {low:g}; {target.name} fires only when the "
                            f"potential exceeds a threshold above {floor:g} (a neuron at v >= {low:g} would fire "
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
    exps, big = whole_threshold(layer, exps, big)
    nodes, big, snr, exact = _fit_current(layer, exps, big, target, weights, peaks)
    scale = 2.0 ** big
    # Potentials are integers, so v >= theta is exactly v >= ceil(theta): the threshold never costs accuracy.
    # A decaying layer's potentials are fractional: the nearest unit instead, plus one step of Loihi's
    # potential grid, so the quantised graph fires exactly when Lava's v > vth does (only Loihi has decays).
    leaky = layer.leaky()
    q_theta = (np.maximum(np.rint(theta / scale), 1.0) + LEAKY_GRID if leaky else
               np.maximum(np.ceil(theta / scale), 1.0)) if spiking else theta / scale
    q_bias, q_v0 = np.rint(bias / scale), np.rint(v0 / scale)
    exact = exact and np.array_equal(q_bias * scale, bias) and np.array_equal(q_v0 * scale, v0)
    exact = exact and (not spiking or bool(np.all(theta > 0))) and layer.bias_exact() and not leaky
    # v >= theta rounds exactly on integer potentials, but subtracting a rounded threshold does not
    exact = exact and not (spiking and layer.neuron.reset == "subtract" and not np.array_equal(q_theta * scale, theta))
    fields = {"v_min": layer.neuron.v_min / scale,
              "threshold": _as_field(q_theta, layer.shape) if spiking else np.ones(()),
              "bias": _as_field(q_bias, layer.shape), "v_init": _as_field(q_v0, layer.shape)}
    qneuron = dataclasses.replace(layer.neuron, **fields, **(_register_decays(layer) if leaky else {}))
    nodes[layer.name] = qneuron
    params = hooks.neuron_params(layer.name, qneuron, layer.size, spec)
    return nodes, QLayer(layer.name, scale, params, snr, bool(exact))


def _as_field(q: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return uniform_or_full(q if q.ndim == 0 else q.reshape(shape), shape)


def _fit_current(layer: Layer, exps: dict[str, float], big: float, target: Target, weights: str,
                 peaks: Mapping[str, float]) -> tuple[dict[str, Node], float, float, bool]:
    """Quantise the ops, coarsening the layer until its worst-case current fits the target's current register
    (param_limits' `current`, integer units; none: unbounded): every input at its largest at once, the
    current accumulating as its decay allows (decay_u near 1 multiplies it by up to 4096). A register that
    wraps would change the layer's meaning completely; a coarser step only rounds its weights."""
    limit = target.hooks.param_limits(target.spec).get("current", math.inf)
    gain = 1.0 / (1.0 - _register_decays(layer)["decay_u"].ravel()) if layer.leaky() else 1.0
    last = last_ops(layer)
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
    """Integer weights of every Affine/Conv2d after the target's clustering, one row per output neuron or channel: a
    conv's on its live taps only (stored_values; a target's clustering leaves all-zero columns out, hooks). A neuron
    stores the weights of all its projections (TrueNorth: <= 4 levels per neuron), so the last such ops of several
    projections, when their rows are alike, are clustered as one row each, side by side."""
    ints = {op.name: np.rint(stored_values(op) / 2.0 ** exps[op.name]).reshape(op.weight.shape[0], -1)
            for p in layer.projections for op in p.chain if isinstance(op, WEIGHTED)}
    rows = sample_rows(layer)
    taps = {[op for op in p.chain if isinstance(op, WEIGHTED)][-1].name: chain_gain(layer, p, rows)[1]
            for p in layer.projections if any(isinstance(op, WEIGHTED) for op in p.chain)}
    last = list(taps)
    joint = last if len(last) > 1 and len({ints[k].shape[0] for k in last}) == 1 else []
    out = {k: _cluster(hooks, w, spec, mode, taps.get(k, 1)) for k, w in ints.items() if k not in joint}
    if joint:
        both = _cluster(hooks, np.concatenate([ints[k] for k in joint], axis=1), spec, mode, max(taps[k] for k in joint))
        out |= dict(zip(joint, np.split(both, np.cumsum([ints[k].shape[1] for k in joint])[:-1], axis=1)))
    return out


def _cluster(hooks, w: np.ndarray, spec, mode: str, taps: int) -> np.ndarray:
    """The target's clustering; for stored weights that sum `taps` > 1 of these, its `cluster_composed`. An op with no
    live tap has nothing to cluster."""
    if w.shape[1] == 0:
        return w
    return hooks.cluster_composed(w, spec, mode, taps) if taps > 1 else hooks.cluster_weights(w, spec, mode)


def _quantize_ops(layer: Layer, exps: Mapping[str, float], hooks, spec, mode: str) -> tuple[dict[str, Node], float, bool]:
    nodes: dict[str, Node] = {}
    signal = noise = 0.0
    clustered = _clustered(layer, exps, hooks, spec, mode)
    for p in layer.projections:
        for k, op in enumerate(p.chain):
            if isinstance(op, WEIGHTED):
                w = stored_values(op)
                step = 2.0 ** exps[op.name]
                wq = clustered[op.name].reshape(w.shape)
                signal += float(np.sum(w * w))
                noise += float(np.sum((w - wq * step) ** 2))
                nodes[op.name] = (on_taps(op, op.live_taps[0], wq, bias=None) if isinstance(op, Conv2d) else
                                  dataclasses.replace(op, weight=wq, bias=None))
            elif isinstance(op, Scale) and op.name in exps:
                w = np.asarray(op.scale)
                wq = np.rint(w / 2.0 ** exps[op.name])
                spread = math.prod(p.shapes[k + 1]) / w.size   # a shared scale counts once per element it scales
                signal += spread * float(np.sum(w * w))
                noise += spread * float(np.sum((w - wq * 2.0 ** exps[op.name]) ** 2))
                nodes[op.name] = dataclasses.replace(op, scale=wq)
            elif getattr(op, "bias", None) is not None:
                nodes[op.name] = dataclasses.replace(op, bias=None)
    snr = math.inf if noise == 0 else (10 * math.log10(signal / noise) if signal > 0 else -math.inf)
    return nodes, snr, noise == 0
