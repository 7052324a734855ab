"""Chip-in-the-loop: a differentiable surrogate of a compiled program's integer forward pass, and a fine-tune through it.

The surrogate reads the compiler's quantised network (integer weights, and each layer's registers as the
target stores them) and steps it tick by tick as the emulator does: the Graph's one-tick edges, the same
input spikes (neurocomp.encoding), and the target's integer neuron update (targets/<family>/train.py:
saturation, threshold compare, reset). Its forward pass equals the emulator's spikes and read-out
potentials bit for bit (tests/test_train.py). For training, spikes are a straight-through Heaviside
(a ramp of width one threshold in the backward pass), and weights and biases are kept as floats that are
projected onto the target's integer sets in every forward pass (STE), so what is trained is always
something the chip stores. Scope: the compiled network of a feed-forward chain of IF layers (Affine or Conv2d,
optional Flatten) ending in a read-out, as `qat.to_graph` builds them, with what the target made of it: a layer
whose fan-in a core cannot take becomes spiking partial sums (each partial neuron on its channel group, read by
the layer with +-theta), and a wide read-out becomes parts whose potentials the host adds; the surrogate steps
those as the chip does, so a fine-tune trains against the mapping's own error.
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
from neurocomp.ir.graph import Affine, Conv2d, Flatten, Graph, Readout, Scale
from neurocomp.partition.delays import inserted
from neurocomp.quantize import QNetwork
from neurocomp.train.augment import jitter
from neurocomp.train.deploy import Deploy
from neurocomp.train.qcfs import replace_ste


def hard_fire(v: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    return (v >= threshold).to(v.dtype)


def ste_fire(v: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """Heaviside forward; backward the slope of a ramp from threshold / 2 below to threshold / 2 above it."""
    ramp = torch.clamp((v - threshold) / threshold.clamp_min(1) + 0.5, 0, 1)
    return ramp + (hard_fire(v, threshold) - ramp).detach()


# The fine-tune keeps the epoch whose chip misclasses the fewest held-out training samples; the QAT ANN was trained on
# those too, so the chip rarely misses them and the loss decided. Judging 4 affine jitters of each as well (digits,
# validation split, seeds 0-11, TrueNorth at T 16, chip - ANN worst / mean over seeds): native CNN -1.7 / -0.04 ->
# -0.6 / +0.02 pt, brought CNN -0.8 / -0.11 -> -0.6 / -0.10 pt (benchmarks/train_digits.py --validate).
JUDGE_JITTER = 4


@dataclass(frozen=True)
class _Proj:
    """One projection into a layer: its source (0: the input, k + 1: layer k) and what it does to the spikes."""
    source: int
    flatten: bool
    geometry: tuple | None      # (stride, padding, groups) of a Conv2d; None: Affine (or a scale)
    weight: int | None          # index into Surrogate.weights (trained); None: the fixed elementwise `scale`
    scale: torch.Tensor | None  # a partial-sum input's weight (+-theta per neuron), as compiled
    node: str                   # the Graph node that holds the weight


class Surrogate(nn.Module):
    def __init__(self, qnet: QNetwork, deploy: Deploy) -> None:
        super().__init__()
        self.deploy, self.graph = deploy, qnet.network.graph
        spec, hooks = deploy.target.spec, deploy.hooks
        net = qnet.network
        if len(net.inputs) != 1:
            raise UserError(f"the surrogate takes a network with one input, got {len(net.inputs)}")
        _require_aligned(net)
        index = {net.inputs[0].name: 0} | {layer.name: k + 1 for k, layer in enumerate(net.layers)}
        self.names = [layer.name for layer in net.layers]
        self.shapes = [tuple(layer.shape) for layer in net.layers]
        self.readout = [isinstance(layer.neuron, Readout) for layer in net.layers]
        if not any(self.readout):
            raise UserError("the network has no read-out layer; the surrogate fine-tunes a read-out's potential")
        self.projs: list[tuple[_Proj, ...]] = []
        self.reads: list[torch.Tensor] = []
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        self.weight_readout: list[bool] = []   # per weight: whether a read-out holds it (Deploy.readout_mode)
        self.regs = [hooks.surrogate_state(q.params, spec) for q in qnet.layers]
        self.scales = [q.scale for q in qnet.layers]
        for layer, q, readout in zip(net.layers, qnet.layers, self.readout):
            if any(index[p.source] > index[layer.name] for p in layer.projections):
                raise UserError(f"{layer.name}: a recurrent projection; the surrogate takes feed-forward layers")
            self.projs.append(tuple(self._projection(layer.name, p, index, readout) for p in layer.projections))
            self.biases.append(nn.Parameter(torch.tensor(hooks.surrogate_bias(q.params), dtype=torch.float64)))
        self.input_shape = tuple(net.inputs[0].shape)

    def _projection(self, layer: str, proj, index: dict[str, int], readout: bool) -> _Proj:
        ops = [op for op in proj.chain if not isinstance(op, Flatten)]
        flat = len(ops) < len(proj.chain)
        if len(ops) == 1 and isinstance(ops[0], Scale):
            return _Proj(index[proj.source], flat, None, None, torch.tensor(np.asarray(ops[0].scale, np.float64)),
                         ops[0].name)
        if len(ops) != 1 or not isinstance(ops[0], (Affine, Conv2d)):
            raise UserError(f"{layer}: the surrogate takes one Affine, Conv2d or partial-sum scale per projection "
                            f"(and a Flatten before it), got {[type(op).__name__ for op in proj.chain]}")
        op = ops[0]
        weight = np.asarray(op.weight)
        self.weights.append(nn.Parameter(torch.tensor(weight, dtype=torch.float64)))
        self.weight_readout.append(readout)
        self.reads.append(torch.from_numpy(_read_inputs(weight)))
        geometry = (op.stride, op.padding, op.groups) if isinstance(op, Conv2d) else None
        return _Proj(index[proj.source], flat, geometry, len(self.weights) - 1, None, op.name)

    def integers(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The weights and biases the chip would store, straight-through to the float parameters."""
        top = self.deploy.limit("bias")
        read = [w * r for w, r in zip(self.weights, self.reads)]
        ws = [replace_ste(w, torch.from_numpy(self.deploy.project(w.detach().reshape(len(w), -1).numpy(), ro))
                          .reshape(w.shape)) for w, ro in zip(read, self.weight_readout)]
        bs = [replace_ste(b, torch.clamp(torch.round(b.detach()), -top, top)) for b in self.biases]
        return ws, bs

    def encode(self, x: np.ndarray, ticks: int) -> torch.Tensor:
        """(batch, ticks, *input) input spikes exactly as the emulator makes them."""
        return torch.from_numpy(input_spikes(np.asarray(x), self.input_shape, ticks).astype(np.float64))

    def forward(self, spikes_in: torch.Tensor, train: bool = False) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Per spiking layer its spikes (batch, ticks, *shape), and the read-out's potential (batch, ticks, *shape;
        the sum of its parts' where a target split it) in float units, as emulator.run reports them. Every edge
        takes one tick, as on the chip."""
        fire = ste_fire if train else hard_fire
        hooks = self.deploy.hooks
        ws, bs = self.integers()
        batch, ticks = spikes_in.shape[:2]
        vs = [r["v_init"].expand(batch, -1).clone() for r in self.regs]
        prev = [torch.zeros_like(spikes_in[:, 0])] + [torch.zeros((batch,) + shape, dtype=torch.float64)
                                                      for shape in self.shapes]
        spikes: dict[str, list[torch.Tensor]] = {n: [] for n, ro in zip(self.names, self.readout) if not ro}
        potential = []
        for t in range(ticks):
            outs = [spikes_in[:, t]]
            parts = []
            for k, (projs, b, r) in enumerate(zip(self.projs, bs, self.regs)):
                syn = sum(_apply(p, prev[p.source], ws) for p in projs).reshape(batch, -1)
                vs[k], s = hooks.surrogate_step(vs[k], syn, b, r, fire)
                outs.append(s.reshape((batch,) + self.shapes[k]))
                if self.readout[k]:
                    parts.append(hooks.surrogate_potential(vs[k]).reshape((batch,) + self.shapes[k]) * self.scales[k])
                else:
                    spikes[self.names[k]].append(outs[-1])
            potential.append(sum(parts[1:], parts[0]))
            prev = outs
        return {n: torch.stack(v, 1) for n, v in spikes.items()}, torch.stack(potential, 1)

    def spiking_weights(self) -> list[nn.Parameter]:
        """The weights of the projections into spiking layers (not the read-out's, no biases: the registers here are
        per neuron, a conv's bias is per channel)."""
        into = [not ro for ro, projs in zip(self.readout, self.projs) for p in projs if p.weight is not None]
        return [w for w, keep in zip(self.weights, into) if keep]

    @torch.no_grad()
    def to_graph(self) -> Graph:
        """The compiled Graph with the fine-tuned integer weights and biases (v_init, thresholds and partial-sum
        scales as compiled)."""
        ws, bs = self.integers()
        nodes = self.graph.node_map
        changed = {}
        for name, projs, b, shape in zip(self.names, self.projs, bs, self.shapes):
            for p in projs:
                if p.weight is not None:
                    changed[p.node] = dataclasses.replace(nodes[p.node], weight=ws[p.weight].numpy(), bias=None)
            changed[name] = dataclasses.replace(nodes[name], bias=b.numpy().reshape(shape))
        return Graph(tuple(changed.get(n.name, n) for n in self.graph.nodes), self.graph.edges, self.graph.metadata)


def _require_aligned(net) -> None:
    """A layer reading both a compiler-inserted partial-sum layer and a direct source gets axon delays on the chip
    that the one-tick edges here do not have: refused, naming the layer."""
    staged = inserted(net)
    for layer in net.layers:
        kinds = {p.source in staged for p in layer.projections}
        if len(kinds) > 1:
            raise UserError(f"{layer.name}: reads partial sums and direct inputs, which the chip aligns with axon "
                            "delays; the surrogate models one tick per edge only")


def _read_inputs(weight: np.ndarray) -> np.ndarray:
    """1 where a projection reads an input at all (a read-out part or a partial sum reads its channel group
    only), 0 elsewhere: a fine-tune never adds inputs, so a part stays within the axons its core has."""
    if weight.ndim == 2:
        return np.any(weight != 0, axis=0, keepdims=True).astype(np.float64)
    return np.any(weight != 0, axis=(0, 2, 3), keepdims=True).astype(np.float64)


def _apply(p: _Proj, x: torch.Tensor, ws: list[torch.Tensor]) -> torch.Tensor:
    """The integer synaptic sum (exact in float64: binary spikes times integer weights)."""
    if p.weight is None:
        return x * p.scale
    w = ws[p.weight]
    if p.flatten:
        x = x.flatten(1)
    if p.geometry is None:
        return F.linear(x.flatten(1), w)
    stride, padding, groups = p.geometry
    return F.conv2d(x, w, None, stride=stride, padding=padding, groups=groups)


Window = tuple[int, int]   # ticks [a, b) of a read-out whose potential a host reads as a mean rate


def chip_logits(surrogate: Surrogate, x: np.ndarray, ticks: int, unit: float, timesteps: int,
                train: bool = False, window: Window | None = None) -> torch.Tensor:
    """The read-out in the trained ANN's units: the last potential * unit / T, or with `window` (a, b) the mean
    rise per tick over ticks a .. b-1 * unit (a tracker reading a settled window of its score)."""
    _, pot = surrogate(surrogate.encode(x, ticks), train)
    if window is None:
        return pot[:, -1].reshape(len(x), -1) * unit / timesteps
    a, b = window
    rise = pot[:, b - 1] - (pot[:, a - 1] if a > 0 else 0.0)
    return rise.reshape(len(x), -1) * unit / (b - a)


def finetune(surrogate: Surrogate, x: np.ndarray, teacher: np.ndarray, ticks: int, unit: float, timesteps: int,
             epochs: int = 3, lr: float = 0.1, batch_size: int = 64, seed: int = 0,
             labels: np.ndarray | None = None, holdout: float = 0.2, window: Window | None = None,
             classes: bool = True, spiking_weights_only: bool = False, judge_jitter: int = 0) -> Surrogate:
    """A few epochs of Adam on the surrogate's weights and biases (integer units) so that the chip's logits
    (chip_logits, `window`) match the trained ANN's (`teacher`, (samples, outputs)) in mean squared error, plus
    the cross-entropy with `labels` when given. A seeded `holdout` fraction of x is not trained on: there, before
    and after each epoch, the chip's class is compared with the label (or, without labels, the ANN's class; with
    `classes` False, as for a feature map, only the loss counts), then the loss breaks ties, and the best
    parameters are kept, so a fine-tune that only fits the training samples is not taken (holdout 0: judged on
    all of x). `spiking_weights_only`: only the spiking layers' weights train; the read-out and every bias stay as
    compiled, so a conv stays a conv (one bias per channel) and its Graph keeps its shape. `judge_jitter` (images with
    labels): that many seeded affine jitters of each held-out image are judged too, against its label, since the
    ANN was trained on every sample of x and the chip rarely misclasses them as they are."""
    xs, target = np.asarray(x), torch.from_numpy(np.asarray(teacher, dtype=np.float64))
    ys = None if labels is None else torch.from_numpy(np.asarray(labels)).long()
    perm = np.random.default_rng(seed).permutation(len(xs))
    n_val = int(len(xs) * holdout)
    val, fit_idx = (perm[:n_val], perm[n_val:]) if n_val else (perm, perm)
    if judge_jitter and ys is None:
        raise ValueError("judge_jitter scores jittered images against their labels: pass labels")
    moved = _jittered(xs[val], ys[val], judge_jitter, seed) if judge_jitter else None

    def judge() -> tuple[float, float]:
        wrong, loss = _score(surrogate, xs[val], target[val], None if ys is None else ys[val], ticks, unit, timesteps,
                             window, classes)
        if moved is None:
            return wrong, loss
        with torch.no_grad():
            missed = (chip_logits(surrogate, moved[0], ticks, unit, timesteps, window=window).argmax(-1) != moved[1])
        return (wrong * len(val) + float(missed.double().sum())) / (len(val) + len(moved[1])), loss

    opt = torch.optim.Adam(surrogate.spiking_weights() if spiking_weights_only else surrogate.parameters(), lr=lr)
    best = (judge(), _params(surrogate))
    for epoch in range(epochs):
        order = fit_idx[torch.randperm(len(fit_idx), generator=torch.Generator().manual_seed(seed * 100003 + epoch)).numpy()]
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            loss = _loss(chip_logits(surrogate, xs[idx], ticks, unit, timesteps, True, window), target[idx],
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


def _jittered(x: np.ndarray, y: torch.Tensor, copies: int, seed: int) -> tuple[np.ndarray, torch.Tensor]:
    """`copies` seeded affine jitters (train.augment) of each image of x, and their labels."""
    gen = torch.Generator().manual_seed(seed * 100003 + 99991)
    xt = torch.from_numpy(np.asarray(x, dtype=np.float64)).repeat(copies, *([1] * (x.ndim - 1)))
    return jitter(xt, gen).numpy(), y.repeat(copies)


def _loss(logits: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    loss = F.mse_loss(logits, teacher)
    return loss if labels is None else loss + F.cross_entropy(logits, labels)


@torch.no_grad()
def _score(surrogate: Surrogate, x: np.ndarray, teacher: torch.Tensor, labels: torch.Tensor | None, ticks: int,
           unit: float, timesteps: int, window: Window | None, classes: bool) -> tuple[float, float]:
    """(misclassified fraction against labels, or against the teacher's classes, 0 without classes; loss):
    lower is better."""
    logits = chip_logits(surrogate, x, ticks, unit, timesteps, window=window)
    truth = teacher.argmax(-1) if labels is None else labels
    wrong = float((logits.argmax(-1) != truth).double().mean()) if classes else 0.0
    return wrong, float(_loss(logits, teacher, labels))


def _params(surrogate: Surrogate) -> list[torch.Tensor]:
    return [p.detach().clone() for p in surrogate.parameters()]
