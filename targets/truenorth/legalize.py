"""Fan-in splitting: a layer whose neurons read more inputs than a TrueNorth core has axons
becomes partial-sum layers plus the original neurons.

For G input groups (channel ranges of the weighted op), each group gets two partial
IF layers, one on +W_g and one on -W_g, with threshold theta_p, reset by subtraction
and a floor at 0. They turn the positive and negative parts of the partial sum into
spike counts; the original neurons integrate those spikes with weights +theta_p and
-theta_p. Over a window the original neurons receive sum_g P_g up to the charge still
held in the partial neurons (< theta_p each), one tick later. theta_p is the original
neuron's threshold, so a partial spike carries one output spike's worth of charge
(charge beyond one spike per tick waits in the partial and is not lost); each group
reads at most axons / L inputs (L = 4 weight levels, 2 in trinary mode), so the partial
weights keep their levels. A layer with several projections has its widest weighted ones
split until the rest, read directly, plus one axon per partial neuron fit a core; the
direct inputs then arrive a tick early, which the mapper's axon delays balance. This is
an approximation of the graph: the compile report says which layers were split and
the reference backend on the original graph measures the accuracy it costs. In "whole" weight
mode a layer is split only where one neuron's fan-in exceeds a core's axons: each input then
enters once, typed by the neuron's weight level, and the mapper fits fewer neurons per core.

A read-out layer needs none of this: it is split into parts of <= axons / L inputs whose
potentials the host adds (neurocomp.partition.fanin), exactly and with no extra tick.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from neurocomp.errors import UserError
from neurocomp.ir.graph import IF, Affine, Conv2d, Graph, Node, Scale, replaced, uniform_or_full
from neurocomp.ir.layers import Layer, Network, lower
from neurocomp.partition.delays import STAGES
from neurocomp.partition.fanin import (pruned, restricted, sample_rows, split_readouts, tagged,
                                      unit_fan_ins, widest)
from neurocomp.partition.rows import bound_layer, is_bound, structural, support
from neurocomp.target import TargetSpec
from neurocomp.targets.truenorth.quant import mode_levels

SPLIT_KEY = "truenorth_fanin_split"  # graph metadata: the layers whose fan-in became partial sums
# A bound read-out (the tracker's correlation) in parts of at most 1/2 a core's axons per neuron. Measured with
# 2-row tiles everywhere: micro3 3,815 -> 2,405 cores (score parts of one channel each, 9 positions per core, and
# fewer copies of conv2-4 to feed them), micro 9,276 -> 7,930, siamsnn.pt 6,361 -> 5,958, mini 16,799 -> 13,230.
# The host adds the parts' potentials exactly; each part rounds its own share of a bound kernel (on 16
# training-photo clips micro3's chip AUC went 0.594 -> 0.602).
BOUND_PART_SHARE = 2


def _weighted(proj) -> int | None:
    """Index of the last Affine/Conv2d in a projection's chain (the op a split restricts), or None."""
    ks = [i for i, op in enumerate(proj.chain) if isinstance(op, (Affine, Conv2d))]
    return ks[-1] if ks else None


def _axons(proj, rows: np.ndarray, whole: bool) -> int:
    """Axons the widest sampled neuron needs for this projection: its fan-in, twice if its weights have both signs
    (so that the neurons sharing a core share each input's axons) -- once in "whole" mode, where a neuron alone
    takes one axon per input, typed by its weight's level, and the mapper puts fewer neurons on a core."""
    m = proj.matrix(rows)
    levels = 2 if (m.data < 0).any() and (m.data > 0).any() and not whole else 1
    return int(np.diff(m.indptr).max(initial=0)) * levels


