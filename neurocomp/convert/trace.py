"""Read an ExportedProgram (torch.export) into the converter's op chain.

The exported graph holds aten ops, in the pre-dispatch form `torch.export.export`
returns (conv2d, linear, batch_norm, flatten, dropout, ...) or the core form after
`run_decompositions()` (convolution, addmm + permute, _native_batch_norm_legit_no_training
+ getitem, view, clone, ...); both map. BatchNorm folds into the Conv2d/Linear before
it; dropout, clone and other identities vanish; a trailing softmax/log_softmax is
dropped (argmax is unchanged; a chip has no softmax). Ops computing only on
parameters (a transposed weight) are evaluated here, but only from a fixed list of
shape and arithmetic aten ops: nothing else in the graph is ever called.
"""
from __future__ import annotations

import operator
from typing import Any, Callable

import numpy as np
import torch
from torch.fx import Node

from neurocomp.convert.ann import Flat, Op, Pool, ReLU, Weighted
from neurocomp.errors import GraphError

aten = torch.ops.aten

_CONST_OPS = {aten.t.default, aten.permute.default, aten.transpose.int, aten.view.default, aten.reshape.default,
              aten._unsafe_view.default, aten.clone.default, aten.detach.default, aten.contiguous.default,
              aten.alias.default, aten.lift_fresh_copy.default, aten._to_copy.default, aten.unsqueeze.default,
              aten.squeeze.dim, aten.mul.Tensor, aten.mul.Scalar, aten.div.Tensor, aten.div.Scalar,
              aten.add.Tensor, aten.sub.Tensor, aten.neg.default, aten.sqrt.default, aten.rsqrt.default,
              aten.pow.Tensor_Scalar, aten.norm.ScalarOpt_dim}
_IDENTITY = {aten.clone.default, aten.alias.default, aten.detach.default, aten.contiguous.default,
             aten._to_copy.default, aten.lift_fresh_copy.default}
_SOFTMAX = {aten.softmax.int, aten._softmax.default, aten.log_softmax.int, aten._log_softmax.default}
_RESHAPE = {aten.flatten.using_ints, aten.view.default, aten.reshape.default, aten._unsafe_view.default}
SUPPORTED = ("conv2d/convolution, linear/addmm/mm, relu, max_pool2d, avg_pool2d, batch_norm (folded), "
             "flatten/view/reshape, dropout/clone/identity, a final softmax/log_softmax (dropped)")


def ann_ops(ep: torch.export.ExportedProgram) -> tuple[list[Op], list[str]]:
    """The chain of ops from the program's single input to its single output, plus notes on what was dropped."""
    return _Reader(ep).read()


