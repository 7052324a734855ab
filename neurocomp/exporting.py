"""`neurocomp export PROGRAM` with a family's own outputs (targets/<family>/cli.toml [[export]], written by
targets/<family>/export.py): generic code only finds the family's exporter and hands it the program and the
input the command was given, so no family's format is named here."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from neurocomp.errors import UserError
from neurocomp.program import Program
from neurocomp.target import ExportFlag, extension


@dataclass(frozen=True)
class ExportInput:
    """What the command gives an exporter besides the outputs: the files it reads (which no output may replace)
    and an input to encode (`--input`, as for run: `read` takes the program's input names; None if not given)
    with its ticks, seed and sample. The exporter reads it after its own checks of what it was asked."""

    sources: tuple[Path, ...]
    read: Callable[[list[str]], Mapping[str, np.ndarray]] | None = None
    ticks: int | None = None
    seed: int = 0
    sample: int = 0

    def inputs(self, program: Program) -> Mapping[str, np.ndarray]:
        if self.read is None:
            raise UserError("export: this output encodes an input: give --input IN.npz")
        return self.read([name for name, _ in program.netlist.inputs])


def export_program(source: Path, outputs: Mapping[ExportFlag, Path], given: ExportInput,
                   step: Callable[[str], None]) -> dict[str, Any]:
    """The chosen outputs of one family written from the program at `source`; a UserError before anything is
    written for a model file, a program of another family, or outputs of two families."""
    flags = ", ".join(f.flag for f in outputs)
    if not source.is_dir():
        raise UserError(f"{source}: {flags} export a compiled program directory, not a model file")
    families = sorted({f.family for f in outputs})
    program = Program.load(source)
    exporter = extension(program.target, "export")
    if families != [program.target.spec.family] or exporter is None:
        raise UserError(f"{flags}: needs a {' and '.join(families)} program; {source} targets {program.target.name!r}")
    return {"source": str(source)} | exporter.export(program, {f.dest: path for f, path in outputs.items()}, given, step)
