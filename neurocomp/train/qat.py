"""Quantisation-aware training for a target: QCFS activations tied to T, weights on the target's sets.

The network is read like `neurocomp convert` reads it (torch.export -> op chain, BatchNorm folded into
the Conv2d/Linear before it, one weighted op per layer, average pools before it composed into it as the chip
folds them: train/pool.py), so the weight constraint always applies to the folded weights the cores hold. Each layer l works in its own integer unit Delta_l = lambda_l / theta_l: the target
stores Q_l = project(W_l lambda_(l-1) / Delta_l) (STE), the bias B_l = round(b_l / Delta_l), and the IF
neuron the threshold theta_l (an even integer, chosen so the largest |Q| sits at the top of the weight
range) and v_init theta_l / 2. The ANN computes, with counts c in [0, T] from the layer before,
    z_l = Delta_l (Q_l c / T + B_l),  h_l = qcfs(z_l, lambda_l, T)
and the exported Graph (`to_graph`) holds exactly Q_l, B_l, theta_l as integers, so the compiler's
quantiser keeps them (checked by `exactness`): the chip computes the trained integers, and the only
gap left is spike timing (uneven arrival; Loihi's reset to zero), which `surrogate.finetune` trains on.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neurocomp.backends import reference
from neurocomp.compiler import TRAINING_KEY
from neurocomp.convert.ann import Flat, Pool, Segment, Weighted, segments
from neurocomp.convert.trace import ann_ops
from neurocomp.encoding import rate_encode
from neurocomp.errors import UserError
from neurocomp.ir.graph import IF, Affine, Conv2d, Flatten, Graph, Input, Node, Output, Readout
from neurocomp.ir.layers import lower
from neurocomp.train.augment import jitter, require_images
from neurocomp.train.deploy import Deploy
from neurocomp.train.pool import Window, compose_conv, compose_linear, composed_stride, windows
from neurocomp.train.qcfs import qcfs, replace_ste, round_ste

METADATA_KEY = TRAINING_KEY   # the compiler reads the weight mode from it
CHIP_FORWARDS = ("rate", "spikes")


@dataclass(frozen=True)
class TrainOptions:
    timesteps: int = 16          # T = L, the QCFS levels
    epochs: int = 20             # QAT epochs
    float_epochs: int = 0        # plain ReLU epochs first (0: the model comes trained)
    lr: float = 2e-3
    batch_size: int = 64
    percentile: float = 99.9     # initial lambda: this percentile of each layer's positive float activations
    seed: int = 0
    # The last QAT epochs train through the target's own model of its neuron (Deploy.chip_activation; Loihi:
    # reset to zero, TrueNorth: QCFS itself). 3 of 10: chosen on training digits only (fit on 1,077, chip scored
    # on the other 360; Loihi, 3 seeds): +1.7 / +0.8 pt (CNN, T 16 / 32) and +1.4 pt (avg-pool CNN, T 16) over 0.
    chip_epochs: int = 3
    # Those epochs' forward pass: "rate" (the target's activation model of a constant current) or "spikes" (the
    # integer spike trains of the exported program, stepped as the chip steps them, with the rate model's
    # gradient: tandem learning, Wu et al. 2021), which trains away the spikes' uneven timing too.
    chip_forward: str = "rate"
    jitter: float = 0.0          # the fraction of each batch's images given a random affine jitter (train/augment.py)

    def __post_init__(self) -> None:
        if min(self.timesteps, self.batch_size) < 1 or min(self.epochs, self.float_epochs, self.chip_epochs) < 0:
            raise UserError("training option: timesteps and batch_size must be >= 1, epochs >= 0")
        if not (self.lr > 0 and math.isfinite(self.lr)) or not 0 < self.percentile <= 100:
            raise UserError("training option: lr must be a positive number, percentile in (0, 100]")
        if self.chip_forward not in CHIP_FORWARDS:
            raise UserError(f"training option: chip_forward must be one of {CHIP_FORWARDS}, not {self.chip_forward!r}")
        if not 0 <= self.jitter <= 1:
            raise UserError(f"training option: jitter is a fraction of each batch, in [0, 1], not {self.jitter}")


class QATLayer(nn.Module):
    """One weighted op (BN folded) with its bias, the average pools and flatten before it, and lambda when it
    spikes. `composed()` is the op the chip holds: the pools folded in (train/pool.py), over the unpooled map."""

    def __init__(self, op: Weighted, flatten: bool, spiking: bool, pools: tuple[Window, ...],
                 in_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.name, self.flatten, self.spiking, self.pools, self.in_shape = op.name, flatten, spiking, pools, in_shape
        self.geometry = (composed_stride(op.stride, pools), op.padding, op.groups) if op.is_conv else None
        self.weight = nn.Parameter(torch.tensor(op.weight, dtype=torch.float64))
        self.bias = nn.Parameter(torch.tensor(op.bias, dtype=torch.float64))
        self.lam = nn.Parameter(torch.ones((), dtype=torch.float64)) if spiking else None

    def composed(self) -> torch.Tensor:
        """The weights over the layer's unpooled input: W itself without pools, else W spread by each pool / area."""
        if not self.pools:
            return self.weight
        if self.geometry is None:
            return compose_linear(self.weight, self.in_shape, self.pools)
        return compose_conv(self.weight, self.pools)

    @torch.no_grad()
    def out_shape(self) -> tuple[int, ...]:
        return tuple(self.apply(torch.zeros((1,) + self.in_shape, dtype=torch.float64), self.composed(), self.bias).shape[1:])

    def apply(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.flatten:
            x = x.flatten(1)
        if self.geometry is None:
            return F.linear(x, w, b)
        stride, padding, groups = self.geometry
        return F.conv2d(x, w, b, stride=stride, padding=padding, groups=groups)

    def integers(self, lam_prev: torch.Tensor, d: Deploy) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(Q, B, theta, Delta): integer weights on the target's set, integer bias, threshold (read-out: 1)
        and the float value of one unit, all straight-through so W, b and lambda get gradients."""
        w = self.composed()
        wmax = d.weight_max(w.detach().numpy())
        peak = (w.detach().abs().max() * lam_prev.detach()).clamp_min(1e-12)
        if self.spiking:
            half = torch.clamp(round_ste(self.lam * wmax / (2 * peak)), 1, d.limit("threshold") // 2)
            theta = 2 * half
            delta = self.lam / theta
        else:
            theta, delta = torch.ones((), dtype=w.dtype), peak / wmax
        x = w * lam_prev / delta
        q = replace_ste(x, torch.from_numpy(d.project(x.detach().reshape(len(x), -1).numpy(), not self.spiking)
                                            .reshape(x.shape)))
        top = d.limit("bias")
        b = self.bias / delta
        return q, replace_ste(b, torch.clamp(torch.round(b.detach()), -top, top)), theta, delta


class QATNet(nn.Module):
    """The trainable network; `forward(x)` is the quantised ANN (QCFS, target weights), `float_forward` the ReLU one."""

    def __init__(self, segs: tuple[Segment, ...], input_shape: tuple[int, ...], deploy: Deploy, timesteps: int) -> None:
        super().__init__()
        self.input_shape, self.deploy, self.levels = tuple(input_shape), deploy, int(timesteps)
        layers, shape = [], self.input_shape
        for seg in segs:
            layers.append(_layer(seg, shape))
            shape = layers[-1].out_shape()
        self.layers = nn.ModuleList(layers)

    def float_forward(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        """Each layer's output without quantisation: ReLU(z), the read-out's z."""
        outs, h = [], x.to(torch.float64)
        for layer in self.layers[:upto]:
            h = layer.apply(h, layer.composed(), layer.bias)
            h = torch.relu(h) if layer.spiking else h
            outs.append(h)
        return outs

    def forward(self, x: torch.Tensor, chip: bool = False) -> torch.Tensor:
        """Logits of the quantised ANN: the input as the rate coder's counts floor(x T) / T, then per layer
        z = Delta (Q c / T + B) and QCFS (`chip`: the target's model of it, Deploy.chip_activation), the read-out's z."""
        act = self.deploy.chip_activation if chip else qcfs
        h = torch.floor(x.to(torch.float64) * self.levels) / self.levels
        lam_prev = torch.ones((), dtype=torch.float64)
        for layer in self.layers:   # integers layer by layer (not layer_integers): the committed models' float order
            q, b, _, delta = layer.integers(lam_prev, self.deploy)
            z = layer.apply(h / lam_prev, q, b) * delta
            if not layer.spiking:
                return z
            h, lam_prev = act(z, layer.lam, self.levels), layer.lam
        raise UserError("the network has no read-out layer (a weighted op after the last ReLU)")

    def spiking_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The chip's logits with the QAT ANN's gradient (tandem learning): `to_graph`'s program run by the
        reference backend for T + depth ticks (equal to the chip wherever the compiler keeps its integers), each
        layer's count c (the spikes that reach the read-out in time: those before tick k + T) in place of QCFS's
        forward value, with the target activation's gradient. The read-out is Delta (Q c / T + B): the chip's last
        potential in float units."""
        t, xs = self.levels, x.detach().numpy()
        ints = self.layer_integers()
        with torch.no_grad():
            graph = _graph(self, [tuple(v.detach() for v in i) for i in ints])
        run = reference.run(lower(graph), {"input": xs}, t + len(self.layers))
        h = torch.from_numpy(rate_encode(xs, t).sum(1, dtype=np.float64)) / t
        lam_prev = torch.ones((), dtype=torch.float64)
        for k, (layer, (q, b, _, delta)) in enumerate(zip(self.layers, ints), 1):
            z = layer.apply(h / lam_prev, q, b) * delta
            if not layer.spiking:
                return z
            count = torch.from_numpy(run.spikes[_neuron_name(k, True)][:, :k + t].sum(1, dtype=np.float64))
            h = replace_ste(self.deploy.chip_activation(z, layer.lam, t), count * layer.lam.detach() / t)
            lam_prev = layer.lam
        raise UserError("the network has no read-out layer (a weighted op after the last ReLU)")

    @torch.no_grad()
    def init_lambdas(self, x: torch.Tensor, percentile: float) -> None:
        """lambda_l = the percentile of layer l's positive float activations (Rueckauer et al. 2017)."""
        for layer, a in zip(self.layers, self.float_forward(x)):
            if layer.spiking:
                pos = a[a > 0]
                layer.lam.fill_(float(np.percentile(pos.numpy(), percentile)) if pos.numel() else 1.0)

    def layer_integers(self) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Per layer (Q, B, theta, Delta) (QATLayer.integers), each in the unit its predecessor's lambda sets."""
        out, lam_prev = [], torch.ones((), dtype=torch.float64)
        for layer in self.layers:
            out.append(layer.integers(lam_prev, self.deploy))
            lam_prev = layer.lam if layer.spiking else lam_prev
        return out

    def readout_unit(self) -> float:
        """Float value of one integer unit of the read-out (logit = potential * unit / T)."""
        with torch.no_grad():
            return float(self.layer_integers()[-1][3])


def _neuron_name(k: int, spiking: bool) -> str:
    """The Graph name of the k-th layer's neurons (`to_graph`)."""
    return f"if{k}" if spiking else "readout"


def _layer(seg: Segment, in_shape: tuple[int, ...]) -> QATLayer:
    """The segment's layer; pools go before its weighted op (into its weights), never after it."""
    pools = [op for op in seg.ops if isinstance(op, Pool)]
    windows(pools, seg.weighted.name, False)   # a max or padded pool anywhere: its own line first
    w_at = seg.ops.index(seg.weighted)
    late = list(seg.ops[w_at + 1:])
    if late:
        what = f"{late[0].kind} pool" if isinstance(late[0], Pool) else "flatten"
        raise UserError(f"{late[0].name}: a {what} after {seg.weighted.name} (before its ReLU or the read-out) is not "
                        "supported in training; pool after the ReLU, before the next Conv2d/Linear")
    padded = seg.weighted.is_conv and any(seg.weighted.padding)
    flat = any(isinstance(op, Flat) for op in seg.ops)
    return QATLayer(seg.weighted, flat, seg.spiking, windows(pools, seg.weighted.name, padded), in_shape)


def from_program(program: torch.export.ExportedProgram, input_shape: tuple[int, ...], deploy: Deploy,
                 timesteps: int) -> QATNet:
    """The QAT network of an exported model (BatchNorm folded by the converter's reader)."""
    ops, _ = ann_ops(program)
    return QATNet(segments(ops), input_shape, deploy, timesteps)


def from_module(module: nn.Module, input_shape: tuple[int, ...], deploy: Deploy, timesteps: int) -> QATNet:
    """`from_program` of torch.export.export(module) on a zero sample; the module must be in eval mode."""
    if any(m.training for m in module.modules()):
        raise UserError("the model is in training mode; call model.eval() so BatchNorm folds its running statistics")
    example = torch.zeros((1,) + tuple(input_shape), dtype=next(module.parameters()).dtype)
    return from_program(torch.export.export(module, (example,)), input_shape, deploy, timesteps)


Hook = Callable[[int, "QATNet", torch.optim.Optimizer], None]


def fit(net: QATNet, x: np.ndarray, y: np.ndarray, opts: TrainOptions, start: int = 0,
        optimizer: torch.optim.Optimizer | None = None, on_epoch: Hook | None = None) -> QATNet:
    """Float epochs (plain ReLU; lambda then set from activations), then QAT epochs with cross-entropy.
    The last `opts.chip_epochs` QAT epochs train through the target's activation model instead of QCFS.
    Epoch e shuffles (and jitters `opts.jitter` of each batch) with seed (opts.seed, e), so a run resumed at
    `start` (from a checkpoint of net and optimizer) gives the same weights as one never stopped.
    `on_epoch(e, net, opt)` after each epoch."""
    xt, yt = torch.from_numpy(np.asarray(x, dtype=np.float64)), torch.from_numpy(np.asarray(y)).long()
    if opts.jitter:
        require_images(xt)   # refused before the first epoch
    opt = optimizer or torch.optim.Adam(net.parameters(), lr=opts.lr)
    total = opts.float_epochs + opts.epochs
    for epoch in range(start, total):
        quantised, chip = epoch >= opts.float_epochs, epoch >= total - opts.chip_epochs
        if quantised and epoch == opts.float_epochs:
            net.init_lambdas(xt, opts.percentile)
        for g in opt.param_groups:   # cosine decay within each phase
            span, k = (opts.epochs, epoch - opts.float_epochs) if quantised else (opts.float_epochs, epoch)
            g["lr"] = opts.lr * 0.5 * (1 + math.cos(math.pi * k / max(span, 1)))
        gen = torch.Generator().manual_seed(opts.seed * 100003 + epoch)
        order = torch.randperm(len(xt), generator=gen)
        for idx in order.split(opts.batch_size):
            xb = jitter(xt[idx], gen, opts.jitter) if opts.jitter else xt[idx]
            logits = _logits(net, xb, quantised, chip, opts.chip_forward)
            opt.zero_grad()
            F.cross_entropy(logits, yt[idx]).backward()
            opt.step()
        if on_epoch is not None:
            on_epoch(epoch + 1, net, opt)
    return net


def _logits(net: QATNet, x: torch.Tensor, quantised: bool, chip: bool, chip_forward: str) -> torch.Tensor:
    if not quantised:
        return net.float_forward(x)[-1]
    return net.spiking_forward(x) if chip and chip_forward == "spikes" else net(x, chip)


@torch.no_grad()
def predict(net: QATNet, x: np.ndarray, quantised: bool = True) -> np.ndarray:
    xt = torch.from_numpy(np.asarray(x, dtype=np.float64))
    return (net(xt) if quantised else net.float_forward(xt)[-1]).numpy()


@torch.no_grad()
def to_graph(net: QATNet) -> Graph:
    """The SNN Graph of the trained integers: layer k's op holds Q_k, its IF neuron theta_k, bias B_k and
    v_init theta_k / 2 - k B_k (half threshold, less the k ticks of bias it integrates before its input
    arrives), reset as the target's hook says; the read-out accumulates with v_init -k B. Input: rate code."""
    return _graph(net, net.layer_integers())


def _graph(net: QATNet, ints: list[tuple[torch.Tensor, ...]]) -> Graph:
    """`to_graph` of the layers' (Q, B, theta, Delta), computed once by the caller."""
    d = net.deploy
    nodes: list[Node] = [Input("input", net.input_shape, "rate")]
    edges: list[tuple[str, str]] = []
    prev = "input"
    for k, (layer, (q, b, theta, _)) in enumerate(zip(net.layers, ints), 1):
        q, b, theta = q.numpy(), b.numpy(), float(theta)
        chain: list[Node] = [Flatten(f"flatten{k}")] if layer.flatten else []
        if layer.geometry is None:
            chain.append(Affine(layer.name, q))
            bias = b
        else:
            stride, padding, groups = layer.geometry
            chain.append(Conv2d(layer.name, q, None, stride, padding, groups))
            bias = b.reshape(-1, 1, 1)
        name = _neuron_name(k, layer.spiking)
        neuron = (IF(name, threshold=theta, bias=bias, v_init=theta / 2 - k * bias, reset=d.reset) if layer.spiking
                  else Readout(name, bias=bias, v_init=-k * bias))
        path = [prev] + [n.name for n in chain] + [name]
        nodes += chain + [neuron]
        edges += list(zip(path[:-1], path[1:]))
        prev = name
    nodes.append(Output("output"))
    edges.append((prev, "output"))
    info = {"timesteps": net.levels, "target": d.target.name, "weights": d.mode, "readout_unit": float(ints[-1][3])}
    if d.readout_mode is not None:
        info["readout_weights"] = d.readout_mode
    return Graph(tuple(nodes), tuple(edges), {METADATA_KEY: json.dumps(info, sort_keys=True), "model": "neurocomp-train"})


def training_info(graph: Graph) -> dict:
    """What `to_graph` recorded: timesteps, target, weight mode (and the read-out's where it differs), the
    read-out's unit."""
    text = graph.metadata.get(METADATA_KEY)
    return json.loads(text) if text else {}


def exactness(graph: Graph, deploy: Deploy) -> dict[str, bool]:
    """Per layer, whether the compiler's quantiser keeps the Graph's integers exactly (weights, thresholds,
    biases, initial potentials): what makes the chip compute the trained network."""
    from neurocomp.quantize import quantize

    qnet = quantize(lower(graph), deploy.target, deploy.compile_mode)
    return {q.name: q.exact for q in qnet.layers}
