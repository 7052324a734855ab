"""`neurocomp export PROGRAM --truenorth-json OUT.json [--sfti OUT.sfti --input IN.npz]`: the outputs this family
declares in cli.toml, written by tnjson. Every output is checked (safewrite) before any is written."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from neurocomp.errors import UserError
from neurocomp.exporting import ExportInput
from neurocomp.program import Program
from neurocomp.safewrite import check
from neurocomp.targets.truenorth import tnjson


def export(program: Program, outputs: Mapping[str, Path], given: ExportInput, step: Callable[[str], None]) -> dict[str, Any]:
    """Write the chosen outputs (by dest: truenorth_json, sfti); what was written, for the command's report."""
    model, sfti = outputs.get("truenorth_json"), outputs.get("sfti")
    if bool(sfti) != (given.read is not None):
        raise UserError("export: --sfti and --input go together (the .sfti file holds that input's spikes)")
    if model and sfti and model.resolve() == sfti.resolve():
        raise UserError(f"--truenorth-json and --sfti name the same file {model}")
    if model:
        check(model, tnjson.MODEL_KIND, given.sources)
    if sfti:
        check(sfti, tnjson.SFTI_KIND, given.sources)
    done: dict[str, Any] = {}
    if sfti:
        step("input spikes")
        records, ticks = tnjson.input_records(program, given.inputs(program), given.ticks, given.seed, given.sample)
        done |= {"sfti": str(sfti), "input_spikes": len(records), "ticks": ticks, "sample": given.sample}
    if model:
        step("model JSON")
        done |= {"truenorth_json": str(model), "bytes": tnjson.write_model(program, model, given.sources)}
    if sfti:
        tnjson.write_spikes(sfti, records, given.sources)
    return done
