"""Terminal tables (rich) for compile reports, run summaries, the target list and the scale-out runs (eval,
track --clips, sweep), and `emit`, which prints one of them or the JSON object instead.

The row builders return plain strings so the HTML report shows exactly the same
numbers as the terminal.
"""
from __future__ import annotations

import json
import math
from typing import Any, Mapping

from rich.console import Console, Group
from rich.table import Table

LAYER_HEADERS = ("layer", "shape", "neurons", "cores", "binding", "used / allowed", "weight SNR", "latency")
NUMERIC_LAYER_COLUMNS = frozenset({"neurons", "cores", "used / allowed", "weight SNR", "latency"})
TARGET_COLUMNS = (("name", "name", "left"), ("family", "family", "left"),
                  ("neurons/core", "neurons_per_core", "right"), ("axons/core", "axons_per_core", "right"),
                  ("cores/chip", "cores_per_chip", "right"), ("max chips", "max_chips", "right"),
                  ("timing", "tick_or_timing", "left"), ("description", "description", "left"))
COUNT_KEYS = ("synaptic_events", "neuron_active", "neuron_idle", "spikes", "hops_ew", "hops_ns", "interchip")


def fmt(x: Any) -> str:
    """One formatting rule for every value, so tables and HTML agree (ints get separators, floats 4 digits)."""
    if x is None:
        return "—"
    if isinstance(x, (bool, str)):
        return str(x)
    if isinstance(x, Mapping):
        return ", ".join(f"{k}={fmt(v)}" for k, v in x.items())
    if isinstance(x, (list, tuple)):
        return "(" + ", ".join(fmt(v) for v in x) + ")"
    if math.isfinite(x) and float(x) == int(x) and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{float(x):.4g}"


def fmt_uj(joules: float) -> str:
    return f"{joules * 1e6:.4g} µJ"


def fmt_seconds(s: float) -> str:
    """Pick the unit a reader expects: ticks are µs–ms, compiles are seconds."""
    if s < 1e-3:
        return f"{s * 1e6:.4g} µs"
    if s < 1.0:
        return f"{s * 1e3:.4g} ms"
    return f"{s:.4g} s"


def energy_summary(energy: Mapping[str, Any]) -> str:
    """Total in µJ plus the two biggest terms, which are what a user can act on."""
    total = energy["per_inference_j"]
    top = sorted(energy.get("breakdown_j", {}).items(), key=lambda kv: -kv[1])[:2]
    parts = [f"{name} {100 * j / total:.0f}%" for name, j in top if total > 0]
    return fmt_uj(total) + (f" ({', '.join(parts)})" if parts else "")


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "n/a"


def layer_rows(report: Mapping[str, Any]) -> list[tuple[str, ...]]:
    return [(lay["name"], "×".join(str(s) for s in lay["shape"]), fmt(lay["neurons"]), fmt(lay["cores"]),
             lay["binding"], f"{fmt(lay['used'])} / {fmt(lay['allowed'])}",
             fidelity(lay), fmt(lay.get("latency_ticks")))
            for lay in report["layers"]]


def fidelity(lay: Mapping[str, Any]) -> str:
    """"exact" only where the layer's `exact` holds (weights, parameters and range); else by how much it is not:
    the weight SNR (or that only parameters were rounded), where a register's range ends exactness before
    the inference does, after how many ticks, and what the error measured on calibration input was."""
    if lay.get("exact"):
        return "exact"
    snr = lay.get("weight_snr_db")
    parts = [f"{snr:.1f} dB"] if snr is not None else []
    if lay.get("limit"):
        parts.append(f"range {fmt(lay['exact_ticks'])} ticks" if lay.get("exact_ticks") else lay["limit"])
    measured = lay.get("measured") or {}
    if "spike_count_error" in measured:
        parts.append(f"measured {measured['spike_count_error']:.1%} spikes off")
    elif "max_abs_potential_error" in measured:
        parts.append(f"measured |Δv| ≤ {fmt(measured['max_abs_potential_error'])}")
    return ", ".join(parts) or "rounded params"


