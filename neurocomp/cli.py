"""`neurocomp` command line: compile, run, report, targets, convert, export, track, check, train.

Exit codes: 0 success, 2 user error (one line on stderr, no traceback), 1 internal error.
Exit 2 includes an output path that neurocomp.safewrite refuses (it would replace or hold
something neurocomp did not write, or an input) and a program that fails verification
(neurocomp.program.load: a missing, extra, tampered, malformed or wrong-version file). Every
writing command checks its output before the slow part and writes through a temporary
sibling, so an error leaves no partial file, temp or empty directory, and the previous
artifact as it was.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable, NoReturn, Sequence

import numpy as np
from rich.console import Console

from neurocomp import __version__, cli_check, cli_nir, cli_sweep, cli_train
from neurocomp.errors import FormatError, UserError
from neurocomp.progress import steps
from neurocomp.safewrite import check
from neurocomp.target import artifact_exports, compile_flags, export_flags

EXIT_USER, EXIT_INTERNAL = 2, 1
MAX_SEED = 2 ** 63 - 1
MIN_RATE = 1e-9  # far below any real network; near 0 the traffic and energy estimates overflow to inf and NaN


class _Parser(argparse.ArgumentParser):
    """argparse whose mistakes are UserErrors: one line and exit 2 like every other, not usage plus a line."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.partition(" ")[2]
        raise UserError(f"{command}: {message}" if command else message)


def _count(lo: int, hi: int = MAX_SEED) -> Callable[[str], int]:
    """argparse type: an integer in [lo, hi]; the error names the option (argparse prefixes it)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be {f'>= {lo}' if value < lo else f'<= {hi}'}, got {value}")
        return value
    return parse


def _real(lo: float, hi: float = math.inf, open_lo: bool = False) -> Callable[[str], float]:
    """argparse type: a finite number in [lo, hi] ((lo, hi] with open_lo); NaN and inf are refused."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or not lo <= value <= hi or (open_lo and value == lo):
            span = f"{'(' if open_lo else '['}{lo:g}, {hi:g}{')' if math.isinf(hi) else ']'}"
            raise argparse.ArgumentTypeError(f"must be a finite number in {span}, got {text}")
        return value
    return parse


