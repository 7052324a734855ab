"""The quantiser's entry point: every layer of a network, the target's range limits, and the check of what it stores."""
from __future__ import annotations

import dataclasses

import numpy as np

from neurocomp.encoding import SPIKING, payload_max
from neurocomp.errors import QuantizeError, VerifyError
from neurocomp.ir.graph import Graph, Node
from neurocomp.ir.layers import Network, lower
from neurocomp.quantize.layer import quantize_layer
from neurocomp.quantize.qnetwork import QLayer, QNetwork
from neurocomp.quantize.steps import WEIGHTED, stored_values
from neurocomp.target import Target


def quantize(net: Network, target: Target, weights: str | None = None) -> QNetwork:
    """`weights` is one of the target's WEIGHT_MODES (how its hook clusters a neuron's weights); None: its first."""
    weights = weights or target.hooks.WEIGHT_MODES[0]
    bits = int(target.spec.get("core.message_bits", 0))
    peaks = {i.name: float(payload_max(bits)) for i in net.inputs if i.encoding not in SPIKING}
    replaced: dict[str, Node] = {}
    qlayers: list[QLayer] = []
    owner: dict[str, str] = {}
    for layer in net.layers:
        for p in layer.projections:
            for op in p.chain:
                if isinstance(op, WEIGHTED) and owner.setdefault(op.name, layer.name) != layer.name:
                    raise QuantizeError(f"{op.name}: a weighted op feeding two layers ({owner[op.name]}, {layer.name}) is not supported")
        nodes, qlayer = quantize_layer(layer, target, weights, peaks)
        replaced.update(nodes)
        qlayers.append(qlayer)
    g = net.graph
    qgraph = Graph(tuple(replaced.get(n.name, n) for n in g.nodes), g.edges, g.metadata)
    qnet = _range_limits(QNetwork(lower(qgraph), tuple(qlayers), target.name), target)
    verify_quantized(qnet, target)
    return qnet


def _range_limits(qnet: QNetwork, target: Target) -> QNetwork:
    """Each layer's exact_ticks from the target's `exact_ticks` hook (where its registers can saturate or
    floor the potential while the Graph's cannot)."""
    limits = [target.hooks.exact_ticks(qnet.network, layer, q.params, target.spec)
              for layer, q in zip(qnet.network.layers, qnet.layers)]
    layers = tuple(dataclasses.replace(q, exact_ticks=t, limit=why) for q, (t, why) in zip(qnet.layers, limits))
    return dataclasses.replace(qnet, layers=layers)


def verify_quantized(qnet: QNetwork, target: Target) -> None:
    """Every integer the target will store is an integer and in range."""
    for layer, q in zip(qnet.network.layers, qnet.layers):
        for p in layer.projections:
            for op in p.chain:
                if isinstance(op, WEIGHTED):
                    w = stored_values(op)
                    if not np.array_equal(w, np.rint(w)):
                        raise VerifyError(f"{layer.name}: {op.name} has non-integer weights after quantisation")
                    wmax = target.hooks.weight_max(target.spec, w)
                    if np.max(np.abs(w), initial=0) > wmax:
                        raise VerifyError(f"{layer.name}: {op.name} weight {np.max(np.abs(w))} exceeds {wmax}")
        for key, arr in q.params.items():
            if arr.dtype.kind not in "iu":
                raise VerifyError(f"{layer.name}: parameter {key} is not an integer array")
        target.hooks.check_params(q.name, q.params, target.spec)