def _plan(layer: Layer, spec: TargetSpec, levels: int, whole: bool) -> dict[int, int]:
    """Projections to turn into partial sums and their group counts: the widest weighted ones first, until
    the direct projections plus one axon per partial neuron fit a core. Empty when the layer fits as it is.
    A layer reading a bound projection keeps, split or not, every axon type of every input its support may
    read (mapping.kernel_layers), so it is planned on that, never on a kernel's values."""
    rows = sample_rows(layer)
    per_input = int(spec["core.axon_types"]) if bound_layer(layer) else 1
    need = _need(layer, rows, per_input, whole)
    plan: dict[int, int] = {}
    weighted = [i for i, p in enumerate(layer.projections) if _weighted(p) is not None]
    for i in sorted(weighted, key=lambda i: -need[i]):
        if sum(need) <= spec["core.axons"]:
            break
        plan[i] = _groups(layer.projections[i], _weighted(layer.projections[i]), rows, spec, levels)
        need[i] = 2 * plan[i] * per_input
    return plan


def _need(layer: Layer, rows: np.ndarray, per_input: int, whole: bool) -> list[int]:
    """Axons the widest sampled neuron needs per projection, as _plan counts them."""
    if bound_layer(layer):
        return [int(np.diff(support(p, rows).indptr).max(initial=0)) * per_input for p in layer.projections]
    return [_axons(p, rows, whole) for p in layer.projections]


def _planned(layer: Layer, spec: TargetSpec, whole: bool) -> bool:
    """Does _plan split any projection of `layer` (its weighted ones' groups left uncounted)?"""
    per_input = int(spec["core.axon_types"]) if bound_layer(layer) else 1
    return (any(_weighted(p) is not None for p in layer.projections)
            and sum(_need(layer, sample_rows(layer), per_input, whole)) > spec["core.axons"])


def _group_masks(op: Node, groups: int) -> list[np.ndarray]:
    """Boolean masks, broadcastable to the weight array, selecting each group's input channels (or columns)."""
    w = np.asarray(op.weight)
    masks = []
    for part in np.array_split(np.arange(w.shape[1]), groups):
        mask = np.zeros((1, w.shape[1]) + (1,) * (w.ndim - 2), dtype=bool)
        mask[:, part] = True
        masks.append(mask)
    return masks


