"""Two-status coding for a spiking output layer, built from plain IF neurons.

Status 1 (ticks 0 .. tau0-1): the layer integrates but cannot fire. Status 2 (tau0 ..):
it fires with its own reset. Cores have no "enable firing" register, so the switch is
wired: the layer starts at v_init - B, with B larger than any charge it can gather in
status 1, and receives exactly one kick of +B at tick tau0. The kick is the difference
of two gate neurons, each a bias-driven IF that fires every tick once started:

    on : v_init -(tau0 - 1), fires every tick from tau0 - 1 on, weight +B / pairs
    off: v_init -tau0,       fires every tick from tau0 on,     weight -B / pairs

(`pairs` such pairs, so B can exceed the largest weight a core stores.)
With the one-tick edge latency, +B arrives at tick tau0 and from tau0 + 1 on the two
cancel. The gates read the Input through an all-zero Affine only so that they have a
shape; it makes no synapses.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from neurocomp.errors import GraphError
from neurocomp.ir.graph import IF, Affine, Flatten, Graph


def two_status(g: Graph, layer: str, tau0: int, kick: float, pairs: int = 1) -> Graph:
    """`layer` (an IF node) integrates only during ticks 0..tau0-1, then fires; `kick` is B, delivered
    by `pairs` gate pairs of B / pairs each, so a large B needs no weight beyond a target's range."""
    node = g.node(layer)
    if not isinstance(node, IF):
        raise GraphError(f"{layer}: two-status coding needs an IF layer, got {type(node).__name__}")
    if len(g.shape(layer)) != 1:
        raise GraphError(f"{layer}: two-status coding needs a flat layer (a Flatten before it), got shape {g.shape(layer)}")
    if tau0 < 1:
        return g
    if kick <= 0 or pairs < 1:
        raise GraphError(f"{layer}: the two-status kick must be > 0 and pairs >= 1, got {kick}, {pairs}")
    source = g.inputs[0].name
    n_in, n_out = int(np.prod(g.shape(source))), int(np.prod(g.shape(layer)))
    gate, flat, wire, to_layer = f"{layer}.gate", f"{layer}.gate_flat", f"{layer}.gate_in", f"{layer}.gate_out"
    nodes = tuple(dataclasses.replace(n, v_init=np.asarray(n.v_init) - kick) if n.name == layer else n
                  for n in g.nodes)
    nodes += (Flatten(flat), Affine(wire, np.zeros((2 * pairs, n_in))),
              IF(gate, threshold=1.0, bias=1.0, v_init=gate_init(tau0, pairs)),
              _kick(to_layer, n_out, kick / pairs, pairs))
    edges = g.edges + ((source, flat), (flat, wire), (wire, gate), (gate, to_layer), (to_layer, layer))
    return Graph(nodes, edges, g.metadata)


def gate_init(tau0: int, pairs: int) -> np.ndarray:
    """Initial potentials of the on gates (first `pairs`) and the off gates."""
    return np.repeat([1.0 - tau0, -float(tau0)], pairs)


def _kick(name: str, n_out: int, kick: float, pairs: int) -> Affine:
    return Affine(name, np.repeat(np.repeat([[kick, -kick]], pairs, axis=1), n_out, axis=0))

