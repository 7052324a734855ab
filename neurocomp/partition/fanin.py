"""Fan-in rewrites the targets' legalize hooks share.

A read-out layer whose neurons read more inputs than a core has axons is split into
part layers, each reading one group of its source channels (the first weighted op of
the chain is masked, so a grouped conv keeps its groups); the host adds the parts'
potentials (neurocomp.ir.sums). Groups are sized on the chain's support (every weight
taken as 1), so a Correlation's run-time kernel cannot change them.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Callable, Iterable, Mapping

import numpy as np

from neurocomp.errors import UserError
from neurocomp.ir import sums
from neurocomp.ir.graph import (LINEAR_OPS, Affine, Conv2d, Correlation, Crop, Flatten, Graph, Node, Output, Readout,
                                fresh, on_taps, replaced)
from neurocomp.ir.layers import Layer, Network, Projection, lower
from neurocomp.partition.rows import structural

SAMPLE_ROWS = 4096
# A part layer's name: its layer's, `.part<k>`, and on TrueNorth a `+`/`-` for the half of one sign.
PART_NAME = re.compile(r"(.+)\.part\d+[+-]?")


def split_of(name: str) -> str | None:
    """The layer a fan-in split's part layer belongs to, or None for a layer no split made: reports list a
    split's parts (hundreds on a dense paper-size net) as one entry."""
    found = PART_NAME.fullmatch(name)
    return None if found is None else found[1]


