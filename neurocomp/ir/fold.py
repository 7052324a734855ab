"""Fold chains of structured linear ops into one op before quantisation.

A pool or a conv composed with the conv that follows gives synapses whose weights are
sums of products of both kernels. Quantising each kernel alone then lets the composed
weights overflow the target's weight range and multiplies the distinct levels per
neuron (TrueNorth allows 4). Folding first makes the quantiser see the weights the
cores will store, and the function is unchanged:

* SumPool2d(kp, sp) -> Conv2d(k, s): one conv, kernel (k - 1) * sp + kp, stride s * sp,
  the kernel spread by the pool;
* Conv2d(ka, sa) -> Conv2d(kb, sb): one conv, kernel (kb - 1) * sa + ka, stride sa * sb,
  groups 1, bias B(bias_a) + bias_b. The fused op keeps the second op's class, so a
  Correlation stays a Correlation (its kernel bound at run time).

Only unpadded pairs whose first op feeds nothing else fold (padding would pad differently).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from neurocomp.ir import ops
from neurocomp.ir.graph import Affine, Conv2d, Correlation, Graph, Node, SumPool2d


def fold_linear(g: Graph) -> Graph:
    """Fold every foldable (SumPool2d | Conv2d) -> Conv2d pair, repeatedly, named after the second op."""
    while True:
        pair = _next_pair(g)
        if pair is None:
            return g
        g = _fuse(g, *pair)


def _next_pair(g: Graph) -> tuple[Node, Conv2d] | None:
    nodes = g.node_map
    for first in g.nodes:
        succ = g.successors(first.name)
        if isinstance(first, (SumPool2d, Conv2d)) and len(succ) == 1 and _foldable(first, nodes[succ[0]]):
            return first, nodes[succ[0]]
    return None


def _foldable(first: Node, second: Node) -> bool:
    return isinstance(second, Conv2d) and first.padding == (0, 0) and second.padding == (0, 0)


def _fuse(g: Graph, first: Node, second: Conv2d) -> Graph:
    if isinstance(second, Correlation):   # the fused kernel is bound at run time: fold its reach too
        reach = _compose(g, pattern(first), pattern(second)).weight > 0
        fused = dataclasses.replace(_compose(g, first, dataclasses.replace(second, reach=None)), reach=reach)
    else:
        fused = _compose(g, first, second)
    nodes = tuple(fused if n.name == first.name else n for n in g.nodes if n.name != second.name)
    edges = tuple((a, second.name if b == first.name else b) for a, b in g.edges
                  if not (a == first.name and b == second.name))
    return Graph(nodes, edges, g.metadata)


def _compose(g: Graph, first: Node, second: Conv2d) -> Conv2d:
    return _pool_conv(first, second) if isinstance(first, SumPool2d) else _conv_conv(first, second, g)


def pattern(op: Node) -> Node:
    """`op` with 1 wherever a weight can be non-zero, whatever kernel is bound: a Correlation's reach, a
    fixed op's non-zeros (compiled, not bound). Patterns compose to the structural reach (all >= 0)."""
    if isinstance(op, Correlation):
        ones = np.ones(op.weight.shape) if op.reach is None else np.asarray(op.reach, dtype=np.float64)
        return dataclasses.replace(op, weight=ones, bias=None, reach=None)
    if isinstance(op, (Affine, Conv2d)):
        return dataclasses.replace(op, weight=(np.asarray(op.weight) != 0).astype(np.float64), bias=None)
    return op


def _pool_conv(pool: SumPool2d, conv: Conv2d) -> Conv2d:
    import torch   # folding runs at compile time; run and report import this module without torch
    import torch.nn.functional as F

    w = torch.from_numpy(np.array(conv.weight))
    cout, cin_g, kh, kw = w.shape
    ones = torch.ones((1, 1) + pool.kernel, dtype=w.dtype)
    spread = F.conv_transpose2d(w.reshape(cout * cin_g, 1, kh, kw), ones, stride=pool.stride)
    kernel = spread.reshape(cout, cin_g, *spread.shape[-2:]).numpy()
    stride = (conv.stride[0] * pool.stride[0], conv.stride[1] * pool.stride[1])
    return dataclasses.replace(conv, weight=kernel, stride=stride)


def _conv_conv(a: Conv2d, b: Conv2d, g: Graph) -> Conv2d:
    """K[o, c] = sum_m b[o, m] (*) a[m, c] with a's taps spread by its stride: a transposed conv of b's
    kernel (one sample per output channel) by a's, in a's groups. Its cost is the kernels' size,
    not the receptive field squared (SiamFC's conv5 x correlation: 24,576 inputs)."""
    import torch
    import torch.nn.functional as F

    cin = g.shape(g.predecessors(a.name)[0])[0]
    wb = torch.from_numpy(_dense_channels(np.asarray(b.weight), b.groups))
    kernel = F.conv_transpose2d(wb, torch.from_numpy(np.array(a.weight, dtype=np.float64)), stride=a.stride,
                                groups=a.groups).numpy()
    size = tuple((kb - 1) * sa + ka for kb, sa, ka in zip(b.weight.shape[2:], a.stride, a.weight.shape[2:]))
    const = ops.forward(b, ops.forward(a, torch.zeros((1, cin) + size, dtype=torch.float64)))[0, :, 0, 0].numpy()
    bias = const if (a.bias is not None or b.bias is not None) else None
    stride = (a.stride[0] * b.stride[0], a.stride[1] * b.stride[1])
    return dataclasses.replace(b, weight=kernel, bias=bias, stride=stride, groups=1)


def _dense_channels(w: np.ndarray, groups: int) -> np.ndarray:
    """A grouped conv's (out, in / groups, k, k) weight as the equivalent (out, in, k, k) one."""
    out, cpg = w.shape[:2]
    dense = np.zeros((out, cpg * groups) + w.shape[2:], dtype=np.float64)
    for grp in range(groups):
        rows = slice(grp * out // groups, (grp + 1) * out // groups)
        dense[rows, grp * cpg:(grp + 1) * cpg] = w[rows]
    return dense
