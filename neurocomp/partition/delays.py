"""Axon delays that keep the Graph's timing when the compiler adds stages.

The Graph gives every edge into a layer one tick, and networks rely on it (a skip
connection's inputs are one tick apart per layer of depth; two-status coding times its kick
by graph depth). Mapping adds ticks the Graph does not have: partial-sum layers of a fan-in
split (listed in the graph metadata under STAGES) and splitter neurons (`stage`, per source).
So the program runs `shift(L)` ticks behind the Graph at layer L, and every edge S -> L gets
the delay that keeps L's inputs aligned as the Graph has them:

    shift(L) = max(0, max over sources S of shift(S) + stage(S) + 1 - own(L))
    delay(S -> L) = own(L) + shift(L) - shift(S)    (>= 1 + stage(S), a splitter takes one of them)

with own(L) = 0 for an inserted layer (no tick in the original Graph), else 1. A layer's
latency (input spike to the spikes it causes) is its depth in the Graph plus its shift.
The program computes `relay_graph(graph, delays)` exactly: the Graph with relay neurons
standing for the extra ticks.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping

from neurocomp.errors import ResourceError
from neurocomp.ir.graph import IF, LINEAR_OPS, Graph
from neurocomp.ir.layers import Network

STAGES = "compiler_stages"  # graph metadata: comma-separated layers the compiler inserted


@dataclass(frozen=True)
class Timing:
    latency: dict[str, int]              # per layer: ticks from an input spike to the spikes it causes
    shift: dict[str, int]                # per layer: ticks the program runs behind the Graph
    delay: dict[tuple[str, str], int]    # per (source, layer): axon delay, a splitter's tick included

    def nested_delays(self) -> dict[str, dict[str, int]]:
        """{layer: {source: delay}}, the JSON form kept in a program's notes."""
        out: dict[str, dict[str, int]] = {}
        for (source, layer), d in self.delay.items():
            out.setdefault(layer, {})[source] = d
        return out


def inserted(net: Network) -> set[str]:
    return set(filter(None, net.graph.metadata.get(STAGES, "").split(",")))


def timing(net: Network, stage: Mapping[str, int] | None = None, delay_max: int | None = None) -> Timing:
    """Shifts, latencies and delays; a delay beyond `delay_max` is a ResourceError naming the edge."""
    stage, plumbing = stage or {}, inserted(net)
    depth = {i.name: 0 for i in net.inputs}
    shift = dict(depth)
    delay = {}
    for layer in net.layers:
        own = 0 if layer.name in plumbing else 1
        sources = [p.source for p in layer.projections if p.source in depth]  # a recurrent source is not yet
        depth[layer.name] = own + max(depth[s] for s in sources)
        shift[layer.name] = max(0, max(shift[s] + stage.get(s, 0) + 1 - own for s in sources))
    for layer in net.layers:  # after every shift is known, so recurrent (feedback) edges get theirs too
        own = 0 if layer.name in plumbing else 1
        for s in [p.source for p in layer.projections]:
            d = own + shift[layer.name] - shift[s]
            if delay_max is not None and d > delay_max:
                raise ResourceError(f"layer {layer.name}, input from {s}", "axon delay (ticks)", d, delay_max,
                                    hint=f"fan-in splits and splitters on the other paths into {layer.name} add {d - 1} "
                                         f"ticks that this edge must wait; add identity IF layers on it to carry some")
            if d < 1:
                raise ResourceError(f"layer {layer.name}, recurrent input from {s}", "axon delay (ticks)", d, 1,
                                    hint="the inserted stages make this feedback loop take longer than its one tick")
            delay[(s, layer.name)] = d
    names = [layer.name for layer in net.layers]
    return Timing({k: depth[k] + shift[k] for k in names}, {k: shift[k] for k in names}, delay)


def flat_delays(nested: Mapping[str, Mapping[str, int]]) -> dict[tuple[str, str], int]:
    """The inverse of Timing.nested_delays."""
    return {(source, layer): d for layer, row in nested.items() for source, d in row.items()}


def relay_graph(g: Graph, edge_delays: Mapping[tuple[str, str], int]) -> Graph:
    """The unit-delay Graph that a program with these delays computes: d - 1 relay IF neurons (threshold 1,
    reset to zero: each repeats its input one tick later) on every (source, layer) edge of delay d."""
    nodes, edges = list(g.nodes), list(g.edges)
    for (source, layer), d in sorted(edge_delays.items()):
        if d <= 1:
            continue
        first = _first_node(g, source, layer)
        names = [source] + [f"{source}.delay{k}.{layer}" for k in range(1, d)] + [first]
        nodes += [IF(n, threshold=1.0) for n in names[1:-1]]
        edges = [e for e in edges if e != (source, first)] + list(zip(names[:-1], names[1:]))
    return dataclasses.replace(g, nodes=tuple(nodes), edges=tuple(edges))


def _first_node(g: Graph, source: str, layer: str) -> str:
    """The successor of `source` on the path of linear ops into `layer`."""
    nodes = g.node_map
    for nxt in g.successors(source):
        cur = nxt
        while isinstance(nodes[cur], LINEAR_OPS) and len(g.successors(cur)) == 1:
            cur = g.successors(cur)[0]
        if cur == layer:
            return nxt
    raise KeyError(f"no edge from {source} into {layer}")