class _Reader:
    def __init__(self, ep: torch.export.ExportedProgram) -> None:
        self.ep = ep
        self.consts = _constants(ep)
        user_inputs = list(ep.graph_signature.user_inputs)
        if len(user_inputs) != 1:
            raise GraphError(f"the program must take exactly one input tensor, got {len(user_inputs)}: {user_inputs}")
        self.input = user_inputs[0]
        self.ops: list[Op] = []
        self.notes: list[str] = []
        self.current: Node | None = None   # the fx node holding the latest activation
        self.tuples: set[Node] = set()     # multi-output ops whose output 0 is the activation
        self.values: dict[Node, torch.Tensor] = {}
        self.foldable = False              # the last op kept is a weighted op (a BatchNorm may follow)

    def read(self) -> tuple[list[Op], list[str]]:
        for node in self.ep.graph.nodes:
            if node.op == "placeholder":
                self._placeholder(node)
            elif node.op == "call_function":
                self._call(node)
            elif node.op == "output":
                self._output(node)
            else:
                raise GraphError(f"{node.name}: unsupported graph node kind {node.op!r}")
        return self.ops, self.notes

    def _placeholder(self, node: Node) -> None:
        if node.name == self.input:
            self.current = node
        elif node.name in self.consts:
            self.values[node] = self.consts[node.name]
        else:
            raise GraphError(f"{node.name}: program input that is neither the data input nor a parameter")

    def _call(self, node: Node) -> None:
        target = node.target
        if target is operator.getitem:
            return self._getitem(node)
        deps = node.all_input_nodes
        if deps and all(d in self.values for d in deps):
            if target not in _CONST_OPS:
                raise GraphError(f"unsupported op {target} ({node.name!r}) on parameters only")
            self.values[node] = _call_const(node, self.values)
            return
        handler = _HANDLERS.get(target)
        if handler is None:
            raise GraphError(f"unsupported op {target} ({node.name!r}); supported: {SUPPORTED}")
        if [d for d in deps if d not in self.values] != [self.current]:
            raise GraphError(f"{node.name}: the network branches or merges here ({target}); only chains are supported")
        args = {k: self.values.get(v, v) if isinstance(v, Node) else v for k, v in _bind(node).items()}
        result = handler(self, node, args)
        if result is not None:
            self.ops.append(result)
            self.foldable = isinstance(result, Weighted)
        self.current = node
        if target in (aten._native_batch_norm_legit_no_training.default, aten.max_pool2d_with_indices.default,
                      aten.native_batch_norm.default):
            self.tuples.add(node)

    def _getitem(self, node: Node) -> None:
        src, index = node.args
        if src in self.values:
            self.values[node] = self.values[src][index]
        elif src in self.tuples and src is self.current and index == 0:
            self.current = node
        else:
            raise GraphError(f"{node.name}: unsupported use of output {index} of {getattr(src, 'name', src)!r}")

    def _output(self, node: Node) -> None:
        outs = node.args[0]
        if len(outs) != 1 or outs[0] is not self.current:
            raise GraphError(f"the program must return exactly the one activation chain, got {len(outs)} output(s)")

    def fold_bn(self, node: Node, a: dict[str, Any], eps: float) -> None:
        prev = self.ops[-1] if self.ops else None
        if not isinstance(prev, Weighted) or not self.foldable:
            raise GraphError(f"{node.name}: BatchNorm must directly follow a Conv2d or Linear to be folded")
        mean, var = _np(a["running_mean"]), _np(a["running_var"])
        gamma = np.ones_like(mean) if a["weight"] is None else _np(a["weight"])
        beta = np.zeros_like(mean) if a["bias"] is None else _np(a["bias"])
        scale = gamma / np.sqrt(var + eps)
        w = prev.weight * scale.reshape((-1,) + (1,) * (prev.weight.ndim - 1))
        b = beta + (prev.bias - mean) * scale
        self.ops[-1] = Weighted(prev.name, w, b, prev.stride, prev.padding, prev.groups)
        self.notes.append(f"{node.name}: BatchNorm folded into {prev.name}")

def _constants(ep: torch.export.ExportedProgram) -> dict[str, torch.Tensor]:
    sig = ep.graph_signature
    out: dict[str, torch.Tensor] = {}
    for name, fqn in {**sig.inputs_to_parameters, **sig.inputs_to_buffers}.items():
        out[name] = ep.state_dict[fqn] if fqn in ep.state_dict else ep.constants[fqn]
    for name, fqn in sig.inputs_to_lifted_tensor_constants.items():
        out[name] = ep.constants[fqn]
    return {k: v.detach() for k, v in out.items()}


def _bind(node: Node) -> dict[str, Any]:
    """Arguments by schema name, defaults filled in."""
    out: dict[str, Any] = {}
    for i, arg in enumerate(node.target._schema.arguments):
        if i < len(node.args):
            out[arg.name] = node.args[i]
        elif arg.name in node.kwargs:
            out[arg.name] = node.kwargs[arg.name]
        elif arg.has_default_value():
            out[arg.name] = arg.default_value
    return out


def _call_const(node: Node, values: dict[Node, torch.Tensor]) -> torch.Tensor:
    args = torch.fx.node.map_arg(node.args, lambda n: values[n])
    kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: values[n])
    with torch.no_grad():
        return node.target(*args, **kwargs)


def _np(t: Any) -> np.ndarray:
    return t.detach().to(torch.float64).numpy().copy() if isinstance(t, torch.Tensor) else np.asarray(t, np.float64)


def _pair(v: Any, default: int | None = None) -> tuple[int, int]:
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    if not v:
        v = [default]
    return (int(v[0]), int(v[-1]))


def _shape(node: Node) -> tuple[int, ...]:
    return tuple(int(s) for s in node.meta["val"].shape)


# ---------------------------------------------------------------- op handlers


def _conv(r: _Reader, node: Node, a: dict[str, Any]) -> Weighted:
    w = _np(a["weight"])
    if w.ndim != 4:
        raise GraphError(f"{node.name}: only 2-D convolutions are supported (weight {w.shape})")
    if a.get("transposed"):
        raise GraphError(f"{node.name}: transposed convolution is not supported")
    if _pair(a["dilation"], 1) != (1, 1):
        raise GraphError(f"{node.name}: dilation {a['dilation']} is not supported (only 1)")
    bias = np.zeros(w.shape[0]) if a["bias"] is None else _np(a["bias"])
    return Weighted(node.name, w, bias, _pair(a["stride"], 1), _pair(a["padding"], 0), int(a["groups"]))


