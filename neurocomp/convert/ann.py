"""The ANN as the converter sees it: a chain of ops, grouped into segments.

A segment is the linear part between two ReLUs: optional pooling and flattening
around exactly one weighted op (Conv2d or Linear). Each segment becomes one neuron
layer of the SNN: IF neurons where a ReLU follows, a non-spiking Readout for the
last segment when no ReLU follows. The forward pass (float64) is the ANN the SNN
approximates, after max-pool replacement, so statistics and errors refer to it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from neurocomp.errors import GraphError


@dataclass(frozen=True, eq=False)
class Weighted:
    """Conv2d (weight 4-D, torch layout) or Linear (weight (out, in)); bias always present."""

    name: str
    weight: np.ndarray
    bias: np.ndarray
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1

    @property
    def is_conv(self) -> bool:
        return self.weight.ndim == 4

    @property
    def channels(self) -> int:
        return int(self.weight.shape[0])


@dataclass(frozen=True, eq=False)
class Pool:
    name: str
    kind: str  # "avg" or "max"
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)

    @property
    def area(self) -> int:
        return self.kernel[0] * self.kernel[1]


@dataclass(frozen=True, eq=False)
class Flat:
    name: str


@dataclass(frozen=True, eq=False)
class ReLU:
    name: str


Op = Weighted | Pool | Flat | ReLU
Linear = Weighted | Pool | Flat


@dataclass(frozen=True, eq=False)
class Segment:
    """Linear ops feeding one neuron layer; `spiking` is False for the final read-out."""

    ops: tuple[Linear, ...]
    spiking: bool

    @property
    def weighted(self) -> Weighted:
        return next(op for op in self.ops if isinstance(op, Weighted))

    @property
    def pool_factor(self) -> float:
        """1 / (product of pool areas): what turns the SumPools of the SNN into averages."""
        return _inverse_area(self.ops)

    @property
    def post_factor(self) -> float:
        """1 / (product of the areas of the pools after W), which sum W's bias over their windows."""
        return _inverse_area(self.ops[self.ops.index(self.weighted) + 1:])


def _inverse_area(ops: tuple[Linear, ...]) -> float:
    """Average pools only: a (spiking) max pool does not scale its input."""
    return 1.0 / float(np.prod([op.area for op in ops if isinstance(op, Pool) and op.kind == "avg"] or [1]))


def segments(ops: list[Op]) -> tuple[Segment, ...]:
    """Split the chain at its ReLUs; each part must hold exactly one weighted op."""
    parts: list[list[Op]] = [[]]
    for op in ops:
        if isinstance(op, ReLU):
            parts[-1].append(op)
            parts.append([])
        else:
            parts[-1].append(op)
    if not parts[-1]:
        parts.pop()
    out = []
    for part in parts:
        spiking = isinstance(part[-1], ReLU)
        body = tuple(op for op in part if not isinstance(op, ReLU))
        n_weighted = sum(isinstance(op, Weighted) for op in body)
        if n_weighted != 1:
            names = [op.name for op in body] or ["nothing"]
            where = "before ReLU " + part[-1].name if spiking else "after the last ReLU"
            raise GraphError(f"each layer needs exactly one Conv2d/Linear {where}, got {n_weighted} in {names}; "
                             f"two weighted ops without an activation between them, or pooling alone, are not supported")
        out.append(Segment(body, spiking))
    if not out:
        raise GraphError("the network has no Conv2d or Linear layer")
    return tuple(out)


def replace_maxpool(segs: tuple[Segment, ...], mode: str = "avg") -> tuple[tuple[Segment, ...], list[str]]:
    """Max-pooling becomes average pooling (a SumPool whose 1/area folds into the weights), unless `mode` is
    "spiking": then each max pool stays and must open its segment, i.e. read the spikes of an IF layer."""
    if mode == "spiking":
        segs = _pools_after_relu(segs)
        for k, seg in enumerate(segs):
            late = [op.name for op in seg.ops[1:] if _is_max(op)]
            if late or (k == 0 and _is_max(seg.ops[0])):
                raise GraphError(f"max pool {(late or [seg.ops[0].name])[0]}: a spiking max pool reads spike trains, "
                                 f"so it must directly follow a ReLU, not the input or a linear op before it")
        return segs, [f"{op.name}: spiking max pooling" for seg in segs for op in seg.ops if _is_max(op)]
    notes = []
    out = []
    for seg in segs:
        ops = []
        for op in seg.ops:
            if isinstance(op, Pool) and op.kind == "max":
                notes.append(f"{op.name}: max pooling replaced by average pooling")
                op = Pool(op.name, "avg", op.kernel, op.stride, op.padding)
            ops.append(op)
        out.append(Segment(tuple(ops), seg.spiking))
    return tuple(out), notes


