"""The Python API: compile a model for a target, load a compiled program, convert a torch ANN.

    import neurocomp
    program = neurocomp.compile("models/siamfc_micro_native.pt", "truenorth")
    program.save("build/micro.truenorth")
    result = neurocomp.load("build/micro.truenorth").run(x, ticks=40)

The command line does the same through these calls, so a program compiled here and one compiled with
`neurocomp compile` from the same file and options are byte-identical. The ANN converter is
`convert_ann`, not `convert`: `neurocomp.convert` is the converter's package, and Python rebinds that
name to the package whenever one of its modules is imported.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from neurocomp.errors import UserError
from neurocomp.program import Program
from neurocomp.target import Target, load_target

if TYPE_CHECKING:
    import torch

    from neurocomp.ir.graph import Graph


def compile(model: str | Path | Graph, target: str | Path | Target, *, timesteps: int | None = None, seed: int = 0,
            rate: float = 0.05, weights: str | None = None, congestion: float = 0.5,
            profile: Mapping[str, np.ndarray] | None = None, dt: float = 1e-3, if_gain: str = "auto",
            integrator: str = "auto", bias_timing: str = "held",
            progress: Callable[[str], None] | None = None) -> Program:
    """Compile `model` (a .pt or .nir file, or a Graph) for `target` (a built-in name, a spec.toml path or a Target).

    `timesteps`: ticks per inference (default: what the model was trained for, else 32); `weights`: the target's
    weight mode (truenorth: bits, levels, trinary or whole); `profile`: calibration input per graph input, to place by
    measured traffic; `dt`, `if_gain`, `integrator`, `bias_timing`: how a .nir file is read (docs/NIR.md);
    `progress` is called with each stage's name as it starts. The program keeps its graph, report and routes until
    saved."""
    from neurocomp.compiler import CompileOptions, compile_graph
    from neurocomp.frontend import load_model

    tgt = target if isinstance(target, Target) else load_target(str(target))
    if isinstance(model, (str, Path)):
        graph = load_model(Path(model), dt=dt, if_gain=if_gain, integrator=integrator, bias_timing=bias_timing)
        digest = hashlib.sha256(Path(model).read_bytes()).hexdigest()
    else:
        graph, digest = model, ""
    opts = CompileOptions(timesteps=timesteps, seed=seed, rate=rate, weights=weights, congestion=congestion)
    return compile_graph(graph, tgt, opts, digest, progress=progress, profile=profile).program


def load(path: str | Path) -> Program:
    """The compiled program in directory `path`, verified: every file's hash, the manifest, the arrays' structure."""
    return Program.load(path)


def convert_ann(model: torch.nn.Module | str | Path, calibration: np.ndarray, **options: Any) -> Graph:
    """The SNN of a torch ANN (a module, or a .pt2 written by torch.export.save) for inputs like `calibration`
    ((samples, *input shape)); `options` are neurocomp.convert.ConvertOptions fields (timesteps, normalisation,
    percentile, reset, encoding, maxpool, pool_layers, ...). Save it with neurocomp.frontend.save_graph."""
    from neurocomp.convert import ConvertOptions, convert, load_exported

    known = {f.name for f in dataclasses.fields(ConvertOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UserError(f"unknown conversion option(s) {unknown}; choose from {sorted(known)}")
    ann = load_exported(model) if isinstance(model, (str, Path)) else model
    x = np.asarray(calibration)
    return convert(ann, x, input_shape=tuple(x.shape[1:]), method=ConvertOptions(**options))