def _linear(r: _Reader, node: Node, a: dict[str, Any]) -> Weighted:
    w = _np(a["weight"])
    return Weighted(node.name, w, np.zeros(w.shape[0]) if a["bias"] is None else _np(a["bias"]))


def _addmm(r: _Reader, node: Node, a: dict[str, Any]) -> Weighted:
    if a.get("beta", 1) != 1 or a.get("alpha", 1) != 1:
        raise GraphError(f"{node.name}: addmm with alpha or beta != 1 is not supported")
    w = _np(a["mat2"]).T
    return Weighted(node.name, w, np.broadcast_to(_np(a["self"]), (w.shape[0],)).copy())


def _mm(r: _Reader, node: Node, a: dict[str, Any]) -> Weighted:
    w = _np(a["mat2"]).T
    return Weighted(node.name, w, np.zeros(w.shape[0]))


def _relu(r: _Reader, node: Node, a: dict[str, Any]) -> ReLU:
    return ReLU(node.name)


def _maxpool(r: _Reader, node: Node, a: dict[str, Any]) -> Pool:
    if _pair(a["dilation"], 1) != (1, 1) or a["ceil_mode"]:
        raise GraphError(f"{node.name}: max_pool2d with dilation or ceil_mode is not supported")
    return _pool(node, "max", a)


def _avgpool(r: _Reader, node: Node, a: dict[str, Any]) -> Pool:
    if a["ceil_mode"] or a["divisor_override"] is not None:
        raise GraphError(f"{node.name}: avg_pool2d with ceil_mode or divisor_override is not supported")
    if not a["count_include_pad"] and _pair(a["padding"], 0) != (0, 0):
        raise GraphError(f"{node.name}: avg_pool2d with padding needs count_include_pad=True")
    return _pool(node, "avg", a)


def _pool(node: Node, kind: str, a: dict[str, Any]) -> Pool:
    kernel = _pair(a["kernel_size"])
    return Pool(node.name, kind, kernel, _pair(a["stride"] or kernel), _pair(a["padding"], 0))


def _batchnorm(r: _Reader, node: Node, a: dict[str, Any]) -> None:
    if a.get("training"):
        raise GraphError(f"{node.name}: BatchNorm was exported in training mode; call module.eval() before export")
    r.fold_bn(node, a, float(a["eps"]))


def _dropout(r: _Reader, node: Node, a: dict[str, Any]) -> None:
    if a["train"]:
        raise GraphError(f"{node.name}: dropout was exported in training mode; call module.eval() before export")


def _identity(r: _Reader, node: Node, a: dict[str, Any]) -> None:
    return None


def _reshape(r: _Reader, node: Node, a: dict[str, Any]) -> Flat | None:
    before, after = _shape(node.all_input_nodes[0]), _shape(node)
    if after == before:
        return None
    if after != (before[0], int(np.prod(before[1:]))):
        raise GraphError(f"{node.name}: reshape {before} -> {after} is not a flatten of the non-batch dimensions")
    return Flat(node.name)


def _softmax(r: _Reader, node: Node, a: dict[str, Any]) -> None:
    if len(node.users) != 1 or next(iter(node.users)).op != "output":
        raise GraphError(f"{node.name}: softmax is only supported as the network's last op (it is dropped)")
    r.notes.append(f"{node.name}: trailing {node.target} dropped (no softmax on chip; argmax unchanged)")


_HANDLERS: dict[Any, Callable[[_Reader, Node, dict[str, Any]], Op | None]] = {
    aten.conv2d.default: _conv, aten.convolution.default: _conv,
    aten.linear.default: _linear, aten.addmm.default: _addmm, aten.mm.default: _mm,
    aten.relu.default: _relu, aten.relu_.default: _relu,
    aten.max_pool2d.default: _maxpool, aten.max_pool2d_with_indices.default: _maxpool,
    aten.avg_pool2d.default: _avgpool,
    aten.batch_norm.default: _batchnorm, aten.native_batch_norm.default: _batchnorm,
    aten._native_batch_norm_legit_no_training.default: _batchnorm,
    aten.dropout.default: _dropout,
    **{op: _identity for op in _IDENTITY},
    **{op: _reshape for op in _RESHAPE},
    **{op: _softmax for op in _SOFTMAX},
}
