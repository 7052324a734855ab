"""Lower a Graph into neuron layers, each fed by chains of structured linear ops.

A layer is what maps onto cores: one neuron population plus, per source (an Input
or another layer), the chain of linear ops between them. Chains stay structured;
`Projection.matrix(rows)` materialises only the rows a core asks for.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from neurocomp.distinct import distinct
from neurocomp.errors import GraphError
from neurocomp.ir import ops, sums
from neurocomp.ir.graph import LINEAR_OPS, NEURONS, Graph, Input, Neuron, Node, Output, Readout

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True, eq=False)
class Projection:
    source: str
    chain: tuple[Node, ...]
    shapes: tuple[tuple[int, ...], ...]  # source shape, then each op's output shape

    @property
    def n_in(self) -> int:
        return int(np.prod(self.shapes[0]))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.shapes[-1]))

    def matrix(self, rows: np.ndarray) -> sp.csr_matrix:
        """Rows of the composed (out, in) matrix; only the needed intermediate rows are built. Its data are those of
        ops.rows for a one-op chain (int32 for a conv of small integer weights), float64 for a composed one."""
        rows = np.asarray(rows, dtype=np.int64)
        if not self.chain:
            return sp.csr_matrix((np.ones(len(rows)), (np.arange(len(rows)), rows)), shape=(len(rows), self.n_in))
        mat: sp.csr_matrix | None = None
        need = rows
        for k in range(len(self.chain) - 1, -1, -1):
            part = sp.csr_matrix(ops.rows(self.chain[k], self.shapes[k], self.shapes[k + 1], need))
            if k > 0:   # keep only the columns used: the rows the next op must build
                need = distinct(part.indices)
                part = sp.csr_matrix((part.data, np.searchsorted(need, part.indices), part.indptr),
                                     shape=(part.shape[0], need.size))
            mat = part if mat is None else sp.csr_matrix(mat.astype(np.float64) @ part)   # no integer overflow
        full = sp.csr_matrix(mat)
        full.sum_duplicates()
        full.eliminate_zeros()
        return full

    def bias(self) -> np.ndarray:
        """Constant per-tick input that the chain's biases add to each neuron."""
        total = np.zeros(self.n_in)
        for k, node in enumerate(self.chain):
            if np.any(total):
                total = ops.forward(node, _as_tensor(total, self.shapes[k])).numpy().ravel()
            else:
                total = ops.bias(node, self.shapes[k + 1])
        return total


def _as_tensor(v: np.ndarray, shape: tuple[int, ...]) -> torch.Tensor:
    import torch   # only for folding a bias through a chain: loading a program never needs it

    return torch.from_numpy(np.asarray(v, dtype=np.float64).reshape((1,) + shape))


