"""Chip-in-the-loop: a differentiable surrogate of a compiled program's integer forward pass, and a fine-tune through it.

The surrogate reads the compiler's quantised network (integer weights, and each layer's registers as the
target stores them) and steps it tick by tick as the emulator does: the Graph's one-tick edges, the same
input spikes (neurocomp.encoding), and the target's integer neuron update (targets/<family>/train.py:
saturation, threshold compare, reset). Its forward pass equals the emulator's spikes and read-out
potentials bit for bit (tests/test_train.py). For training, spikes are a straight-through Heaviside
(a ramp of width one threshold in the backward pass), and weights and biases are kept as floats that are
projected onto the target's integer sets in every forward pass (STE), so what is trained is always
something the chip stores. Scope: feed-forward chains of IF layers (Affine or Conv2d, optional Flatten)
ending in a read-out, as `qat.to_graph` builds them, or in the parts a target split a wide read-out into (each
part integrates its own inputs on its own core; the host adds their potentials, so the surrogate does too).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neurocomp.encoding import input_spikes
from neurocomp.errors import UserError
from neurocomp.ir.graph import Affine, Conv2d, Flatten, Graph, Readout
from neurocomp.quantize import QNetwork
from neurocomp.train.deploy import Deploy
from neurocomp.train.qcfs import replace_ste


def hard_fire(v: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    return (v >= threshold).to(v.dtype)


def ste_fire(v: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """Heaviside forward; backward the slope of a ramp from threshold / 2 below to threshold / 2 above it."""
    ramp = torch.clamp((v - threshold) / threshold.clamp_min(1) + 0.5, 0, 1)
    return ramp + (hard_fire(v, threshold) - ramp).detach()


@dataclass(frozen=True)
class _Op:
    flatten: bool
    geometry: tuple | None      # (stride, padding, groups) of a Conv2d; None: Affine
    shape: tuple[int, ...]      # the layer's neuron shape


class Surrogate(nn.Module):
    def __init__(self, qnet: QNetwork, deploy: Deploy) -> None:
        super().__init__()
        self.deploy, self.graph = deploy, qnet.network.graph
        spec, hooks = deploy.target.spec, deploy.hooks
        self.names, self.ops, self.regs, self.scales, self.reads = [], [], [], [], []
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        net = qnet.network
        if len(net.inputs) != 1:
            raise UserError(f"the surrogate takes a network with one input, got {len(net.inputs)}")
        prev, self.first_readout = net.inputs[0].name, None
        for k, (layer, q) in enumerate(zip(net.layers, qnet.layers)):
            if len(layer.projections) != 1 or layer.projections[0].source != prev:
                raise UserError(f"{layer.name}: the surrogate takes a feed-forward chain of layers, one input each")
            if isinstance(layer.neuron, Readout):   # a read-out, or the parts of one (the host adds their potentials)
                self.first_readout = k if self.first_readout is None else self.first_readout
            elif self.first_readout is not None:
                raise UserError(f"{layer.name}: a spiking layer after the read-out; the surrogate ends at the read-out")
            self.names.append(layer.name)
            self.ops.append(_op(layer))
            weight = np.asarray(_weighted(layer).weight)
            self.weights.append(nn.Parameter(torch.tensor(weight, dtype=torch.float64)))
            self.reads.append(torch.from_numpy(_read_inputs(weight)))
            self.biases.append(nn.Parameter(torch.tensor(hooks.surrogate_bias(q.params), dtype=torch.float64)))
            self.regs.append(hooks.surrogate_state(q.params, spec))
            self.scales.append(q.scale)
            prev = prev if self.first_readout is not None else layer.name
        if self.first_readout is None:
            raise UserError("the network has no read-out layer; the surrogate fine-tunes a read-out's potential")
        self.input_shape = tuple(net.inputs[0].shape)

    def integers(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The weights and biases the chip would store, straight-through to the float parameters."""
        top = self.deploy.limit("bias")
        read = [w * r for w, r in zip(self.weights, self.reads)]
        ws = [replace_ste(w, torch.from_numpy(self.deploy.project(w.detach().reshape(len(w), -1).numpy())).reshape(w.shape))
              for w in read]
        bs = [replace_ste(b, torch.clamp(torch.round(b.detach()), -top, top)) for b in self.biases]
        return ws, bs

    def encode(self, x: np.ndarray, ticks: int) -> torch.Tensor:
        """(batch, ticks, *input) input spikes exactly as the emulator makes them."""
        return torch.from_numpy(input_spikes(np.asarray(x), self.input_shape, ticks).astype(np.float64))

    def forward(self, spikes_in: torch.Tensor, train: bool = False) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Per spiking layer its spikes (batch, ticks, *shape), and the read-out's potential (batch, ticks, *shape)
        in float units, as emulator.run reports them."""
        fire = ste_fire if train else hard_fire
        hooks = self.deploy.hooks
        ws, bs = self.integers()
        batch, ticks = spikes_in.shape[:2]
        vs = [r["v_init"].expand(batch, -1).clone() for r in self.regs]
        prev_out = [torch.zeros_like(spikes_in[:, 0])] + [torch.zeros((batch,) + op.shape, dtype=torch.float64)
                                                           for op in self.ops]
        first = self.first_readout
        spikes = {n: [] for n in self.names[:first]}
        potential = []
        for t in range(ticks):
            outs = [spikes_in[:, t]]
            parts = []
            for k, (op, w, b, r) in enumerate(zip(self.ops, ws, bs, self.regs)):
                syn = _apply(op, prev_out[min(k, first)], w).reshape(batch, -1)
                vs[k], s = hooks.surrogate_step(vs[k], syn, b, r, fire)
                if k >= first:
                    parts.append(hooks.surrogate_potential(vs[k]).reshape((batch,) + op.shape) * self.scales[k])
                else:
                    outs.append(s.reshape((batch,) + op.shape))
                    spikes[self.names[k]].append(outs[-1])
            potential.append(sum(parts[1:], parts[0]))
            prev_out = outs
        return {n: torch.stack(v, 1) for n, v in spikes.items()}, torch.stack(potential, 1)

    @torch.no_grad()
    def to_graph(self) -> Graph:
        """The quantised Graph with the fine-tuned integer weights and biases (v_init, thresholds as compiled)."""
        ws, bs = self.integers()
        nodes = self.graph.node_map
        changed = {}
        for name, w, b, op in zip(self.names, ws, bs, self.ops):
            layer_op = _weighted_node(self.graph, name)
            changed[layer_op.name] = dataclasses.replace(layer_op, weight=w.numpy(), bias=None)
            changed[name] = dataclasses.replace(nodes[name], bias=b.numpy().reshape(op.shape))
        return Graph(tuple(changed.get(n.name, n) for n in self.graph.nodes), self.graph.edges, self.graph.metadata)


def _weighted(layer):
    ops = [op for op in layer.projections[0].chain if isinstance(op, (Affine, Conv2d))]
    if len(ops) != 1 or any(not isinstance(op, (Affine, Conv2d, Flatten)) for op in layer.projections[0].chain):
        raise UserError(f"{layer.name}: the surrogate takes one Affine or Conv2d per layer (and a Flatten before it)")
    return ops[0]


def _read_inputs(weight: np.ndarray) -> np.ndarray:
    """1 where a layer reads an input at all (a read-out part reads its channel group only), 0 elsewhere: a
    fine-tune never adds inputs, so a part stays within the axons its core has. Broadcasts over the weight."""
    if weight.ndim == 2:
        return np.any(weight != 0, axis=0, keepdims=True).astype(np.float64)
    return np.any(weight != 0, axis=(0, 2, 3), keepdims=True).astype(np.float64)


def _weighted_node(graph: Graph, layer: str):
    name = graph.predecessors(layer)[0]
    node = graph.node(name)
    return node if isinstance(node, (Affine, Conv2d)) else _weighted_node(graph, name)


def _op(layer) -> _Op:
    op = _weighted(layer)
    flat = any(isinstance(o, Flatten) for o in layer.projections[0].chain)
    geometry = (op.stride, op.padding, op.groups) if isinstance(op, Conv2d) else None
    return _Op(flat, geometry, tuple(layer.shape))


def _apply(op: _Op, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The integer synaptic sum (exact in float64: binary spikes times integer weights)."""
    if op.flatten:
        x = x.flatten(1)
    if op.geometry is None:
        return F.linear(x.flatten(1), w)
    stride, padding, groups = op.geometry
    return F.conv2d(x, w, None, stride=stride, padding=padding, groups=groups)