SEED, TICKS, POSITIVE = _count(0), _count(1), _real(0.0, open_lo=True)


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI's parser. `command` None builds every command's options; a command name builds only the heavy
    ones that command needs (convert's defaults import torch, which no other command should pay for)."""
    p = _Parser(prog="neurocomp", description="Compile spiking neural networks for neuromorphic chips.")
    p.add_argument("--version", action="version", version=f"neurocomp {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compile", help="compile a .pt or .nir model for a target")
    c.add_argument("model")
    c.add_argument("--target", required=True, help="truenorth, loihi, loihi2 or a spec.toml path")
    c.add_argument("-o", "--out", help="program directory (default build/<stem>.<target>)")
    c.add_argument("--timesteps", type=TICKS, help="ticks per inference (default: the T a neurocomp-trained model "
                                                   "was trained for, else 32)")
    c.add_argument("--seed", type=SEED, default=0)
    c.add_argument("--rate", type=_real(MIN_RATE, 1.0), default=0.05,
                   help=f"assumed spikes/neuron/tick for compile-time estimates, in [{MIN_RATE:g}, 1]")
    cli_nir.add_options(c, POSITIVE)
    c.add_argument("--profile", metavar="INPUT.npz",
                   help="calibration input (as for run): place by the traffic measured on its first samples")
    c.add_argument("--congestion", type=_real(0.0), default=0.5, metavar="GAMMA",
                   help="placement weight of the link-load spread next to spike-hops (default 0.5; 0 = spike-hops only)")
    for flag in compile_flags():   # a family's own options, e.g. truenorth's --tn-weights
        c.add_argument(flag.flag, choices=flag.choices, help=flag.help)
    exports = artifact_exports()   # a family's extra program files, e.g. loihi's netx
    c.add_argument("--export", choices=tuple(a.name for a in exports),
                   help="also write into the program: " + "; ".join(f"{a.help} ({a.family} programs)" for a in exports))
    c.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    r = sub.add_parser("run", help="run a compiled program")
    r.add_argument("program")
    r.add_argument("--input", required=True, help=".npz with key 'input' (and one key per input name if several)")
    r.add_argument("--backend", choices=("emulator", "reference", "lava"), default="emulator")
    r.add_argument("--device", choices=("numpy", "cpu", "cuda"), default="numpy",
                   help="the emulator on numpy, or on torch's cpu or cuda (the same integers)")
    r.add_argument("--ticks", type=TICKS, help="ticks to run (default: the input's ticks, or the program's timesteps)")
    r.add_argument("--out", help="write outputs to this .npz")
    r.add_argument("--report", metavar="OUT.html",
                   help="write a run report page: summary, energy by term, spike rasters, the first output (opens offline)")
    r.add_argument("--seed", type=SEED, default=0)
    r.add_argument("--json", action="store_true")
    rp = sub.add_parser("report", help="show a compiled program's report")
    rp.add_argument("program")
    rp.add_argument("--json", action="store_true")
    t = sub.add_parser("targets", help="list the built-in targets and their key limits")
    t.add_argument("--json", action="store_true")
    _convert_parser(sub, command in (None, "convert"))
    _track_parser(sub)
    _eval_parser(sub)
    cli_check.add_parser(sub, POSITIVE)
    cli_train.add_parser(sub, _count, _real)
    cli_sweep.add_parser(sub, _count, POSITIVE, _scale_options)
    e = sub.add_parser("export", help="write a .pt/.nir model, or a compiled program's model, as NIR; or a compiled "
                                      "program in a format its target family declares (e.g. NSCS model JSON)")
    e.add_argument("model", help="a .pt or .nir model, or a program directory (its model.pt is exported)")
    e.add_argument("--nir", help="output .nir file")
    e.add_argument("--dt", type=POSITIVE, default=1e-3, help="time step that maps LIF decays to NIR time constants")
    e.add_argument("--lif-r", choices=cli_nir.LIF_RS, default=cli_nir.LIF_RS[0],
                   help="LIF input gain as written: r = 1 with tau/dt folded into the weights before it (every reader, "
                        "Norse's too), r = tau/dt (exact both ways; snnTorch, SpikingJelly), or 'auto': r = 1 wherever "
                        "the LIF's inputs take the fold; docs/NIR.md")
    e.add_argument("--bias-timing", choices=cli_nir.BIAS_TIMINGS, default="held",
                   help="'held': write what the model computes in NIR's terms, each bias starting with its layer's "
                        "input (refused where NIR cannot say it); 'early': the biases as they act here, from tick 0, "
                        "in a file marked so (only neurocomp reads the mark); also how a .nir model is read")
    for flag in export_flags():   # a family's own program outputs, e.g. truenorth's NSCS model JSON
        e.add_argument(flag.flag, metavar=flag.metavar, help=f"{flag.help} ({flag.family} programs)")
    e.add_argument("--input", metavar="IN.npz", help="an input, as for run, for the outputs that encode one")
    e.add_argument("--ticks", type=TICKS, help="with --input: ticks to encode (default: as run)")
    e.add_argument("--seed", type=SEED, default=0, help="with --input: the encoding seed, as for run")
    e.add_argument("--sample", type=_count(0), default=0, help="with --input: which sample of its batch (default 0)")
    e.add_argument("--json", action="store_true", help="print what was written as one JSON object")
    for command_parser in sub.choices.values():
        command_parser.add_argument("--quiet", action="store_true", help="print nothing but errors (and --json's object)")
    return p


def _convert_parser(sub, full: bool) -> None:
    """`full` False: the command is listed, its options (whose defaults import torch) are left out."""
    c = sub.add_parser("convert", help="convert a torch ANN (.pt2 from torch.export.save) into an SNN .pt",
                       description="Only convert .pt2 files you trust: torch.export.load is not safe for hostile "
                                   "files (neurocomp refuses pickled payloads and AOTInductor code before loading).")
    if not full:
        return
    from neurocomp.convert.options import ENCODINGS, MAXPOOL, NORMALISATIONS, ConvertOptions

    d = ConvertOptions()
    c.add_argument("model", help=".pt2 written by torch.export.save")
    c.add_argument("--calibration", required=True, help=".npz whose key 'input' holds (samples, *input_shape)")
    c.add_argument("-o", "--out", help="SNN .pt to write (default build/<stem>_snn.pt)")
    c.add_argument("--timesteps", type=TICKS, default=d.timesteps, help=f"T for calibration and error estimates ({d.timesteps})")
    c.add_argument("--method", choices=NORMALISATIONS, default=d.normalisation,
                   help=f"normalisation: one lambda per layer or per channel ({d.normalisation})")
    c.add_argument("--percentile", type=_real(0.0, 100.0, open_lo=True), default=d.percentile,
                   help=f"of non-zero activations ({d.percentile})")
    c.add_argument("--reset", choices=("subtract", "zero"), default=d.reset,
                   help=f"IF reset ({d.reset}); loihi needs zero")
    c.add_argument("--encoding", choices=ENCODINGS, default=d.encoding, help=f"input encoding ({d.encoding})")
    c.add_argument("--v-init", type=_real(0.0, math.nextafter(1.0, 0.0)), default=d.v_init,
                   help=f"initial potential / threshold ({d.v_init})")
    c.add_argument("--calibration-batches", type=_count(0), default=d.calibration_batches,
                   help=f"batches for bias calibration, 0 = off ({d.calibration_batches})")
    c.add_argument("--no-latency-compensation", action="store_true", help="keep v_init free of bias compensation")
    c.add_argument("--maxpool", choices=MAXPOOL, default=d.maxpool, help=f"max pooling: spiking (IF tree), avg or error ({d.maxpool})")
    c.add_argument("--pool-layers", action="store_true",
                   help="each pool after a ReLU as its own IF layer (narrower fan-in of the next layer)")
    c.add_argument("--seed", type=SEED, default=d.seed)
    c.add_argument("--json", action="store_true", help="print the conversion record as one JSON object")


def _track_parser(sub) -> None:
    k = sub.add_parser("track", help="track a synthetic clip with a compiled SiamSNN program on the emulated chip")
    k.add_argument("program")
    k.add_argument("--clip", type=SEED, default=0, help="seed of the synthetic test clip (default 0)")
    k.add_argument("--frames", type=_count(2), default=40)
    k.add_argument("--ticks", type=TICKS, help="ticks per search scale (default: the SiamSNN's own, e.g. 20 or 16)")
    k.add_argument("--exemplar-ticks", type=TICKS, default=64)
    k.add_argument("--tau0", type=SEED, help="transient ticks dropped / two-status integrate-only window "
                                             "(default: the SiamSNN's own)")
    k.add_argument("--score", choices=("potential", "spikes"), default="potential",
                   help="hybrid read-out of the correlation, or two-status spike counts")
    k.add_argument("--backend", choices=("emulator", "reference"), default="emulator")
    k.add_argument("--device", choices=("numpy", "cpu", "cuda"), default="numpy",
                   help="the emulator on numpy, or on torch's cpu or cuda (the same integers)")
    k.add_argument("--gif", help="write the clip with true (green) and predicted (red) boxes")
    k.add_argument("--clips", type=_count(1, 100_000), default=1,
                   help="track this many clips (seeds --clip, --clip + 1, ...): OTB AUC, precision@20 and FPS over them")
    k.add_argument("--out", metavar="OUT.json", help="with --clips: write the per-clip boxes and the OTB figures")
    _scale_options(k, "clips")
    k.add_argument("--json", action="store_true")


def _scale_options(p: argparse.ArgumentParser, what: str) -> None:
    """--workers / --address / --state: where the chunks run and where finished ones are kept (docs/CLUSTER.md)."""
    p.add_argument("--workers", type=_count(1, 4096), default=1,
                   help=f"{what} in parallel on a local Ray of this many CPUs (default 1: no Ray)")
    p.add_argument("--address", metavar="HOST:PORT", help="run on the Ray cluster whose head node is there")
    p.add_argument("--state", metavar="DIR", help="keep each finished chunk in DIR; a rerun with DIR resumes")


def _eval_parser(sub) -> None:
    v = sub.add_parser("eval", help="classification accuracy, spikes and energy per sample over a dataset")
    v.add_argument("program")
    v.add_argument("--data", required=True, help=".npz with the inputs (as for run) and the labels")
    v.add_argument("--labels", default="labels", help="the labels' key in --data (default 'labels')")
    v.add_argument("--chunk", type=_count(1, 1 << 20), default=64, help="samples per task (default 64)")
    v.add_argument("--backend", choices=("emulator", "reference"), default="emulator")
    v.add_argument("--ticks", type=TICKS, help="ticks per sample (default: as run)")
    v.add_argument("--seed", type=SEED, default=0, help="encoding seed; chunk k runs with seed + k")
    v.add_argument("--out", metavar="OUT.npz", help="write per-sample prediction, label and spikes")
    _scale_options(v, "samples")
    v.add_argument("--json", action="store_true")


def _device(args: argparse.Namespace) -> str | None:
    """--device as the emulator takes it: None for numpy, checked before any work (neurocomp.runner.check_device)."""
    from neurocomp.runner import check_device

    device = None if args.device == "numpy" else args.device
    check_device(device, args.backend)
    return device


def _emit(args: argparse.Namespace, console: Console, data: Any, table: str) -> bool:
    """One JSON object on stdout with --json, else the named table of neurocomp.report.tables; True if JSON."""
    from neurocomp.report.tables import emit

    return emit(args.json, console, data, table)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _compile(args: argparse.Namespace, console: Console) -> int:
    from neurocomp.compiler import CompileOptions, compile_graph, compile_stages
    from neurocomp.frontend import load_model
    from neurocomp.program import KIND
    from neurocomp.target import load_target

    model = Path(args.model)
    target = load_target(args.target)
    graph = load_model(model, **cli_nir.reading(args))
    out = Path(args.out) if args.out else Path("build") / f"{model.stem}.{target.name}"
    inputs = [model, *([Path(args.profile)] if args.profile else []),
              *([Path(args.target)] if Path(args.target).is_file() else [])]
    check(out, KIND, inputs)
    declared = {f.field: getattr(args, f.dest) for f in compile_flags() if getattr(args, f.dest) is not None}
    opts = CompileOptions(timesteps=args.timesteps, seed=args.seed, rate=args.rate, congestion=args.congestion, **declared)
    profile = _load_inputs(Path(args.profile), [i.name for i in graph.inputs]) if args.profile else None
    with steps(console, "compiling", len(compile_stages(profile is not None))) as step:
        program = compile_graph(graph, target, opts, _sha256(model), progress=step, profile=profile).program
    program.save(out, export=args.export, inputs=inputs)
    if not _emit(args, console, program.full_report() | {"program": str(out)}, "compile_table"):
        console.print(f"wrote {out}")
    for note in program.report["adapted"]:
        console.print(f"note: {note}", style="yellow")
    return 0


def _load_inputs(path: Path, names: Sequence[str]) -> dict[str, np.ndarray]:
    from neurocomp.encoding import read_npz

    data = read_npz(path)
    if len(names) == 1 and "input" in data:
        return {names[0]: data["input"]}
    missing = [n for n in names if n not in data]
    if missing:
        raise FormatError(f"{path}: missing input key(s) {missing}; expected 'input' or {list(names)}")
    return {n: data[n] for n in names}


def _run(args: argparse.Namespace, console: Console) -> int:
    from neurocomp.program import Program
    from neurocomp.report.page import HTML_KIND
    from neurocomp.runner import OUTPUTS_KIND, write_outputs

    sources = [Path(args.program), Path(args.input)]
    device = _device(args)
    if args.out:
        check(Path(args.out), OUTPUTS_KIND, sources)
    if args.report:
        if args.out and Path(args.out).resolve() == Path(args.report).resolve():
            raise UserError(f"--out and --report name the same file {args.out}; nothing was changed")
        check(Path(args.report), HTML_KIND, sources)
    with steps(console, "running", 2 + bool(args.out) + bool(args.report)) as step:
        step("loading and verifying the program")
        start = time.perf_counter()
        program = Program.load(args.program)
        load_s = time.perf_counter() - start
        inputs = _load_inputs(Path(args.input), [name for name, _ in program.netlist.inputs])
        step(f"encoding and simulating on the {args.backend}")
        result = program.run(inputs, backend=args.backend, ticks=args.ticks, seed=args.seed, device=device)
        summary = {**result.summary, "times_s": {**result.times_s, "load": load_s}}
        if args.out:
            step("writing the outputs")
            write_outputs(Path(args.out), result.outputs, sources)
        if args.report:
            from neurocomp.report.run_html import write_run_html   # matplotlib: only when a page is asked for

            step("writing the run report")
            write_run_html(Path(args.report), summary, result.outputs, Path(args.program).name,
                           program.netlist.outputs[0], sources)
    _emit(args, console, summary, "run_table")
    return 0


def _track(args: argparse.Namespace, console: Console) -> int:
    from neurocomp.models.chip_tracker import GIF_KIND, load_tracker, track_clip, write_gif
    from neurocomp.models.siamsnn import schedule_of
    from neurocomp.memory import require
    from neurocomp.models.tracking_data import DEFAULT_SIZE, make_clip

    if args.tau0 is not None and args.ticks is not None and args.tau0 >= args.ticks:
        raise UserError(f"--tau0 ({args.tau0}) must be below --ticks ({args.ticks})")
    require(f"track --frames {args.frames:,}", 2.0 * args.frames * math.prod(DEFAULT_SIZE) * 3)  # the clip, a frame copy
    if args.clips > 1 or args.workers > 1 or args.address or args.state or args.out:
        return _track_clips(args, console)
    if args.gif:
        check(Path(args.gif), GIF_KIND, [Path(args.program)])
    device = _device(args)
    with steps(console, "loading the tracker", None) as step:
        step("program, source graph and read-out")
        siamese, config = load_tracker(Path(args.program), timesteps=args.ticks, exemplar_ticks=args.exemplar_ticks,
                                       tau0=args.tau0, score=args.score, backend=args.backend, device=device)
    opts = siamese.opts
    clip = make_clip(10_000 + args.clip, args.frames, split="test")
    with steps(console, "tracking", args.frames - 1, on_start=False) as step:
        out = track_clip(siamese, config, clip, on_frame=lambda k: step(f"frame {k}"))
    if args.gif:
        write_gif(Path(args.gif), clip, out["boxes"], inputs=(Path(args.program),))
    out["boxes"] = out["boxes"].round(2).tolist()
    schedule, _ = schedule_of(siamese.graph)
    out |= {"clip": args.clip, "frames": args.frames, "backend": args.backend, "score": args.score,
            "ticks_per_scale": opts.timesteps + max((siamese.lag.get(r, 0) for r in siamese.read), default=0),
            "scales": config.scale_num, "schedule": schedule, "exemplar_ticks": opts.exemplar_ticks, "tau0": opts.tau0,
            "weighting": opts.weighting,
            "cores": siamese.program.netlist.n_cores, "chips": siamese.program.placed.n_chips}
    _emit(args, console, out, "track_table")
    return 0


def _eval(args: argparse.Namespace, console: Console) -> int:
    from neurocomp.evaluate import EVAL_KIND, EvalOptions, check_data, evaluate, write_eval
    from neurocomp.program import Program
    from neurocomp.scale import Pool, check_outputs

    start = time.perf_counter()
    src, data = Path(args.program), Path(args.data)
    check_outputs(args.out, EVAL_KIND, args.state, [src, data])
    program = Program.load(src)
    opts = EvalOptions(labels=args.labels, chunk=args.chunk, backend=args.backend, ticks=args.ticks, seed=args.seed)
    samples, _ = check_data(program, data, opts)
    with Pool(args.workers, args.address) as pool, \
            steps(console, "evaluating", -(-samples // args.chunk), on_start=False) as step:
        work_start = time.perf_counter()
        summary, per_sample = evaluate(src, data, opts, pool, Path(args.state) if args.state else None,
                                       on_done=lambda k: step(f"chunk {k}"), program=program)
        wall = pool.work_s(work_start)   # before Ray shuts down, which is not work
    if args.out:
        write_eval(Path(args.out), per_sample, [src, data])
    summary |= pool.figures(wall, start) | {"samples_per_s": samples / max(wall, 1e-12)}
    _emit(args, console, summary, "eval_table")
    return 0


def _track_clips(args: argparse.Namespace, console: Console) -> int:
    """track --clips: one task per clip (neurocomp.tracking), serially or on Ray."""
    from neurocomp.scale import Pool, check_outputs
    from neurocomp.tracking import TRACKS_KIND, benchmark, open_tracker, write_tracks

    start = time.perf_counter()
    src = Path(args.program)
    if args.gif:
        raise UserError("--gif draws one clip; leave out --clips, --workers, --address, --state and --out")
    check_outputs(args.out, TRACKS_KIND, args.state, [src])
    overrides = {"timesteps": args.ticks, "exemplar_ticks": args.exemplar_ticks, "tau0": args.tau0,
                 "score": args.score, "backend": args.backend}
    tracker = open_tracker(src, overrides)   # a bad program or option: one line before Ray starts
    with Pool(args.workers, args.address) as pool, steps(console, "tracking", args.clips, on_start=False) as step:
        work_start = time.perf_counter()
        record = benchmark(src, args.clip, args.clips, args.frames, overrides, pool,
                           Path(args.state) if args.state else None, on_done=lambda k: step(f"clip {args.clip + k}"),
                           tracker=tracker)
        wall = pool.work_s(work_start)   # before Ray shuts down, which is not work
    if args.out:
        write_tracks(Path(args.out), record, [src])
    record |= pool.figures(wall, start) | {"host_fps": args.clips * (args.frames - 1) / max(wall, 1e-12)}
    _emit(args, console, record, "clips_table")
    return 0


def _report(args: argparse.Namespace, console: Console) -> int:
    from neurocomp.program import Program

    program = Program.load(args.program)
    _emit(args, console, program.full_report() | {"interface": program.interface()}, "compile_table")
    return 0


def target_rows() -> list[dict[str, Any]]:
    from neurocomp.target import BUILTIN, load_spec

    rows = []
    for name in BUILTIN:
        s = load_spec(name)
        timing = f"tick {s['timing.tick_s'] * 1e3:g} ms" if s.get("timing.tick_s") else \
            f"tick >= {s['timing.barrier_min_s'] * 1e9:g} ns barrier"
        rows.append({"name": s.name, "family": s.family, "description": s.description,
                     "neurons_per_core": s["core.neurons"], "axons_per_core": s["core.axons"],
                     "cores_per_chip": s.cores_per_chip, "max_chips": s["chip.max_chips"], "tick_or_timing": timing})
    return rows


def _targets(args: argparse.Namespace, console: Console) -> int:
    rows = target_rows()
    _emit(args, console, rows, "targets_table")
    return 0


def _convert(args: argparse.Namespace, console: Console) -> int:
    from neurocomp.convert import ConvertOptions, conversion_info, convert, load_exported
    from neurocomp.convert.pipeline import input_shape_of
    from neurocomp.frontend.ptfile import SNN_KIND, save_graph

    opts = ConvertOptions(normalisation=args.method, percentile=args.percentile, reset=args.reset, v_init=args.v_init,
                          latency_compensation=not args.no_latency_compensation,
                          calibration_batches=args.calibration_batches, timesteps=args.timesteps,
                          encoding=args.encoding, maxpool=args.maxpool, pool_layers=args.pool_layers,
                          seed=args.seed)
    model = Path(args.model)
    out = Path(args.out) if args.out else Path("build") / f"{model.stem}_snn.pt"
    sources = [model, Path(args.calibration)]
    check(out, SNN_KIND, sources)
    program = load_exported(model)
    shape = input_shape_of(program)
    calib = _load_inputs(Path(args.calibration), ["input"])["input"]
    with steps(console, "converting", None) as step:
        step("calibrating")
        graph = convert(program, calib, input_shape=shape, method=opts)
    save_graph(graph, out, sources)
    info = conversion_info(graph)
    if args.json:
        print(json.dumps(info | {"output": str(out)}, sort_keys=True))
    else:
        console.print(_conversion_table(info))
        for note in info["notes"]:
            console.print(f"note: {note}")
        console.print(f"wrote {out}")
    return 0


def _conversion_table(info: dict[str, Any]):
    from rich.table import Table

    t = Table(title=f"Conversion ({info['method']['normalisation']}-wise {info['method']['percentile']} percentile, "
                    f"reset {info['method']['reset']}, T = {info['method']['timesteps']})", title_justify="left")
    for head in ("layer", "lambda min", "lambda max", "RMSE vs ANN", "compared"):
        t.add_column(head, justify="left" if head in ("layer", "compared") else "right")
    for name, row in info["layers"].items():
        t.add_row(name, f"{min(row['lambda']):.4g}", f"{max(row['lambda']):.4g}", f"{row['rmse']:.4f}", row["kind"])
    if "argmax_agreement" in info:
        t.caption = f"SNN argmax = ANN argmax on {info['argmax_agreement']:.1%} of {info['samples']} calibration samples"
    return t


def _export(args: argparse.Namespace, console: Console) -> int:
    chosen = {f: Path(getattr(args, f.dest)) for f in export_flags() if getattr(args, f.dest)}
    if args.nir and chosen:
        raise UserError(f"export: --nir writes a model; {', '.join(f.flag for f in chosen)} write a program's chip: "
                        "one at a time")
    if not (args.nir or chosen):
        raise UserError("export: name an output: --nir OUT.nir" +
                        "".join(f", or {f.flag} {f.metavar}" for f in export_flags()))
    return _export_nir(args, console) if args.nir else _export_program(args, chosen, console)


def _export_nir(args: argparse.Namespace, console: Console) -> int:
    from neurocomp.frontend import load_model, save_nir
    from neurocomp.frontend.nirgraph import NIR_KIND
    from neurocomp.program import Program

    src = Path(args.model)
    out = Path(args.nir)
    if out.suffix != ".nir":
        raise UserError(f"--nir {out}: the output file must end in .nir")
    program = Program.load(src) if src.is_dir() else None   # a program is verified before anything else
    check(out, NIR_KIND, [src])
    graph = program.source_graph() if program is not None else load_model(src, dt=args.dt, bias_timing=args.bias_timing)
    save_nir(graph, out, dt=args.dt, inputs=[src], lif_r=args.lif_r, bias_timing=args.bias_timing)
    if args.json:
        print(json.dumps({"nir": str(out), "source": str(src), "dt": args.dt, "bias_timing": args.bias_timing},
                         sort_keys=True))
    else:
        console.print(f"wrote {out}")
    return 0


def _export_program(args: argparse.Namespace, chosen: dict, console: Console) -> int:
    """A family's program outputs (neurocomp.exporting); the input, when given, read as `run` reads it."""
    from neurocomp.exporting import ExportInput, export_program

    src = Path(args.model)
    read = (lambda names: _load_inputs(Path(args.input), names)) if args.input else None
    given = ExportInput((src, *([Path(args.input)] if args.input else [])), read, args.ticks, args.seed, args.sample)
    with steps(console, "exporting", len(chosen)) as step:
        done = export_program(src, chosen, given, step)
    if args.json:
        print(json.dumps(done, sort_keys=True))
    else:
        console.print("\n".join(f"wrote {done[f.dest]}" for f in chosen if f.dest in done))
    return 0


COMMANDS = {"compile": _compile, "run": _run, "report": _report, "targets": _targets, "convert": _convert,
            "export": _export, "track": _track, "eval": _eval, "check": cli_check.run,
            "train": cli_train.run, "sweep": cli_sweep.run}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Python warnings raised meanwhile (numpy overflow on absurd values, torch notes) are
    held back: a user error prints its one line only; a success prints each distinct warning as one line."""
    try:
        with warnings.catch_warnings(record=True) as caught:  # the usual filters: deprecations stay hidden
            code = _dispatch(argv)
        for text in dict.fromkeys(" ".join(str(w.message).split()) for w in caught):
            print(f"neurocomp: warning: {text}", file=sys.stderr)
        return code
    except UserError as exc:
        print(f"neurocomp: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_USER
    except BrokenPipeError:
        return _closed_pipe()
    except KeyboardInterrupt:
        print("neurocomp: interrupted", file=sys.stderr)
        return EXIT_USER
    except Exception as exc:  # noqa: BLE001 - the one place that turns bugs into exit 1
        if os.environ.get("NEUROCOMP_DEBUG"):
            traceback.print_exc()
        print(f"neurocomp: internal error: {type(exc).__name__}: {exc} (set NEUROCOMP_DEBUG=1 for a traceback)", file=sys.stderr)
        return EXIT_INTERNAL


class _Console(Console):
    """rich ends the process with exit 1 on a closed pipe; hand it to main like any other write."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


def _dispatch(argv: Sequence[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = _parser(command or "").parse_args(argv)   # no command (--help, --version): no command's heavy options
    code = COMMANDS[args.command](args, _Console(stderr=args.__dict__.get("json", False), quiet=args.quiet))
    sys.stdout.flush()  # a closed pipe shows up here, inside main's handlers, not at interpreter exit
    return code


def _closed_pipe() -> int:
    """The reader went away (`neurocomp targets --json | head -c1`): stop quietly like other Unix tools. stdout
    is pointed at /dev/null so the interpreter's final flush cannot raise again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (captured in tests): nothing left to flush
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
