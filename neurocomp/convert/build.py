"""Scaled segments -> SNN Graph: SumPool2d/Flatten/Conv2d/Affine chains into IF layers and a Readout.

Initial potentials: `v_init` (a fraction of the threshold 1) for IF layers; with latency
compensation, minus the bias a layer integrates before its first input arrives. In
the Graph every edge into a neuron takes one tick, so layer l (1-based) sees input
from tick l on, while its bias is added from tick 0: l ticks of bias to take back.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from neurocomp.convert.ann import Pool, Segment, Weighted
from neurocomp.convert.maxpool import levels, spiking_max
from neurocomp.convert.options import ConvertOptions
from neurocomp.ir.graph import IF, Affine, Conv2d, Flatten, Graph, Input, Neuron, Node, Output, Readout, SumPool2d
from neurocomp.ir.layers import lower

INPUT, OUTPUT, READOUT = "input", "output", "readout"


def layer_names(plan: tuple[Segment, ...]) -> list[str]:
    return [f"if{i}" if seg.spiking else READOUT for i, seg in enumerate(plan, 1)]


def spiking_pool(seg: Segment) -> Pool | None:
    """The max pool a segment opens with (it then reads a spike train), when it is to be spiking."""
    first = seg.ops[0]
    return first if isinstance(first, Pool) and first.kind == "max" else None


def layer_depths(plan: tuple[Segment, ...]) -> list[int]:
    """Ticks from the input to each segment's layer: one per layer on the longest path (max-pool levels too)."""
    depths = np.cumsum([1 + (levels(spiking_pool(seg)) if spiking_pool(seg) else 0) for seg in plan])
    return [int(d) for d in depths]


def build_graph(plan: tuple[Segment, ...], input_shape: tuple[int, ...], opts: ConvertOptions,
                metadata: dict[str, str] | None = None) -> Graph:
    nodes: list[Node] = [Input(INPUT, input_shape, opts.encoding)]
    edges: list[tuple[str, str]] = []
    prev, channels = INPUT, input_shape[0]
    for seg, name in zip(plan, layer_names(plan)):
        pool = spiking_pool(seg)
        if pool is None:
            feeds = [(prev, [_linear_node(op) for op in seg.ops])]
        else:
            tree, tree_edges, picks = spiking_max(prev, channels, pool, name, opts.reset)
            nodes += tree
            edges += tree_edges
            feeds = [(src, [pick] * (pick is not None) + _copies(seg.ops[1:], "" if k == 0 else f".{src}"))
                     for k, (src, pick) in enumerate(picks)]
        for src, chain in feeds:
            names = [src] + [n.name for n in chain] + [name]
            nodes += chain
            edges += list(zip(names[:-1], names[1:]))
        nodes.append(_neuron(name, seg, opts))
        prev, channels = name, seg.weighted.channels
    nodes.append(Output(OUTPUT))
    edges.append((prev, OUTPUT))
    graph = Graph(tuple(nodes), tuple(edges), metadata or {})
    return _compensated(graph, plan, opts) if opts.latency_compensation else graph


def _copies(ops: tuple, suffix: str) -> list[Node]:
    """The linear ops as nodes; a suffixed copy (a second path into the same layer) drops the bias."""
    nodes = [_linear_node(op) for op in ops]
    if not suffix:
        return nodes
    return [dataclasses.replace(n, name=n.name + suffix, **({"bias": None} if hasattr(n, "bias") else {}))
            for n in nodes]


def _linear_node(op) -> Node:
    if isinstance(op, Weighted):
        if op.is_conv:
            return Conv2d(op.name, op.weight, op.bias, op.stride, op.padding, op.groups)
        return Affine(op.name, op.weight, op.bias)
    if isinstance(op, Pool):
        return SumPool2d(op.name, op.kernel, op.stride, op.padding)
    return Flatten(op.name)


def _neuron(name: str, seg: Segment, opts: ConvertOptions) -> Neuron:
    if not seg.spiking:
        return Readout(name)
    return IF(name, threshold=1.0, v_init=opts.v_init, reset=opts.reset)


def _compensated(graph: Graph, plan: tuple[Segment, ...], opts: ConvertOptions) -> Graph:
    """v_init minus l ticks of each neuron's bias, l the layer's depth."""
    net = lower(graph)
    nodes = graph.node_map
    changed = {}
    for depth, name in zip(layer_depths(plan), layer_names(plan)):
        layer = net.layer(name)
        bias = layer.bias().reshape(layer.shape)
        changed[name] = dataclasses.replace(nodes[name], v_init=np.asarray(nodes[name].v_init) - depth * bias)
    return Graph(tuple(changed.get(n.name, n) for n in graph.nodes), graph.edges, graph.metadata)