def chip_logits(surrogate: Surrogate, x: np.ndarray, ticks: int, unit: float, timesteps: int,
                train: bool = False) -> torch.Tensor:
    """The read-out's last potential as logits in the trained ANN's units: potential * unit / T."""
    _, pot = surrogate(surrogate.encode(x, ticks), train)
    return pot[:, -1].reshape(len(x), -1) * unit / timesteps


def finetune(surrogate: Surrogate, x: np.ndarray, teacher: np.ndarray, ticks: int, unit: float, timesteps: int,
             epochs: int = 3, lr: float = 0.1, batch_size: int = 64, seed: int = 0,
             labels: np.ndarray | None = None, holdout: float = 0.2) -> Surrogate:
    """A few epochs of Adam on the surrogate's weights and biases (integer units) so that the chip's logits
    match the trained ANN's (`teacher`, (samples, classes)) in mean squared error, plus the cross-entropy
    with `labels` when given. A seeded `holdout` fraction of x is not trained on: there, before and after each
    epoch, the chip's class is compared with the label (or, without labels, the ANN's class), then the loss
    breaks ties, and the best parameters are kept, so a fine-tune that only fits the training samples is not
    taken (holdout 0: judged on all of x)."""
    xs, target = np.asarray(x), torch.from_numpy(np.asarray(teacher, dtype=np.float64))
    ys = None if labels is None else torch.from_numpy(np.asarray(labels)).long()
    perm = np.random.default_rng(seed).permutation(len(xs))
    n_val = int(len(xs) * holdout)
    val, fit_idx = (perm[:n_val], perm[n_val:]) if n_val else (perm, perm)
    judge = lambda: _score(surrogate, xs[val], target[val], None if ys is None else ys[val],  # noqa: E731
                           ticks, unit, timesteps)
    opt = torch.optim.Adam(surrogate.parameters(), lr=lr)
    best = (judge(), _params(surrogate))
    for epoch in range(epochs):
        order = fit_idx[torch.randperm(len(fit_idx), generator=torch.Generator().manual_seed(seed * 100003 + epoch)).numpy()]
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            loss = _loss(chip_logits(surrogate, xs[idx], ticks, unit, timesteps, train=True), target[idx],
                         None if ys is None else ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        err = judge()
        if err < best[0]:
            best = (err, _params(surrogate))
    with torch.no_grad():
        for p, keep in zip(surrogate.parameters(), best[1]):
            p.copy_(keep)
    return surrogate


def _loss(logits: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    loss = F.mse_loss(logits, teacher)
    return loss if labels is None else loss + F.cross_entropy(logits, labels)


@torch.no_grad()
def _score(surrogate: Surrogate, x: np.ndarray, teacher: torch.Tensor, labels: torch.Tensor | None, ticks: int,
           unit: float, timesteps: int) -> tuple[float, float]:
    """(misclassified fraction against labels, or against the teacher's classes; loss): lower is better."""
    logits = chip_logits(surrogate, x, ticks, unit, timesteps)
    truth = teacher.argmax(-1) if labels is None else labels
    return float((logits.argmax(-1) != truth).double().mean()), float(_loss(logits, teacher, labels))


def _params(surrogate: Surrogate) -> list[torch.Tensor]:
    return [p.detach().clone() for p in surrogate.parameters()]