@dataclass(frozen=True, eq=False)
class Layer:
    name: str
    neuron: Neuron
    shape: tuple[int, ...]
    projections: tuple[Projection, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def kind(self) -> str:
        """"readout" for non-spiking accumulators, whose potential is the result; else "spiking"."""
        return "readout" if isinstance(self.neuron, Readout) else "spiking"

    def param(self, name: str) -> np.ndarray:
        """A neuron parameter broadcast to the layer and flattened."""
        return np.broadcast_to(getattr(self.neuron, name), self.shape).ravel().astype(np.float64)

    def leaky(self) -> bool:
        """Does any neuron decay its potential or keep a current (read off the fields as stored, not per neuron)?"""
        return hasattr(self.neuron, "decay") and bool(np.any(np.asarray(self.neuron.decay) != 1)
                                                      or np.any(np.asarray(self.neuron.decay_u) != 0))

    def decays(self) -> tuple[np.ndarray, np.ndarray]:
        """(decay, decay_u) per neuron; 1 and 0 (no leak, no current memory) where the type has none."""
        leaky = hasattr(self.neuron, "decay")
        return (self.param("decay") if leaky else np.ones(self.size),
                self.param("decay_u") if leaky else np.zeros(self.size))

    def bias(self) -> np.ndarray:
        """Constant input into v per tick. A chain's bias enters the current, so with decay_u > 0 it counts
        at its steady state b / (1 - decay_u): targets add biases to v only, which is exact once the
        current has settled (see `bias_exact`)."""
        total = self.param("bias").copy()
        gain = 1.0 / (1.0 - self.decays()[1])
        for p in self.projections:
            total += p.bias() * gain
        return total

    def held(self, name: str) -> np.ndarray:
        """A neuron field as the Graph holds it: one value (0-d) where it holds one for the layer, else per neuron
        (flat, as `param`). A fan-in split's hundreds of parts hold one threshold, bias and initial potential each,
        and broadcasting them to every neuron (2.6 x 10^5 per part of the dense paper-size SiamSNN's if5) cost its
        quantisation seconds."""
        value = np.asarray(getattr(self.neuron, name), dtype=np.float64)
        return value if value.ndim == 0 else self.param(name)

    def held_bias(self) -> np.ndarray:
        """`bias` as one value where the neurons' bias is one and no chain op has a bias of its own: the chains
        then add nothing, whatever the current's decay."""
        if any(getattr(op, "bias", None) is not None for p in self.projections for op in p.chain):
            return self.bias()
        return self.held("bias")

    def bias_exact(self) -> bool:
        """Whether `bias` is exact from tick 0: no chain bias flows through a decaying current."""
        return not (np.any(self.decays()[1]) and any(np.any(p.bias()) for p in self.projections))


@dataclass(frozen=True, eq=False)
class Network:
    graph: Graph
    inputs: tuple[Input, ...]
    layers: tuple[Layer, ...]
    outputs: tuple[str, ...]  # layer names feeding Output nodes (a read-out summed on the host by its name)

    def layer(self, name: str) -> Layer:
        for lay in self.layers:
            if lay.name == name:
                return lay
        raise GraphError(f"no layer named {name!r}")

    def source_shape(self, name: str) -> tuple[int, ...]:
        return self.graph.shape(name)

    @functools.cached_property
    def read(self) -> frozenset[str]:
        """The names some layer reads (its projections' sources): a per-layer question over hundreds of layers."""
        return frozenset(p.source for lay in self.layers for p in lay.projections)

    def feedback(self) -> list[tuple[str, str]]:
        """(source, layer) projections whose source layer is not earlier in layer order: the recurrent ones."""
        seen: set[str] = {i.name for i in self.inputs}
        out = []
        for lay in self.layers:
            out += [(p.source, lay.name) for p in lay.projections if p.source not in seen]
            seen.add(lay.name)
        return out


def _walk_back(g: Graph, start: str) -> tuple[str, tuple[Node, ...]]:
    nodes = g.node_map
    chain: list[Node] = []
    cur = start
    while isinstance(nodes[cur], LINEAR_OPS):
        chain.append(nodes[cur])
        preds = g.predecessors(cur)
        if len(preds) != 1:
            raise GraphError(f"{cur}: a linear op needs exactly one input, got {len(preds)}")
        cur = preds[0]
    if not isinstance(nodes[cur], (Input,) + NEURONS):
        raise GraphError(f"{cur}: {type(nodes[cur]).__name__} cannot feed a neuron layer")
    return cur, tuple(reversed(chain))


def _projection(g: Graph, pred: str) -> Projection:
    source, chain = _walk_back(g, pred)
    shapes = (g.shape(source),) + tuple(g.shape(n.name) for n in chain)
    return Projection(source, chain, shapes)


def lower(g: Graph) -> Network:
    nodes = g.node_map
    layers: list[Layer] = []
    outputs: list[str] = []
    for name in g.topological():
        node = nodes[name]
        if isinstance(node, NEURONS):
            projs = tuple(_projection(g, p) for p in g.predecessors(name))
            layers.append(Layer(name, node, g.shape(name), projs))
        elif isinstance(node, Output):
            for pred in g.predecessors(name):
                if isinstance(nodes[pred], NEURONS):
                    outputs.append(pred)
                elif isinstance(nodes[pred], LINEAR_OPS):
                    # A linear op straight into Output is read out as a non-spiking accumulator.
                    readout = Readout(pred + ".readout")
                    layers.append(Layer(readout.name, readout, g.shape(pred), (_projection(g, pred),)))
                    outputs.append(readout.name)
                else:
                    raise GraphError(f"{name}: Output fed by {type(nodes[pred]).__name__} {pred!r}")
    if not layers:
        raise GraphError("graph has no neuron layer")
    if not outputs:
        outputs = [layers[-1].name]
    return Network(g, tuple(g.inputs), tuple(layers), tuple(sums.named(outputs, sums.decode(g.metadata))))
