"""Loihi legalisation: read-outs wider than a core's axons become host-summed parts (neurocomp.partition.fanin),
and a read-out whose kernel is bound at run time gets a second part holding what its 8-bit weights drop.

A bound kernel (SiamFC's exemplar embedding) is whatever the exemplar gives: no training put it on the weight grid,
and 8 bits (7 and a sign: it has both) hold it to 1/254 of its peak, enough to move the peak of a flat response
map. The read-out's potential is linear in its weights, so it splits exactly into a coarse part (the kernel on the
layer's grid, which the quantiser then keeps) and a fine part (the rest, at most half a step, on a grid of its own
254 times finer); the host adds the two potentials, and the chip's score is the kernel's to 1/2^14 of its peak.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from neurocomp.ir.graph import Correlation, Crop, Flatten, Graph, Neuron, Readout
from neurocomp.ir.layers import Layer, Network
from neurocomp.partition.fanin import Parts, fan_in, readout_parts, sample_rows, split_readouts, tagged
from neurocomp.partition.rows import bound_layer
from neurocomp.quantize.steps import exponent
from neurocomp.target import TargetSpec
from neurocomp.targets.loihi.quant import weight_max

SELECTIONS = (Crop, Flatten)   # ops that only pick inputs: a synapse's weight is the kernel's own


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
    """A read-out whose neurons read more inputs than a core's axons becomes host-summed parts, and (but in the
    "coarse" weight mode) a bound read-out a coarse and a fine part; other layers are left to the partitioner,
    which names any neuron no core can hold."""
    axons = int(spec["core.axons"])
    net = split_readouts(net, lambda layer: _fan_in(layer) > axons, axons)
    if weights == "coarse":
        return net
    return readout_parts(net, _bound_kernel, lambda layer: _coarse_fine(layer, spec))


def _bound_kernel(layer: Layer) -> bool:
    """A read-out whose one projection stores a bound kernel's values as they are (nothing else weighs them)."""
    if not bound_layer(layer) or len(layer.projections) != 1:
        return False
    chain = layer.projections[0].chain
    return all(isinstance(op, (Correlation,) + SELECTIONS) for op in chain) and \
        sum(isinstance(op, Correlation) for op in chain) == 1


def _coarse_fine(layer: Layer, spec: TargetSpec) -> Parts:
    """`coarse`: the kernel, the layer's bias and its initial potential on the 8-bit grid the quantiser gives the
    kernel (its peak on the largest weight); `fine`: what `coarse` drops of each, which the quantiser puts on a grid
    of its own."""
    (proj,) = layer.projections
    k = next(i for i, op in enumerate(proj.chain) if isinstance(op, Correlation))
    kernel = np.asarray(proj.chain[k].weight, dtype=np.float64)
    step = 2.0 ** exponent(kernel, weight_max(spec, kernel))   # the quantiser's (exact for a kernel on a 2^e grid)
    values = [kernel, layer.bias().reshape(layer.shape), np.broadcast_to(layer.neuron.v_init, layer.shape)]
    coarse = [np.rint(v / step) * step for v in values]
    out: Parts = []
    for part, (weight, bias, v_init) in zip(("coarse", "fine"), (coarse, [v - c for v, c in zip(values, coarse)])):
        tag = f"{layer.name}.{part}"
        chain = tagged(proj.chain, tag)
        chain[k] = dataclasses.replace(chain[k], weight=weight)
        out.append((dataclasses.replace(layer.neuron, name=tag, bias=bias, v_init=v_init), chain, proj.source))
    return out


def _fan_in(layer: Layer) -> int:
    """Input axons the widest neuron needs: one per input it reads, over all its projections."""
    rows = sample_rows(layer)
    return sum(fan_in(p, rows) for p in layer.projections)
