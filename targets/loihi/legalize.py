"""Loihi legalisation: read-outs wider than a core's axons become host-summed parts (neurocomp.partition.fanin)."""
from __future__ import annotations

import dataclasses

from neurocomp.ir.graph import Graph, Neuron, Readout
from neurocomp.ir.layers import Layer, Network
from neurocomp.partition.fanin import fan_in, sample_rows, split_readouts
from neurocomp.target import TargetSpec


def adapt(graph: Graph, spec: TargetSpec) -> tuple[Graph, tuple[str, ...]]:
    """Lava's LIF resets to zero: spiking layers a converter built for reset by subtraction run with reset to zero,
    said in a note (their charge above threshold is lost, so rates above half the maximum compress; converting
    with reset "zero" calibrates for it)."""
    swapped = [n.name for n in graph.nodes if isinstance(n, Neuron) and not isinstance(n, Readout) and n.reset == "subtract"]
    if not swapped:
        return graph, ()
    names = set(swapped)
    nodes = tuple(dataclasses.replace(n, reset="zero") if n.name in names else n for n in graph.nodes)
    shown = ", ".join(swapped[:4]) + (f" and {len(swapped) - 4} more" if len(swapped) > 4 else "")
    note = (f"{spec.name} neurons reset to zero: {len(swapped)} layer(s) built for reset by subtraction ({shown}) run "
            f"with reset to zero, and model.pt holds them so; accuracy may drop (convert with --reset zero to "
            f"calibrate for it)")
    return Graph(nodes, graph.edges, graph.metadata), (note,)


def legalize(net: Network, spec: TargetSpec, weights: str = "levels") -> Network:
    """A read-out whose neurons read more inputs than a core's axons becomes host-summed parts; other
    layers are left to the partitioner, which names any neuron no core can hold."""
    axons = int(spec["core.axons"])
    return split_readouts(net, lambda layer: _fan_in(layer) > axons, axons)


def _fan_in(layer: Layer) -> int:
    """Input axons the widest neuron needs: one per input it reads, over all its projections."""
    rows = sample_rows(layer)
    return sum(fan_in(p, rows) for p in layer.projections)
