"""`neurocomp check MODEL --target T`: which layers map natively, why not, and what to change.

Kept apart from cli.py so the command's table and JSON live beside each other; heavy
modules are imported inside `run`, so `neurocomp --help` stays fast.
"""
from __future__ import annotations

import argparse
import json
from typing import Any

from neurocomp import cli_nir


def add_parser(sub, dt_type) -> None:
    k = sub.add_parser("check", help="say per layer whether a .pt or .nir model maps natively on a target (no partial sums)")
    k.add_argument("model")
    k.add_argument("--target", required=True, help="truenorth, loihi, loihi2 or a spec.toml path")
    cli_nir.add_options(k, dt_type)
    k.add_argument("--json", action="store_true", help="print the verdicts as one JSON object")


def report(model: str, target_name: str, **reading: Any) -> dict[str, Any]:
    """The check's result: one row per layer and the summary line; a UserError when a layer can never fit.
    `reading`: how a NIR file is read (load_model's options)."""
    from neurocomp.frontend import load_model
    from neurocomp.native import check_graph, report as native_report, require_possible
    from neurocomp.target import load_target

    target = load_target(target_name)
    vs = check_graph(load_model(model, **reading), target)
    require_possible(vs)
    return {"target": target.name, **native_report(vs)}


def table(data: dict[str, Any]):
    from rich.table import Table

    t = Table(title=f"native shapes on {data['target']}: {data['summary']}")
    for col in ("layer", "shape", "fan-in", "axons / allowed", "native", "why not", "suggested change"):
        t.add_column(col, justify="right" if col in ("fan-in", "axons / allowed") else "left", overflow="fold")
    for r in data["layers"]:
        t.add_row(r["layer"], "x".join(map(str, r["shape"])), str(r["fan_in"]), f"{r['axons']} / {r['allowed']}",
                  "yes" if r["native"] else "no", r["why"], r["suggestion"])
    return t


def run(args: argparse.Namespace, console) -> int:
    data = report(args.model, args.target, **cli_nir.reading(args))
    if args.json:
        print(json.dumps(data, sort_keys=True))
    else:
        console.print(table(data))
        console.print(data["summary"])
    return 0