def realtime_rows(rt: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = [("tick", fmt_seconds(rt["tick_s"])), ("ticks / inference", fmt(rt["ticks_per_inference"])),
            ("inferences / s", fmt(rt["inferences_per_s"]))]
    if rt.get("slack") is not None:
        rows.append(("tick slack", fmt(rt["slack"])))
    return rows + (frame_rows(rt["frame"]) if "frame" in rt else [])


def frame_rows(f: Mapping[str, Any]) -> list[tuple[str, str]]:
    """An application frame's schedule and real time (frames.frame_figures)."""
    how = (f"{f['units']} {f['unit']}s side by side, 1 run" if f["runs"] == 1 and (f["units"] or 1) > 1
           else f"{f['runs']} runs one after another")
    return [("schedule", f"{f['schedule']}: {how} per frame"),
            ("ticks / frame", f"{fmt(f['ticks_per_frame'])} = {f['runs']} x ({f['ticks_per_run'] - f['lag_ticks']} + "
                              f"{f['lag_ticks']} mapping lag)"),
            ("frames / s", fmt(f["frames_per_s"])), ("frame latency", fmt_seconds(f["latency_s"]))]


def _placement_row(p: Mapping[str, Any]) -> str:
    text = f"{p['method']}: spike-hops {fmt(p['objective'])}"
    if p.get("congestion"):
        text += f" (congestion weight {fmt(p['congestion'])})"
    if p.get("baselines"):
        name, cost = min(p["baselines"].items(), key=lambda kv: kv[1])
        text += f" (best baseline {name} {fmt(cost)})"
    if p.get("bound") is not None:
        text += f", lower bound {fmt(p['bound'])}"
    return text


def traffic_model(traffic: Mapping[str, Any]) -> str:
    model = traffic.get("model") or {"kind": "uniform", "rate": traffic.get("assumed_rate")}
    if model["kind"] == "profile":
        return (f"measured: emulator run of {model['samples']} calibration samples x {model['ticks']} ticks "
                f"(mean {fmt(model['mean_rate'])} spikes/neuron/tick)")
    return f"uniform: every neuron at {fmt(model['rate'])} spikes/tick"


def _tables_row(tables: Mapping[str, Any]) -> str:
    text = f"max {fmt(tables['max_entries'])} entries (core {tables['core']}), mean {fmt(tables['mean_entries'])}"
    return text + (f", limit {fmt(tables['limit'])}" if tables.get("limit") is not None else "")


def totals_rows(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    t = report["traffic"]
    hops, seq = t["spike_hops_per_tick"], t["sequential_spike_hops_per_tick"]
    return [
        ("target", report["target"]), ("cores", fmt(report["cores_used"])), ("chips", fmt(report["chips_used"])),
        ("neurons", fmt(report["neurons"])), ("synapses", fmt(report["synapses"])), ("axons", fmt(report["axons"])),
        ("spike-hops / tick", f"{fmt(hops)} vs {fmt(seq)} sequential ({_ratio(hops, seq)})"),
        ("max link load", f"{fmt(t['max_link_load'])} spikes/tick at {fmt(t['worst_link'])}"),
        ("inter-chip spikes / tick", fmt(t["interchip_spikes_per_tick"])),
        ("traffic model", traffic_model(t)),
        *((("routing tables", _tables_row(t["routing_tables"])),) if t.get("routing_tables") else ()),
        ("placement", _placement_row(report["placement"])),
        *((("latency", f"{fmt(report['latency_ticks'])} ticks from input to output"),) if "latency_ticks" in report else ()),
        *((("splitter cores", fmt(report["splitter_cores"])),) if report.get("splitter_cores") else ()),
        *((("native shapes", native_row(report["native"])),) if "native" in report else ()),
        ("energy / inference", energy_summary(report["energy"])),
        ("energy basis", str(report["energy"].get("basis", "—"))),
        *realtime_rows(report["realtime"]),
        *((("compile time", fmt_seconds(sum(report["compile_time_s"].values()))),) if "compile_time_s" in report else ()),
    ]


def native_row(native: Mapping[str, Any]) -> str:
    """The check's summary and the layers that are not native, with why (neurocomp.native)."""
    bad = [f"{r['layer']} ({r['why']})" for r in native["layers"] if not r["native"]]
    return native["summary"] + (f"; not: {', '.join(bad)}" if bad else "")


def _kv_table(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, value)
    return table


def compile_table(report: Mapping[str, Any]) -> Group:
    layers = Table(title=f"Layers on {report['target']}", title_justify="left")
    for head in LAYER_HEADERS:
        layers.add_column(head, justify="right" if head in NUMERIC_LAYER_COLUMNS else "left")
    for row in layer_rows(report):
        layers.add_row(*row)
    parts = [layers, _kv_table("Totals", totals_rows(report))]
    if "interface" in report:
        parts.append(interface_table(report["interface"]))
    return Group(*parts)


INTERFACE_HEADERS = ("", "name", "shape", ".npz key", "what")


def interface_rows(interface: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """One row per input and output of Program.interface (the terminal and report.html both show them)."""
    rows = [("input", d["name"], " x ".join(map(str, d["shape"])), d["npz_key"], f"{d['encoding']}: {d['accepts']}")
            for d in interface["inputs"]]
    return rows + [("output", d["name"], " x ".join(map(str, d["shape"])), d["npz_key"], d["holds"])
                   for d in interface["outputs"]]


def interface_caption(interface: Mapping[str, Any]) -> str:
    return f"run: {interface['run']} ({interface['ticks']} ticks per inference by default)"


def interface_table(interface: Mapping[str, Any]) -> Table:
    """The program's inputs and outputs and how to run it (Program.interface)."""
    table = Table(title="Inputs and outputs", title_justify="left", caption=interface_caption(interface),
                  caption_justify="left")
    for head in INTERFACE_HEADERS:
        table.add_column(head)
    for row in interface_rows(interface):
        table.add_row(*row)
    return table


def run_sections(summary: Mapping[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """A run summary's rows by topic (the terminal shows them as one table, the run report as one each). The
    float reference backend has no hardware counters, so those rows appear only when present."""
    counts = summary.get("counts", {})
    sections = [("Run", [("backend", str(summary["backend"])), ("batch", fmt(summary["batch"])), ("ticks", fmt(summary["ticks"]))]),
                ("Stage times", [*((f"{stage} time", fmt_seconds(t)) for stage, t in
                                   summary.get("times_s", {"simulate": summary["wall_s"]}).items()),
                                 ("ticks / s", fmt(summary["ticks_per_s"]))]),
                ("Counts", [(key.replace("_", " "), fmt(counts[key])) for key in COUNT_KEYS if key in counts])]
    if "energy" in summary:
        sections.append(("Energy and real time", [("merges", fmt(summary["merges"])),
                                                  ("energy / inference", energy_summary(summary["energy"])),
                                                  *realtime_rows(summary["realtime"])]))
    sections.append(("Spikes per layer", [(f"spikes {k}", fmt(v)) for k, v in summary.get("spike_counts", {}).items()]))
    return [(title, rows) for title, rows in sections if rows]


def run_table(summary: Mapping[str, Any]) -> Table:
    return _kv_table(f"Run on {summary['backend']}", [row for _, rows in run_sections(summary) for row in rows])


def targets_table(rows: list[Mapping[str, Any]]) -> Table:
    table = Table(title="Targets", title_justify="left")
    for head, _key, justify in TARGET_COLUMNS:
        table.add_column(head, justify=justify)
    for r in rows:
        table.add_row(*(fmt(r[key]) for _head, key, _justify in TARGET_COLUMNS))
    return table


def track_table(out: Mapping[str, Any]) -> Table:
    """One tracked clip: accuracy, then per-frame chip figures under the program's schedule (sequential: the
    scales one after another on one copy of the network; parallel: side by side on a copy each)."""
    pf = out["per_frame"]
    schedule = out.get("schedule", "sequential")
    how, runs = (("side by side", 1) if schedule == "parallel" else ("one after another", out["scales"]))
    rows = [("clip / frames", f"{out['clip']} / {out['frames']}"), ("backend / score", f"{out['backend']} / {out['score']}"),
            ("success AUC", f"{out['auc']:.3f}"), ("precision @ 20 px", f"{out['precision']:.3f}"),
            ("schedule", f"{schedule}: {out['scales']} scales {how}, {runs} x {out['ticks_per_scale']} ticks per frame"),
            ("ticks / frame", f"{fmt(pf['ticks'])} (with the exemplar's {fmt(out.get('exemplar_ticks', 0))} ticks "
                              f"over {out['frames'] - 1} frames)")]
    if out["backend"] == "emulator":
        rows += [("cores / chips", f"{fmt(out['cores'])} / {fmt(out['chips'])}")] if "cores" in out else []
        rows += [("chip time / frame", fmt_seconds(pf["chip_ms"] / 1e3)), ("frames / s at the chip's tick", fmt(pf["fps"])),
                 ("energy / frame", f"{fmt(pf['energy_uj'])} µJ"), ("cores rewritten per bind", fmt(out["cores_rewritten"][0]) if out["cores_rewritten"] else "—"),
                 ("emulator wall / frame", fmt_seconds(pf["emulator_s"]))]
    return _kv_table("SiamSNN track", rows)


def emit(as_json: bool, console: Console, data: Any, table: str) -> bool:
    """One JSON object on stdout (`as_json`), else the table this module builds under the name `table`; True if
    JSON was printed."""
    if as_json:
        print(json.dumps(data, sort_keys=True))
        return True
    console.print(globals()[table](data))
    return False


def _scale_caption(s: Mapping[str, Any], opening: str) -> str:
    return f"Ray start-up {s['ray_startup_s']:.2f} s; workers opening the {opening} {s['workers_open_s']:.2f} s"


def eval_table(s: Mapping[str, Any]) -> Table:
    """`neurocomp eval`: accuracy, spikes and energy per sample, and where the time went."""
    t = Table(title=f"eval: {s['samples']} samples, {s['chunks']} chunks, {s['workers']} worker(s)", title_justify="left")
    t.add_column("figure")
    t.add_column("value", justify="right")
    for name, value in (("accuracy", f"{s['accuracy']:.4f} ({s['correct']}/{s['samples']})"),
                        ("recorded spikes / sample", f"{s['spikes_per_sample']:.1f}"),
                        ("chip spikes / sample", f"{s['chip_spikes_per_sample']:.1f}"),
                        ("energy / sample", f"{s['energy_per_sample_j'] * 1e6:.3f} uJ"),
                        ("dynamic energy / sample", f"{s['dynamic_per_sample_j'] * 1e6:.3f} uJ"),
                        ("Ray start-up", f"{s['ray_startup_s']:.2f} s"),
                        ("workers opening the program", f"{s['workers_open_s']:.2f} s"), ("work", f"{s['work_s']:.2f} s"),
                        ("samples / s", f"{s['samples_per_s']:.1f}")):
        t.add_row(name, value)
    return t


def clips_table(r: Mapping[str, Any]) -> Table:
    """`neurocomp track --clips`: OTB figures per clip and over all, the chip's FPS and energy per frame."""
    t = Table(title=f"track: {r['clips']} clips of {r['frames']} frames, {r['workers']} worker(s)", title_justify="left")
    for head in ("clip", "AUC", "precision@20", "chip FPS", "energy / frame"):
        t.add_column(head, justify="right")
    for c in r["per_clip"]:
        t.add_row(str(c["clip"]), f"{c['auc']:.3f}", f"{c['precision']:.3f}", f"{c['fps']:.1f}", f"{c['energy_uj']:.1f} uJ")
    t.add_row("all", f"{r['auc']:.3f}", f"{r['precision']:.3f}", f"{r['chip_fps']:.1f}", f"{r['energy_uj_per_frame']:.1f} uJ")
    t.caption = (f"{_scale_caption(r, 'program')}; tracking {r['work_s']:.2f} s "
                 f"({r['host_fps']:.2f} emulated frames / s)")
    return t


def grid_table(r: Mapping[str, Any]) -> Table:
    """`neurocomp sweep`: accuracy, cores and energy per grid point."""
    t = Table(title=f"sweep: {len(r['rows'])} grid points, {r['workers']} worker(s)", title_justify="left")
    for head in ("target", "T", "weights", "accuracy", "cores", "energy / sample"):
        t.add_column(head, justify="left" if head in ("target", "weights") else "right")
    for row in r["rows"]:
        t.add_row(row["target"], str(row["timesteps"]), row["weights"], f"{row['accuracy']:.4f}", str(row["cores"]),
                  f"{row['energy_uj']:.3f} uJ")
    t.caption = f"{_scale_caption(r, 'model')}; work {r['work_s']:.2f} s"
    return t
