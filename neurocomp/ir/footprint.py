"""Refuse a compile or NIR export that cannot fit in memory, estimated from a graph's shapes alone.

Kept apart from neurocomp.memory, which every layer uses (input encoding too), because these estimates read the Graph.
"""
from __future__ import annotations

import math

from neurocomp.ir.graph import NEURONS, Affine, Conv2d, Graph, Input, SumPool2d
from neurocomp.memory import require


# Peak bytes a compile takes per neuron and per synapse (index, weight and partition arrays and
# their temporaries), set below what compiles measure so that only work that cannot fit is refused.
COMPILE_NEURON_BYTES = 200
COMPILE_SYNAPSE_BYTES = 40
EXPORT_NEURON_BYTES = 96


def layer_sizes(graph: Graph, dense_only: bool = False) -> dict[str, tuple[int, int]]:
    """Neurons and incoming synapses per neuron node, from shapes alone (Python ints: no overflow).
    A linear op's synapses count towards the neuron nodes it feeds; `dense_only`: only dense ops' (a target whose
    recurring cores share synapse lists stores a conv's once per distinct list, and checks those as it builds them)."""
    nodes = graph.node_map

    def synapses(name: str) -> int:
        node, out = nodes[name], math.prod(graph.shape(name))
        if isinstance(node, Input):
            return 0
        if isinstance(node, Affine):
            return node.weight.size
        if dense_only:
            return 0
        if isinstance(node, Conv2d):
            return out * math.prod(node.weight.shape[1:])
        if isinstance(node, SumPool2d):
            return out * math.prod(node.kernel)
        return out

    sizes: dict[str, tuple[int, int]] = {}
    for node in graph.nodes:
        if isinstance(node, NEURONS):
            todo, seen, syn = list(graph.predecessors(node.name)), set(), 0
            while todo:
                name = todo.pop()
                if name in seen:
                    continue
                seen.add(name)
                if not isinstance(nodes[name], NEURONS):
                    syn += synapses(name)
                    todo += graph.predecessors(name)
            sizes[node.name] = (math.prod(graph.shape(node.name)), syn)
    return sizes


def require_compile(graph: Graph, shared_lists: bool = False) -> None:
    """Refuse a graph whose compile cannot fit in memory, naming its largest layer (and how to size it anyway);
    `shared_lists`: the target's hook SHARED_LISTS (conv synapses are then checked by its builder)."""
    _require_layers(graph, COMPILE_NEURON_BYTES, COMPILE_SYNAPSE_BYTES, "compiling",
                    "; `neurocomp check MODEL --target T --census` counts its cores and chips without core tables",
                    shared_lists)


def require_export(graph: Graph) -> None:
    """Refuse a NIR export that cannot fit: NIR holds every neuron parameter (about a dozen) as a full
    float64 array, where our Graph keeps a uniform one as a scalar."""
    _require_layers(graph, EXPORT_NEURON_BYTES, 0, "exporting to NIR")


def _require_layers(graph: Graph, neuron_bytes: int, synapse_bytes: int, what: str, more: str = "",
                    dense_only: bool = False) -> None:
    sizes = layer_sizes(graph, dense_only)
    cost = {k: n * neuron_bytes + s * synapse_bytes for k, (n, s) in sizes.items()}
    if cost:
        big = max(cost, key=cost.get)
        n, s = sizes[big]
        require(f"layer {big} ({n:,} neurons, {s:,} synapses)", sum(cost.values()),
                f"the estimate covers {what} every layer; shrink the largest{more}")
