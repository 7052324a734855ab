"""`neurocomp check MODEL --target T`: which layers map natively, why not, and what to change.

Kept apart from cli.py so the command's table and JSON live beside each other; heavy
modules are imported inside `run`, so `neurocomp --help` stays fast.
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Any, Callable

from neurocomp import cli_nir


def add_parser(sub, dt_type) -> None:
    k = sub.add_parser("check", help="say per layer whether a .pt or .nir model maps natively on a target (no partial sums)")
    k.add_argument("model")
    k.add_argument("--target", required=True, help="truenorth, loihi, loihi2 or a spec.toml path")
    cli_nir.add_options(k, dt_type)
    k.add_argument("--census", action="store_true",
                   help="also count the cores each layer takes and the chips in all, without building core tables "
                        "(for networks too large to compile here)")
    k.add_argument("--weights", help="the weight mode the census assumes (default: the model's trained one, else the "
                                     "target's first)")
    k.add_argument("--json", action="store_true", help="print the verdicts as one JSON object")


def report(model: str, target_name: str, census: bool = False, weights: str | None = None,
           progress: Callable[[str], None] | None = None, **reading: Any) -> dict[str, Any]:
    """The check's result: one row per layer and the summary line, with `census` the cores per layer and in all;
    a UserError when a layer can never fit. `reading`: how a NIR file is read (load_model's options)."""
    from neurocomp.frontend import load_model
    from neurocomp.native import check_graph, report as native_report, require_possible
    from neurocomp.target import load_target

    target = load_target(target_name)
    graph = load_model(model, **reading)
    vs = check_graph(graph, target)
    require_possible(vs)
    out = {"target": target.name, **native_report(vs)}
    return out | ({"census": _census(graph, target, weights, progress)} if census else {})


def _census(graph, target, weights: str | None, progress: Callable[[str], None] | None) -> dict[str, Any]:
    """The census as the report's JSON: cores per layer, in all, and the chips against the spec's."""
    from neurocomp.compiler import CompileOptions, census

    start = time.perf_counter()
    c = census(graph, target, CompileOptions(weights=weights), progress)
    return {"layers": [{"layer": k.layer, "neurons": k.neurons, "cores": k.cores, "binding": k.binding, "used": k.used,
                        "allowed": k.allowed, "error": k.error} for k in c.layers],
            "cores": c.cores, "chips": c.chips, "max_chips": c.max_chips, "fits": c.chips <= c.max_chips and not c.unmapped,
            "seconds": round(time.perf_counter() - start, 2)}


def table(data: dict[str, Any]):
    from rich.table import Table

    t = Table(title=f"native shapes on {data['target']}: {data['summary']}")
    for col in ("layer", "shape", "fan-in", "axons / allowed", "native", "why not", "suggested change"):
        t.add_column(col, justify="right" if col in ("fan-in", "axons / allowed") else "left", overflow="fold")
    for r in data["layers"]:
        t.add_row(r["layer"], "x".join(map(str, r["shape"])), str(r["fan_in"]), f"{r['axons']} / {r['allowed']}",
                  "yes" if r["native"] else "no", r["why"], r["suggestion"])
    return t


def census_table(data: dict[str, Any]):
    from rich.table import Table

    c = data["census"]
    t = Table(title=f"core census on {data['target']}: {c['cores']:,} cores, {c['chips']} chips of the spec's "
                    f"{c['max_chips']} ({c['seconds']:g} s)")
    for col in ("layer", "neurons", "cores", "binding resource", "used / allowed"):
        t.add_column(col, justify="left" if col in ("layer", "binding resource") else "right", overflow="fold")
    for r in _splits_grouped(c["layers"]):
        t.add_row(r["layer"], f"{r['neurons']:,}", f"{r['cores']:,}" if not r["error"] else "none fits",
                  r["binding"], f"{_num(r['used'])} / {_num(r['allowed'])}")
    return t


def _splits_grouped(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The census rows with each run of one fan-in split's parts as one row (their neurons and cores summed, the
    binding resource of the part closest to its limit); a part no core holds keeps its own row, and the JSON every
    part's."""
    from itertools import groupby

    from neurocomp.partition.fanin import split_of

    out: list[dict[str, Any]] = []
    for split, run in groupby(rows, key=lambda r: None if r["error"] else split_of(r["layer"])):
        parts = list(run)
        out += parts if split is None or len(parts) == 1 else [_one_row(split, parts)]
    return out


def _one_row(split: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    cores = [p["cores"] for p in parts]
    each = f"{cores[0]:,} cores each" if min(cores) == max(cores) else f"{min(cores):,} to {max(cores):,} cores"
    worst = max(parts, key=lambda p: p["used"] / p["allowed"])
    return {**worst, "layer": f"{split}.part* ({len(parts)} parts, {each})",
            "neurons": sum(p["neurons"] for p in parts), "cores": sum(cores)}


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def census_line(data: dict[str, Any]) -> str:
    c = data["census"]
    within = "within" if c["chips"] <= c["max_chips"] else "over"
    chips = f"{c['chips']} chip" + ("" if c["chips"] == 1 else "s")
    line = f"census: {c['cores']:,} cores on {chips}, {within} {data['target']}'s {c['max_chips']}"
    unmapped = [r["layer"] for r in c["layers"] if r["error"]]
    return line + (f"; no core holds a neuron of {', '.join(unmapped)}" if unmapped else "")


def run(args: argparse.Namespace, console) -> int:
    from neurocomp.errors import UserError
    from neurocomp.progress import steps

    if args.weights and not args.census:
        raise UserError("check: --weights is the weight mode the census assumes; it goes with --census")
    with steps(console, "counting cores" if args.census else "checking", None) as step:
        data = report(args.model, args.target, args.census, args.weights, step, **cli_nir.reading(args))
    if args.json:
        print(json.dumps(data, sort_keys=True))
    else:
        console.print(table(data))
        console.print(data["summary"])
        if args.census:
            console.print(census_table(data))
            console.print(census_line(data))
    return 0
