"""Loihi legalisation: read-outs wider than a core's axons become host-summed parts (neurocomp.partition.fanin)."""
from __future__ import annotations

from neurocomp.ir.layers import Layer, Network
from neurocomp.partition.fanin import fan_in, sample_rows, split_readouts
from neurocomp.target import TargetSpec


def legalize(net: Network, spec: TargetSpec, weights: str = "levels") -> Network:
    """A read-out whose neurons read more inputs than a core's axons becomes host-summed parts; other
    layers are left to the partitioner, which names any neuron no core can hold."""
    axons = int(spec["core.axons"])
    return split_readouts(net, lambda layer: _fan_in(layer) > axons, axons)


def _fan_in(layer: Layer) -> int:
    """Input axons the widest neuron needs: one per input it reads, over all its projections."""
    rows = sample_rows(layer)
    return sum(fan_in(p, rows) for p in layer.projections)