def sample_rows(layer: Layer) -> np.ndarray:
    """Rows whose fan-in is the layer's largest: all of a small layer, else every channel's centre."""
    if layer.size <= SAMPLE_ROWS or len(layer.shape) != 3:
        return np.arange(min(layer.size, SAMPLE_ROWS))
    c, h, w = layer.shape
    return np.arange(c) * h * w + (h // 2) * w + w // 2


def fan_in(proj: Projection, rows: np.ndarray) -> int:
    """Inputs the widest sampled neuron reads through this projection (its chain's support)."""
    return int(np.diff(structural(proj).matrix(rows).indptr).max(initial=0))


def _first_weighted(proj: Projection) -> int | None:
    return next((k for k, op in enumerate(proj.chain) if isinstance(op, (Affine, Conv2d))), None)


def _input_channel(op: Node) -> np.ndarray:
    """Each weight's input channel, broadcastable to `op`'s weight: a grouped conv's weight column j of output
    channel o reads input channel (o's group) * cpg + j."""
    w = np.asarray(op.weight)
    n_groups = getattr(op, "groups", 1)
    cpg = w.shape[1]
    channel = (np.arange(w.shape[0]) // (w.shape[0] // n_groups))[:, None] * cpg + np.arange(cpg)[None, :]
    return channel.reshape(w.shape[:2] + (1,) * (w.ndim - 2))


def _channel_masks(op: Node, groups: int) -> list[np.ndarray]:
    """Masks (broadcastable to `op`'s weight) keeping the inputs of each of `groups` contiguous input-channel groups."""
    w = np.asarray(op.weight)
    channel = _input_channel(op)
    return [np.isin(channel, part) for part in np.array_split(np.arange(w.shape[1] * getattr(op, "groups", 1)), groups)]


def masked(proj: Projection, k: int, mask: np.ndarray) -> Projection:
    """The projection with its k-th (weighted) op restricted to the weights `mask` keeps."""
    chain = list(proj.chain)
    chain[k] = restricted(chain[k], mask)
    return dataclasses.replace(proj, chain=tuple(chain))


def restricted(op: Node, mask: np.ndarray, sign: float = 1.0) -> Node:
    """`op` keeping only the weights `mask` (broadcastable to its weight) selects, times `sign`: a conv's written on
    the taps the mask keeps alone (graph.on_taps). A Correlation's reach shrinks with them, so a part's cores are
    planned for its own channels whatever kernel is bound later."""
    w = np.asarray(op.weight)
    mask = np.asarray(mask, dtype=bool)
    mask = mask.reshape((1,) * (w.ndim - mask.ndim) + mask.shape)
    changes = {}
    if isinstance(op, Correlation):
        reach = np.ones(w.shape, dtype=bool) if op.reach is None else np.asarray(op.reach, dtype=bool)
        changes["reach"] = fresh(reach & mask)
    if not isinstance(op, Conv2d):
        weight = np.where(mask, w, 0.0)
        weight *= sign
        return dataclasses.replace(op, weight=fresh(weight), **changes)
    taps = np.flatnonzero(np.broadcast_to(mask.any(axis=0, keepdims=True), (1,) + w.shape[1:]))
    at = (slice(None),) + np.unravel_index(taps, w.shape[1:])
    values = np.where(np.broadcast_to(mask, w.shape)[at], w[at], 0.0)
    values *= sign
    return on_taps(op, taps, values, **changes)


def channel_groups(proj: Projection, rows: np.ndarray, budget: int) -> list[np.ndarray] | None:
    """Masks of the fewest input-channel groups whose fan-in is each <= budget; None when even one channel
    per group is too wide (or the chain has no weighted op)."""
    k = _first_weighted(proj)
    if k is None:
        return None
    op = proj.chain[k]
    channels = np.asarray(op.weight).shape[1] * getattr(op, "groups", 1)
    counts = unit_fan_ins(structural(proj), k, rows, _input_channel(op), channels)
    widest_row = int(counts.sum(axis=1).max(initial=0))   # its units are disjoint inputs: fan_in, not built again
    for groups in range(max(1, -(-widest_row // budget)), channels + 1):
        if widest(counts, groups) <= budget:
            return _channel_masks(op, groups)
    return None


def unit_fan_ins(proj: Projection, k: int, rows: np.ndarray, unit: np.ndarray, n_units: int) -> np.ndarray:
    """(rows, units) inputs each row reads through the weights of each unit of the k-th (first weighted) op
    (`unit`: each weight's unit in 0..n_units - 1, broadcastable to the weight). Units are disjoint input channels
    (or columns), which the per-channel ops before k keep apart, so a group of units reads the sum of their
    counts. An Affine or Conv2d first in its chain, followed by selections only (Crop, Flatten), is read once, each
    weight replaced by its unit + 1, so the matrix's entries name their units; any other chain (a pool before k
    sums weights) builds one matrix per unit's mask (a paper-size conv has hundreds)."""
    op = proj.chain[k]
    shape = np.shape(op.weight)
    if k > 0 or not isinstance(op, (Affine, Conv2d)) or not all(isinstance(o, (Crop, Flatten)) for o in proj.chain[1:]):
        return np.stack([np.diff(masked(proj, k, unit == u).matrix(rows).indptr)
                         for u in range(n_units)], axis=1)
    if isinstance(op, Conv2d) and op.padding == (0, 0):
        return _unclipped_fan_ins(proj, rows, unit, n_units)
    labelled = np.where(np.asarray(op.weight) != 0, np.broadcast_to(unit, shape) + 1.0, 0.0)
    chain = (dataclasses.replace(op, weight=labelled, bias=None),) + proj.chain[1:]
    m = dataclasses.replace(proj, chain=chain).matrix(rows)
    row = np.repeat(np.arange(len(rows)), np.diff(m.indptr))
    return np.bincount(row * n_units + m.data.astype(np.int64) - 1,
                       minlength=len(rows) * n_units).reshape(len(rows), n_units)


def _unclipped_fan_ins(proj: Projection, rows: np.ndarray, unit: np.ndarray, n_units: int) -> np.ndarray:
    """unit_fan_ins of a conv without padding first in its chain (then Crop, Flatten): no window is clipped, so a
    row reads its output channel's non-zero taps, counted per unit off the kernel (a paper-size score's 289 rows
    of 24,576 inputs each were built as a matrix to be counted)."""
    weight = np.asarray(proj.chain[0].weight)
    cout = weight.shape[0]
    labelled = np.where(weight != 0, np.broadcast_to(unit, weight.shape) + 1, 0).reshape(cout, -1).astype(np.int64)
    per_channel = np.bincount((np.arange(cout)[:, None] * (n_units + 1) + labelled).ravel(),
                              minlength=cout * (n_units + 1)).reshape(cout, n_units + 1)[:, 1:]
    plane = [s for s in proj.shapes[1:] if len(s) == 3][-1]
    return per_channel[np.asarray(rows, dtype=np.int64) // (plane[1] * plane[2])]


def widest(counts: np.ndarray, groups: int) -> int:
    """The largest fan-in of any row over np.array_split's `groups` contiguous groups of the units."""
    sizes = [part.size for part in np.array_split(np.arange(counts.shape[1]), groups)]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    return int(np.add.reduceat(counts, starts, axis=1).max(initial=0))


def split_readouts(net: Network, wide: Callable[[Layer], bool], budget: int, preferred: int | None = None) -> Network:
    """Each read-out layer `wide` says cannot fit one core becomes parts of <= `preferred` inputs per neuron
    where one input channel fits that, else of <= `budget`."""
    return readout_parts(net, wide, lambda layer: _parts(layer, budget, preferred))


Parts = list[tuple[Readout, list[Node], str]]


def readout_parts(net: Network, chosen: Callable[[Layer], bool], parts_of: Callable[[Layer], Parts]) -> Network:
    """Each read-out layer `chosen` says, and only Outputs read, becomes the parts `parts_of` gives (neuron, its
    chain, its source) -- read-outs are linear in their input, so the host adds their potentials (ir.sums). A layer
    that is already a part of a sum is replaced by its parts in that sum."""
    split = [layer for layer in net.layers if isinstance(layer.neuron, Readout) and chosen(layer)]
    if not split:
        return net
    g = net.graph
    nodes = {n.name: n for n in g.nodes}
    edges = list(g.edges)
    table = sums.decode(g.metadata)
    for layer in split:
        outs = [b for a, b in edges if a == layer.name]
        if any(not isinstance(nodes[b], Output) for b in outs):
            continue
        parts = parts_of(layer)
        edges = [e for e in edges if layer.name not in e]
        del nodes[layer.name]
        for i, (part, chain, source) in enumerate(parts):
            sinks = outs if i == 0 else [f"{part.name}.{o}" for o in outs]   # an Output reads one layer
            nodes.update({n.name: n for n in chain + [part] + [Output(o) for o in sinks]})
            names = [source] + [op.name for op in chain] + [part.name]
            edges += list(zip(names[:-1], names[1:])) + [(part.name, o) for o in sinks]
        names = tuple(part.name for part, _, _ in parts)
        owner = next((name for name, members in table.items() if layer.name in members), None)
        if owner is None:
            table[layer.name] = names
        else:
            table[owner] = tuple(n for member in table[owner] for n in (names if member == layer.name else (member,)))
    meta = dict(g.metadata) | {sums.KEY: sums.encode(table)}
    return lower(pruned(nodes.values(), edges, meta))


def _parts(layer: Layer, budget: int, preferred: int | None) -> Parts:
    """(part neuron, its chain, its source) per projection and channel group; part 0 keeps the layer's
    bias and initial potential, the others start at 0 with no bias."""
    rows = sample_rows(layer)
    out: Parts = []
    for proj in layer.projections:
        masks = _masks(proj, rows, preferred) if preferred is not None else None
        masks = masks or _masks(proj, rows, budget)
        if masks is None:
            raise UserError(f"layer {layer.name}: one input channel of {proj.source} already gives "
                            f"{fan_in(proj, rows)} inputs per neuron, over the {budget} a core takes; "
                            f"use a smaller kernel or fewer positions per channel")
        k = _first_weighted(proj)
        for mask in masks:
            tag = f"{layer.name}.part{len(out)}"
            sub = proj if mask is None else masked(proj, k, mask)
            chain = tagged(sub.chain, tag)
            first = not out
            neuron = dataclasses.replace(layer.neuron, name=tag,
                                         bias=layer.bias().reshape(layer.shape) if first else 0.0,
                                         v_init=layer.neuron.v_init if first else 0.0)
            out.append((neuron, chain, proj.source))
    return out


def tagged(chain: Iterable[Node], tag: str) -> list[Node]:
    """A part's copy of a chain: each op renamed under the part's tag, without its bias (the part's neuron holds
    what the layer's biases add)."""
    return [replaced(op, name=f"{tag}.{op.name}", **({"bias": None} if hasattr(op, "bias") else {})) for op in chain]


def _masks(proj: Projection, rows: np.ndarray, budget: int) -> list[np.ndarray | None] | None:
    """[None] when the projection fits `budget` whole, else its channel groups' masks (None: one channel is wider)."""
    return [None] if fan_in(proj, rows) <= budget else channel_groups(proj, rows, budget)


def pruned(nodes: Iterable[Node], edges: Iterable[tuple[str, str]], metadata: Mapping[str, str]) -> Graph:
    """The Graph of a rewrite, less the linear ops it left without successors (and the ops only they fed): pruned
    by name, so the Graph (shapes inferred, every array checked finite) is built once."""
    kept, kept_edges = {n.name: n for n in nodes}, list(edges)
    while True:
        succ = {a for a, _ in kept_edges}
        dead = {name for name, n in kept.items() if isinstance(n, LINEAR_OPS) and name not in succ}
        if not dead:
            return Graph(tuple(kept.values()), tuple(kept_edges), metadata)
        kept = {name: n for name, n in kept.items() if name not in dead}
        kept_edges = [e for e in kept_edges if e[1] not in dead]