def _groups(proj, k: int, rows: np.ndarray, spec: TargetSpec, levels: int) -> int:
    """Fewest input groups such that every group's fan-in leaves room for its weight levels."""
    budget = spec["core.axons"] // (int(spec["core.axon_types"]) if is_bound(proj) else levels)  # kernel_layers
    n_in = np.asarray(proj.chain[k].weight).shape[1]
    proj = structural(proj) if is_bound(proj) else proj
    shape = np.asarray(proj.chain[k].weight).shape
    counts = unit_fan_ins(proj, k, rows, np.arange(n_in).reshape((1, n_in) + (1,) * (len(shape) - 2)), n_in)
    fan = int(counts.sum(axis=1).max())   # its units are disjoint inputs: a row's fan-in is its counts' sum
    for groups in range(max(1, -(-fan // budget)), n_in + 1):
        if widest(counts, groups) <= budget:
            return groups
    return n_in


def _split(layer: Layer, plan: dict[int, int]) -> tuple[list[Node], list[tuple[str, str]], Node]:
    """Partial-sum layers for the planned projections; the others stay direct (their biases move to the neuron)."""
    nodes: list[Node] = []
    edges: list[tuple[str, str]] = []
    for i, proj in enumerate(layer.projections):
        prefix = layer.name if len(layer.projections) == 1 else f"{layer.name}.in{i}"
        part_nodes, part_edges = _partials(layer, proj, plan[i], prefix) if i in plan else _direct(layer, proj)
        nodes += part_nodes
        edges += part_edges
    return nodes, edges, dataclasses.replace(layer.neuron, bias=layer.bias().reshape(layer.shape))


def _direct(layer: Layer, proj) -> tuple[list[Node], list[tuple[str, str]]]:
    """An unsplit projection: its ops without bias, and its last edge into the layer."""
    chain = [replaced(op, bias=None) if getattr(op, "bias", None) is not None else op for op in proj.chain]
    return chain, [((chain[-1].name if chain else proj.source), layer.name)]


def _partials(layer: Layer, proj, groups: int, prefix: str) -> tuple[list[Node], list[tuple[str, str]]]:
    k = _weighted(proj)
    rows = sample_rows(layer)
    plans = []
    for g, mask in enumerate(_group_masks(proj.chain[k], groups)):
        for sign in (1.0, -1.0):
            tag = f"{prefix}.part{g}{'+' if sign > 0 else '-'}"
            chain = tagged(proj.chain, tag)
            chain[k] = restricted(chain[k], mask, sign)
            plans.append((tag, sign, chain))
    theta = _partial_threshold(layer, [chain for _, _, chain in plans], proj, rows)
    nodes: list[Node] = []
    edges: list[tuple[str, str]] = []
    for tag, sign, chain in plans:
        part = IF(tag, threshold=theta, reset="subtract", v_min=0.0)
        scale = Scale(f"{tag}.w", scale=theta * sign)
        names = [proj.source] + [op.name for op in chain] + [part.name, scale.name, layer.name]
        nodes += chain + [part, scale]
        edges += list(zip(names[:-1], names[1:]))
    return nodes, edges


def _partial_threshold(layer: Layer, chains: list[list[Node]], proj, rows: np.ndarray) -> np.ndarray:
    """Each partial spike carries one downstream threshold of charge: the lumps are no bigger than
    what one output spike needs, so little charge waits in the partials; a read-out layer has no
    threshold and uses the largest per-tick partial sum instead."""
    if layer.kind == "spiking":
        return uniform_or_full(layer.neuron.threshold, layer.shape)
    return np.array(max(max(_chain_positive_sum(proj, chain, rows) for chain in chains), 1e-12))


def _chain_positive_sum(proj, chain: list[Node], rows: np.ndarray) -> float:
    """Largest per-tick input a partial neuron can get: the sum of its positive composite weights."""
    sub = dataclasses.replace(proj, chain=tuple(chain))
    m = sub.matrix(rows)
    m.data = np.maximum(m.data, 0.0)
    return float(np.asarray(m.sum(axis=1)).max(initial=0.0))


def adapt(graph: Graph, spec: TargetSpec) -> tuple[Graph, tuple[str, ...]]:
    """TrueNorth runs both resets and every neuron kind the Graph has: nothing to change."""
    return graph, ()


def legalize(net: Network, spec: TargetSpec, weights: str = "levels") -> Network:
    """Rewrite the layers whose fan-in cannot fit one core; other layers are untouched."""
    if net.feedback():
        raise UserError(f"recurrent projections {net.feedback()}: the truenorth mapping sizes each neuron's fan-out "
                        f"copies and balances path delays for feed-forward layer graphs only; use a Loihi target")
    levels, whole = mode_levels(weights, spec), weights == "whole"
    # A bound read-out's parts open every axon type of their inputs (mapping.kernel_layers), whatever the mode.
    # Its parts read at most half a core's axons where one input channel allows (BOUND_PART_SHARE), so a core
    # holds a tile of neighbouring positions, whose windows overlap, instead of one or two.
    types, axons = int(spec["core.axon_types"]), int(spec["core.axons"])
    given = {layer.name for layer in net.layers}
    for bound, per_input in ((True, types), (False, levels)):
        net = split_readouts(net, lambda layer, b=bound: bound_layer(layer) == b and _planned(layer, spec, whole),
                             axons // per_input, axons // (per_input * BOUND_PART_SHARE) if bound else None)
    # A read-out's part needs no plan: it reads <= axons / per_input inputs per neuron, so _plan finds it fits.
    plans = {layer.name: _plan(layer, spec, levels, whole) if layer.name in given else {} for layer in net.layers}
    split = [layer for layer in net.layers if plans[layer.name]]
    if not split:
        return net
    g = net.graph
    nodes = {n.name: n for n in g.nodes}
    edges = list(g.edges)
    parts: list[str] = []
    for layer in split:
        new_nodes, new_edges, neuron = _split(layer, plans[layer.name])
        edges = [e for e in edges if e[1] != layer.name]
        nodes[layer.name] = neuron
        nodes.update({n.name: n for n in new_nodes})
        edges += new_edges
        parts += [n.name for n in new_nodes if isinstance(n, IF)]
    meta = dict(g.metadata) | {SPLIT_KEY: ",".join(layer.name for layer in split), STAGES: ",".join(parts)}
    return lower(pruned(nodes.values(), edges, meta))