def split_pools(segs: tuple[Segment, ...]) -> tuple[tuple[Segment, ...], list[str]]:
    """Pools that open a segment become their own IF layer: the pool and a 1x1 identity conv per
    channel (a ReLU on pooled ReLU outputs changes nothing, so the ANN is the same function). The
    next layer then reads C*k*k inputs instead of the window the pool composes into its kernel
    ((k - 1) * pool stride + pool size wide), which is what keeps wide fan-ins under a core's axons."""
    out: list[Segment] = []
    notes: list[str] = []
    for k, seg in enumerate(segs):
        lead = _leading_pools(seg.ops)
        if k == 0 or not lead:
            out.append(seg)
            continue
        channels = segs[k - 1].weighted.channels
        identity = Weighted(f"{lead[-1].name}.identity", np.ones((channels, 1, 1, 1)), np.zeros(channels),
                            groups=channels)
        out += [Segment(lead + (identity,), True), Segment(seg.ops[len(lead):], seg.spiking)]
        notes.append(f"{lead[-1].name}: pooling as its own IF layer")
    return tuple(out), notes


def _leading_pools(ops: tuple[Linear, ...]) -> tuple[Pool, ...]:
    n = next((i for i, op in enumerate(ops) if not isinstance(op, Pool)), len(ops))
    return tuple(ops[:n])


def _is_max(op: Linear) -> bool:
    return isinstance(op, Pool) and op.kind == "max"


def _pools_after_relu(segs: tuple[Segment, ...]) -> tuple[Segment, ...]:
    """Conv -> MaxPool -> ReLU as Conv -> ReLU -> MaxPool (max and ReLU commute): a max pool that ends a
    spiking segment moves to the start of the next, where it reads the layer's spikes."""
    out = list(segs)
    for k in range(len(out) - 1):
        seg = out[k]
        if seg.spiking and _is_max(seg.ops[-1]) and seg.weighted is not seg.ops[-1]:
            out[k] = Segment(seg.ops[:-1], True)
            out[k + 1] = Segment((seg.ops[-1],) + out[k + 1].ops, out[k + 1].spiking)
    return tuple(out)


def _apply(op: Linear, x: torch.Tensor) -> torch.Tensor:
    if isinstance(op, Weighted):
        w, b = torch.from_numpy(op.weight), torch.from_numpy(op.bias)
        if op.is_conv:
            return F.conv2d(x, w, b, stride=op.stride, padding=op.padding, groups=op.groups)
        return F.linear(x, w, b)
    if isinstance(op, Pool):
        if op.kind == "max":
            return F.max_pool2d(x, op.kernel, op.stride, op.padding)
        return F.avg_pool2d(x, op.kernel, op.stride, op.padding, count_include_pad=True)
    return x.flatten(1)


def activations(segs: tuple[Segment, ...], x: np.ndarray, batch: int = 512) -> Iterator[list[np.ndarray]]:
    """Per batch of x, each segment's output: ReLU(z) for spiking segments, z for the read-out."""
    with torch.no_grad():
        for start in range(0, len(x), batch):
            h = torch.from_numpy(np.asarray(x[start:start + batch], dtype=np.float64))
            outs = []
            for seg in segs:
                for op in seg.ops:
                    h = _apply(op, h)
                if seg.spiking:
                    h = torch.relu(h)
                outs.append(h.numpy())
            yield outs


def forward(segs: tuple[Segment, ...], x: np.ndarray) -> list[np.ndarray]:
    """Every segment's output on all of x."""
    parts = list(activations(segs, x))
    return [np.concatenate([p[k] for p in parts]) for k in range(len(segs))]
