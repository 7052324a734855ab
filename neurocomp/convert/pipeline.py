"""convert(): a torch ANN (module or ExportedProgram) -> an IF-neuron SNN Graph.

Pipeline: torch.export -> op chain (BatchNorm folded, identities and a final softmax
dropped) -> segments (one weighted op per neuron layer) -> max-pool replacement ->
optional pool layers -> ANN activations on the calibration set -> lambda per layer or
channel -> scaled weights -> optional light bias calibration against the float SNN -> Graph. The Graph
records, per layer, lambda and the RMSE between the float SNN's output and the
ANN's on the calibration samples, under metadata["conversion"] (JSON).
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch
from torch import nn

from neurocomp.convert.ann import Pool, Segment, forward, replace_maxpool, segments, split_pools
from neurocomp.convert.build import build_graph, layer_names
from neurocomp.convert.calibrate import ann_targets, calibrate, snn_outputs, rmse
from neurocomp.convert.normalize import activation_scales, scale_segment
from neurocomp.convert.options import ConvertOptions
from neurocomp.convert.trace import ann_ops
from neurocomp.encoding import require_real
from neurocomp.errors import GraphError, UserError
from neurocomp.ir.graph import Graph

METADATA_KEY = "conversion"


def convert(model: nn.Module | torch.export.ExportedProgram, calibration: np.ndarray, *,
            input_shape: tuple[int, ...], method: ConvertOptions = ConvertOptions()) -> Graph:
    """The SNN approximating `model` on inputs like `calibration` ((samples, *input_shape))."""
    x = _check_calibration(calibration, tuple(input_shape), method)
    program = model if isinstance(model, torch.export.ExportedProgram) else _export(model, x)
    ops, notes = ann_ops(program)
    segs = segments(ops)
    if method.maxpool == "error" and any(isinstance(o, Pool) and o.kind == "max" for s in segs for o in s.ops):
        raise GraphError("the network uses max pooling and maxpool='error' was chosen; use maxpool='spiking' or 'avg'")
    segs, replaced = replace_maxpool(segs, method.maxpool)
    if method.pool_layers:
        segs, split = split_pools(segs)
        replaced += split
    acts = forward(segs, x)
    lams = _scales(segs, acts, method)
    plan = _scaled(segs, lams, tuple(input_shape))
    idx = _sample(len(x), method)
    targets = [a[idx] for a in ann_targets(plan, acts, lams)]
    if method.calibration_batches:
        plan = calibrate(plan, x[idx], targets, method)
    outputs = snn_outputs(plan, x[idx], method)
    info = _info(plan, lams, targets, outputs, notes + replaced, method)
    return build_graph(plan, tuple(input_shape), method, {METADATA_KEY: json.dumps(info, sort_keys=True)})


def conversion_info(graph: Graph) -> dict[str, Any]:
    """The conversion record of a converted Graph (empty if it was not converted here)."""
    text = graph.metadata.get(METADATA_KEY)
    return json.loads(text) if text else {}


def ann_forward(model: nn.Module | torch.export.ExportedProgram, x: np.ndarray,
                method: ConvertOptions = ConvertOptions()) -> np.ndarray:
    """The logits of the ANN the SNN approximates (max-pooling replaced, or kept, as `method` says)."""
    x = np.asarray(x, dtype=np.float64)
    program = model if isinstance(model, torch.export.ExportedProgram) else _export(model, x)
    segs, _ = replace_maxpool(segments(ann_ops(program)[0]), method.maxpool)
    return forward(segs, x)[-1]


def input_shape_of(program: torch.export.ExportedProgram) -> tuple[int, ...]:
    """The per-sample input shape the program was exported with (its batch axis dropped)."""
    name = program.graph_signature.user_inputs[0]
    node = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name == name)
    return tuple(int(s) for s in node.meta["val"].shape[1:])


def _check_calibration(calibration: np.ndarray, input_shape: tuple[int, ...], opts: ConvertOptions) -> np.ndarray:
    require_real(np.asarray(calibration), "calibration data")
    x = np.asarray(calibration, dtype=np.float64)
    if x.ndim != len(input_shape) + 1 or x.shape[1:] != input_shape or len(x) == 0:
        raise UserError(f"calibration data must be (samples, {', '.join(map(str, input_shape))}), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise UserError("calibration data contains NaN or Inf")
    if opts.encoding != "current" and (x.min() < 0 or x.max() > 1):
        raise UserError(f"{opts.encoding} encoding needs inputs in [0, 1], the calibration data spans "
                        f"[{x.min():g}, {x.max():g}]: rescale the inputs or use encoding 'current'")
    return x


def _export(module: nn.Module, x: np.ndarray) -> torch.export.ExportedProgram:
    if any(m.training for m in module.modules()):
        raise GraphError("the model is in training mode (BatchNorm and dropout would act as in training); "
                         "call model.eval() before converting")
    param = next(module.parameters(), None)
    example = torch.from_numpy(x[:1]).to(param.dtype if param is not None else torch.float32)
    try:
        return torch.export.export(module, (example,))
    except Exception as e:  # torch.export raises many types for models it cannot capture
        raise GraphError(f"torch.export could not capture the model: {type(e).__name__}: "
                         f"{' '.join(str(e).split())[:300]}") from None


def _scales(segs: tuple[Segment, ...], acts: list[np.ndarray], opts: ConvertOptions) -> list[np.ndarray]:
    """lambda per output channel; 1 for the read-out, which keeps the logits' units."""
    return [activation_scales(a, s.weighted.channels, opts.percentile, opts.normalisation) if s.spiking
            else np.ones(s.weighted.channels) for s, a in zip(segs, acts)]


def _scaled(segs: tuple[Segment, ...], lams: list[np.ndarray], input_shape: tuple[int, ...]) -> tuple[Segment, ...]:
    prev = [np.ones(input_shape[0])] + lams[:-1]
    return tuple(scale_segment(s, p, lam) for s, p, lam in zip(segs, prev, lams))


def _sample(n: int, opts: ConvertOptions) -> np.ndarray:
    """The calibration samples the SNN is simulated on: a seeded random subset, in order."""
    k = min(n, max(opts.calibration_batches, 1) * opts.batch_size)
    return np.sort(np.random.default_rng(opts.seed).choice(n, size=k, replace=False))


def _info(plan: tuple[Segment, ...], lams: list[np.ndarray], targets: list[np.ndarray], outputs: list[np.ndarray],
          notes: list[str], opts: ConvertOptions) -> dict[str, Any]:
    layers = {name: {"lambda": [float(f"{v:.6g}") for v in lam], "rmse": round(rmse(t, o), 6),
                     "kind": "rate" if seg.spiking else "readout / T vs logit"}
              for name, seg, lam, t, o in zip(layer_names(plan), plan, lams, targets, outputs)}
    info: dict[str, Any] = {"method": opts.as_dict(), "notes": notes, "layers": layers, "samples": len(targets[0])}
    if not plan[-1].spiking:
        info["argmax_agreement"] = float(np.mean(targets[-1].argmax(1) == outputs[-1].argmax(1)))
    return info
