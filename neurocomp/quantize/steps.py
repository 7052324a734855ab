"""Weight steps: the power-of-two exponent of each weighted op and the exponent E a layer's projections share.

A chain of ops whose composed weights one synapse stores (pooling before a conv, several weighted ops) is sized by
that composition, so the stored weight, not each factor, fills the target's weight range.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from neurocomp.errors import QuantizeError
from neurocomp.ir.graph import Affine, Conv2d, Node, Scale, SumPool2d
from neurocomp.ir.layers import Layer, Projection
from neurocomp.partition.fanin import sample_rows
from neurocomp.target import Target

WEIGHTED = (Affine, Conv2d)
MAX_COARSEN = 64


def exponent(w: np.ndarray, wmax: float, gain: float = 1.0, taps: int = 1) -> float:
    """log2 of the weight step: a whole power of two if it is exact for w, else the step putting max |w| on wmax.
    A stored weight that sums up to `taps` of these weights, `gain` times max |w| at most (a pool before a
    conv), gets the step putting that sum on wmax, less half a step per extra rounded tap."""
    peak = max(float(w.max()), -float(w.min())) if w.size else 0.0   # max |w| without an |w| array
    if peak == 0:
        return -MAX_COARSEN
    gain = max(gain, 1.0)    # w must fit alone too (a padded conv can store fewer of its taps than it has)
    if peak * gain / wmax == 0:  # subnormal weights underflow: the coarsest step, as for weights of 1e-300
        return -MAX_COARSEN
    e = math.ceil(math.log2(peak * gain / wmax))
    steps = w / 2.0 ** e
    if np.array_equal(steps, np.rint(steps)):
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
            w = stored_values(op)
            present = [sign for sign, found in ((-1.0, (w < 0).any()), (1.0, (w > 0).any())) if found]
            signs = {a * b for a in signs for b in (present or [1.0])}
        out |= signs
    return np.array(sorted(out or {1.0}))


def chain_gain(layer: Layer, p: Projection, rows: np.ndarray) -> tuple[float, int]:
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


def last_ops(layer: Layer) -> list[str]:
    """The last stored-weight op of each projection: where a projection's scale is adjusted."""
    return [ops[-1].name for ops in _weighted_ops(layer) if ops]


def _values(op: Node) -> np.ndarray:
    return np.asarray(op.scale if isinstance(op, Scale) else op.weight)


def stored_values(op: Node) -> np.ndarray:
    """The op's values for a sign, peak or integrality test, which zeros cannot change: a conv's on its live taps
    (a fan-in part's kernel is its layer's masked to a few channels, mostly zeros), any other op's all."""
    return op.live_taps[1] if isinstance(op, Conv2d) else _values(op)


def layer_exponents(layer: Layer, target: Target) -> tuple[dict[str, float], float]:
    """Per weighted op exponent e_k, and the layer exponent E shared by all projections. In a chain of
    several weighted ops (e.g. a max-pool pick before a Linear) the targets store the composed weights,
    so a leading op whose weights are small integers keeps them (e = 0) and only the last op takes
    the full weight range; scaling each to full range would multiply their ranges."""
    exps: dict[str, float] = {}
    sums = []
    wmax = target.hooks.weight_max(target.spec, stored_signs(layer))
    rows = sample_rows(layer)
    for ops, p in zip(_weighted_ops(layer), layer.projections):
        gain, taps = chain_gain(layer, p, rows)
        for k, op in enumerate(ops):
            w = stored_values(op)
            small = k < len(ops) - 1 and np.array_equal(w, np.rint(w)) and float(np.max(np.abs(w), initial=0)) <= wmax
            last = k == len(ops) - 1
            exps[op.name] = 0.0 if small else max(exponent(w, wmax, gain if last else 1.0, taps if last else 1),
                                                  -MAX_COARSEN)
        sums.append(sum(exps[op.name] for op in ops))
    big = max(sums)
    for ops, s in zip(_weighted_ops(layer), sums):
        if s < big:
            if not ops:
                raise QuantizeError(f"{layer.name}: an unweighted input and a weighted one need different scales")
            exps[ops[-1].name] += big - s
    return exps, big


def whole_threshold(layer: Layer, exps: dict[str, float], big: float) -> tuple[dict[str, float], float]:
    """Make a layer-wide threshold a whole number of units, N = floor(theta / scale): the step grows by
    less than 1/N (weights keep nearly all their range) instead of the threshold rounding up by up to a unit."""
    theta = np.ravel(layer.held("threshold"))
    last = last_ops(layer)
    units = float(theta[0]) / 2.0 ** big if theta.size else 0.0
    if layer.kind != "spiking" or np.ptp(theta) > 0 or units < 1 or units == math.floor(units) or len(last) < len(layer.projections):
        return exps, big
    shift = math.log2(units / math.floor(units))
    return {k: v + shift if k in last else v for k, v in exps.items()}, big + shift
