"""The compiled program: one value that compile returns, save writes, load verifies and reads, and run runs.

Files: manifest.json, arrays.npz (the netlist and placement), model.pt (the float graph it was
compiled from), target.toml, report.json, report.html, a family's extra file where `export` names one
(targets/<family>/cli.toml [[artifact]]: loihi's netx writes network.net) and timings.json. manifest.json names the schema and version and lists every other file: under
"files" with its sha256, under "volatile" the one file whose content may differ between runs.

Determinism: every hashed file (and so manifest.json) is byte-identical for the same inputs and
options (sorted keys, fixed zip timestamps, no wall-clock values). The wall-clock compile times
are volatile, so they live in timings.json alone: listed as volatile rather than hashed, and
checked against its schema ({"compile_time_s": {stage: seconds >= 0}}) instead; report.json and
report.html leave them out, and `Program.full_report` merges them back in for display.

`load` verifies before anything is used: the manifest's schema, version, keys and types; that
the directory holds exactly the listed files and each matches its hash; then the structure of
the arrays (keys present, integer dtypes, shapes consistent, every index in range). Anything
missing, extra, tampered or malformed is a FormatError naming the file and what is wrong.
`save` writes through neurocomp.safewrite: a temporary sibling renamed into place, replacing
only an existing program (or an empty directory) that holds nothing its manifest does not list.
A loaded program reads its model.pt (which needs torch) only when something asks for the graph.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import shutil
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from neurocomp.encoding import ENCODINGS
from neurocomp.errors import FormatError, UserError
from neurocomp.ir.netlist import LayerMap, Netlist, Synapses
from neurocomp.npz import read_npz, write_npz
from neurocomp.realtime import realtime
from neurocomp.safewrite import Kind, writing
from neurocomp.target import Target, artifact_exports, load_target

if TYPE_CHECKING:
    from neurocomp.ir.graph import Graph
    from neurocomp.route import Routes
    from neurocomp.runner import Result

SCHEMA = "neurocomp.program"
VERSION = 3   # 3: synapses as shared per-core lists (neurocomp.ir.synapses)
LISTING_VERSIONS = (2, VERSION)   # versions whose manifest lists its files
MANIFEST = "manifest.json"
REQUIRED_FILES = ("arrays.npz", "model.pt", "target.toml", "report.json", "report.html")
OPTIONAL_FILES = ("network.net",)
TIMINGS = "timings.json"   # the one volatile file
V1_FILES = frozenset(REQUIRED_FILES + OPTIONAL_FILES)   # version 1 listed no files; these are all it wrote
NETLIST_ARRAYS = ("neuron_ptr", "axon_ptr", "core_layer", "core_template", "template_ptr", "syn_axon", "syn_neuron",
                  "edge_src", "edge_axon", "edge_delay", "in_channel", "in_axon", "in_delay")   # syn_*: core-local, per list
SYNAPSE_ARRAYS = ("core_template", "template_ptr", "syn_axon", "syn_neuron")   # Synapses' lists (_synapses_from)
OPTIONAL_ARRAYS = ("copies",)   # Netlist.copies: absent, every neuron is one hardware neuron
PLACEMENT_ARRAYS = ("chip", "x", "y", "slot")
MESH_KEYS = ("chip_cols", "chip_rows", "cores_per_router", "chips_x", "chips_y")
LAYER_KINDS = ("spiking", "readout")
MAX_DELAY = 2 ** 10   # ticks; above any target's core.delay_max (the emulator keeps a buffer this deep)
MAX_PER_CORE = 2 ** 24   # neurons or axons in one core: the bound target specs put on core.neurons and core.axons
# A target family's arrays: per neuron, per axon or core, per synapse list entry.
TARGET_TABLES = ("netlist/params/", "netlist/syn_tables/", "netlist/synapse_tables/")
REPORT_KEYS = ("target", "cores_used", "chips_used", "neurons", "synapses", "axons", "layers", "traffic", "placement",
               "energy", "realtime")


@dataclass(frozen=True)
class Placed:
    """Placement as stored in the artifact: per core chip, router x/y, slot in the router."""

    chip: np.ndarray
    x: np.ndarray
    y: np.ndarray
    slot: np.ndarray
    chip_cols: int
    chip_rows: int
    cores_per_router: int
    chips_x: int
    chips_y: int

    def gx(self) -> np.ndarray:
        return (self.chip % self.chips_x) * self.chip_cols + self.x

    def gy(self) -> np.ndarray:
        return (self.chip // self.chips_x) * self.chip_rows + self.y

    @functools.cached_property
    def n_chips(self) -> int:
        return int(np.unique(self.chip).size)

    @functools.cached_property
    def routers_used(self) -> int:
        """Distinct (x, y) routers on the global mesh; cached, as every run's real-time figures read it."""
        gx, gy = self.gx(), self.gy()
        return int(np.unique(gx.astype(np.int64) * (int(gy.max(initial=0)) + 1) + gy).size)


@dataclass(frozen=True)
class Program:
    """A compiled program: the chip image (netlist, placement, manifest) with the target it is for and what it was
    compiled from. `graph` is the float source graph; a loaded program leaves it None and `source_graph()` reads
    its model.pt on demand. `routes` exist only in the compiling process (report.html draws their link loads)."""

    manifest: Mapping[str, Any]
    netlist: Netlist
    placed: Placed
    target: Target
    report: Mapping[str, Any] = field(default_factory=dict)   # report.json: compile-time figures
    times: Mapping[str, float] = field(default_factory=dict)  # wall seconds per compile stage (timings.json)
    graph: Graph | None = None
    source: Path | None = None                                # the directory a loaded program came from
    routes: Routes | None = None

    @classmethod
    def load(cls, path: str | Path) -> Program:
        """The program at `path`, verified (see the module docstring)."""
        return load(path)

    def save(self, out: str | Path, *, export: str | None = None, inputs: Sequence[str | Path] = ()) -> Path:
        """Write the whole artifact to directory `out` (safewrite: only a program or an empty directory is
        replaced); `inputs` are the files it was compiled from, which `out` may neither replace nor contain."""
        exports = {a.name for a in artifact_exports()}
        if export is not None and export not in exports:
            raise UserError(f"export {export!r} is not available; choose one of {', '.join(sorted(exports))}")
        save(self, out, export, inputs)
        return Path(out)

    def source_graph(self) -> Graph:
        """The float graph the program was compiled from (read from model.pt for a loaded program)."""
        if self.graph is not None:
            return self.graph
        if self.source is None:
            raise UserError("this program holds no source graph (it was built without one and not loaded)")
        from neurocomp.frontend.ptfile import load_graph   # model.pt needs torch: only here

        return load_graph(self.source / "model.pt")

    @property
    def timesteps(self) -> int:
        """Ticks per inference the program was compiled for."""
        return int(self.manifest["options"]["timesteps"])

    @property
    def latency_ticks(self) -> int:
        """Ticks from an input spike to the output spikes it causes (axon delays and splitters included)."""
        return int(self.manifest.get("latency_ticks", len(self.netlist.layers)))

    def realtime(self, per_tick_core_counts: Mapping[str, np.ndarray], ticks: int) -> dict[str, Any]:
        """Seconds per tick and inferences per second on this placement, from per-core counts per tick."""
        return realtime(self.target, dict(per_tick_core_counts), self.placed.routers_used, ticks, self.placed.n_chips)

    def interface(self, where: str | None = None) -> dict[str, Any]:
        """What `run` takes and gives: each input (name, shape, encoding, its key in the input .npz, what it accepts),
        each output (name, shape, what `run --out` holds for it) and the command line (with `where` for the program's
        path; default the directory it was loaded from, else PROGRAM)."""
        encodings = self.manifest.get("encodings", {})
        single = len(self.netlist.inputs) == 1
        inputs = [{"name": name, "shape": list(shape), "encoding": encodings.get(name, "recorded in model.pt"),
                   "npz_key": "input" if single else name, "accepts": _accepts(encodings.get(name), shape)}
                  for name, shape in self.netlist.inputs]
        kinds = {d["name"]: (d["kind"], d["shape"]) for d in self.manifest["layers"]}
        parts = self.manifest["notes"].get("readout_sums", {})
        outputs = []
        for name in self.netlist.outputs:
            kind, shape = kinds[parts[name][0]] if name in parts else kinds[name]
            held = "spikes, uint8" if kind == "spiking" else "potentials in float units, float64"
            outputs.append({"name": name, "shape": list(shape), "kind": kind,
                            "npz_key": f"{'spikes' if kind == 'spiking' else 'potential'}/{name}",
                            "holds": f"(batch, ticks, {', '.join(map(str, shape))}) {held}"})
        where = where or (str(self.source) if self.source is not None else "PROGRAM")
        return {"inputs": inputs, "outputs": outputs, "ticks": self.timesteps + self.latency_ticks,
                "run": f"neurocomp run {where} --input IN.npz --out OUT.npz"}

    def full_report(self) -> dict[str, Any]:
        """report.json with the compile's wall times per stage (`compile_time_s`) merged back in."""
        return {**self.report, "compile_time_s": dict(self.times)}

    def run(self, inputs: Mapping[str, np.ndarray] | np.ndarray, *, backend: str = "emulator", ticks: int | None = None,
            seed: int = 0, device: str | None = None) -> Result:
        """Run on a backend (emulator, reference or lava). `inputs`: one array per input name (or one array for a
        single-input program), (batch, *shape) analog values or (batch, ticks, *shape) spikes. `device`: the
        emulator on numpy (None) or on torch ("cpu", "cuda"), the same integers everywhere."""
        from neurocomp.runner import run_program

        if not isinstance(inputs, Mapping):
            names = [name for name, _ in self.netlist.inputs]
            if len(names) != 1:
                raise UserError(f"this program has inputs {names}: pass a mapping from input name to array")
            inputs = {names[0]: inputs}
        return run_program(self, inputs, backend, ticks, seed, device=device)


def _netlist_arrays(n: Netlist) -> dict[str, np.ndarray]:
    syn = n.synapses
    out = {"netlist/core_template": syn.core_template, "netlist/template_ptr": syn.ptr, "netlist/syn_axon": syn.axon,
           "netlist/syn_neuron": syn.neuron}
    for f in fields(n):
        val = getattr(n, f.name)
        if isinstance(val, np.ndarray):
            out[f"netlist/{f.name}"] = val
    for prefix, tables in (("params", n.params), ("syn_tables", n.core_tables), ("synapse_tables", syn.tables)):
        out.update({f"netlist/{prefix}/{k}": v for k, v in tables.items()})
    for lm in n.layers:
        out[f"layers/{lm.name}/neurons"] = lm.neurons
    return out


def _placed_arrays(p: Placed) -> dict[str, np.ndarray]:
    return {f"placement/{k}": getattr(p, k) for k in PLACEMENT_ARRAYS}


def _layer_json(lm: LayerMap) -> dict[str, Any]:
    return {"name": lm.name, "shape": list(lm.shape), "kind": lm.kind, "scale": lm.scale, "cores": list(lm.cores),
            "binding": lm.binding, "used": lm.used, "allowed": lm.allowed}


def _accepts(encoding: str | None, shape: Sequence[int]) -> str:
    dims = ", ".join(map(str, shape))
    spikes = f"spikes (batch, ticks, {dims}) of 0/1"
    if encoding == "spikes":
        return spikes
    coded = "the chip gets them as graded payloads each tick" if encoding == "current" else f"the host {encoding}-codes them"
    return f"{spikes}, or values (batch, {dims}): {coded}"


def manifest_for(program_fields: Mapping[str, Any], n: Netlist, p: Placed) -> dict[str, Any]:
    """The manifest without its file list (save adds that once the files exist)."""
    return {
        "schema": SCHEMA, "version": VERSION, **program_fields, "target": n.target,
        "inputs": [{"name": k, "shape": list(s)} for k, s in n.inputs],
        "outputs": list(n.outputs), "layers": [_layer_json(lm) for lm in n.layers],
        "mesh": {k: getattr(p, k) for k in MESH_KEYS}, "notes": dict(n.notes),
    }


def build(fields_: Mapping[str, Any], netlist: Netlist, placed: Placed, target: Target) -> Program:
    """A program of the chip image alone (no report, no graph): what a backend needs to run it."""
    return Program(manifest_for(fields_, netlist, placed), netlist, placed, target)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _not_a_program(path: Path) -> str | None:
    """safewrite's test for a program directory we may replace: None, or why it is not one."""
    try:
        man = json.loads((path / MANIFEST).read_bytes())
    except FileNotFoundError:
        return f"no {MANIFEST}"
    except (OSError, ValueError, RecursionError):
        return f"its {MANIFEST} is not readable JSON"
    if not isinstance(man, dict) or man.get("schema") != SCHEMA:
        return f"its {MANIFEST} is not a neurocomp program's"
    listed = _listed(man) if man.get("version") in LISTING_VERSIONS else V1_FILES if man.get("version") == 1 else None
    if listed is None:
        return f"its {MANIFEST} is malformed or of an unknown version"
    entries = {p.name: p for p in path.iterdir()}
    unlisted = sorted(set(entries) - listed - {MANIFEST})
    if unlisted:
        return f"it holds {', '.join(unlisted)}, which its {MANIFEST} does not list"
    odd = sorted(name for name, p in entries.items() if p.is_symlink() or not p.is_file())
    return f"{', '.join(odd)} is not a regular file" if odd else None


def _listed(man: Mapping[str, Any]) -> frozenset[str] | None:
    files, volatile = man.get("files"), man.get("volatile")
    if not isinstance(files, dict) or not isinstance(volatile, list) or not all(isinstance(v, str) for v in volatile):
        return None
    return frozenset(files) | frozenset(volatile)


KIND = Kind("neurocomp program directory", True, _not_a_program)


def save(program: Program, out_dir: str | Path, export: str | None = None, inputs: Sequence[str | Path] = ()) -> None:
    """Every file of the program, written under the safewrite policy (Program.save)."""
    with writing(out_dir, KIND, inputs) as tmp:
        with ThreadPoolExecutor(max_workers=1) as pool:   # zlib deflates the arrays without the GIL, alongside
            arrays = pool.submit(write_npz, tmp / "arrays.npz",   # the report's plots (a paper-size program: 5 s
                                 {**_netlist_arrays(program.netlist), **_placed_arrays(program.placed)},   # and 3 s)
                                 progressions=True)
            _write_source(program, tmp / "model.pt")
            (tmp / "target.toml").write_text(program.target.spec.text)
            (tmp / "report.json").write_text(json.dumps(dict(program.report), indent=1, sort_keys=True) + "\n")
            (tmp / TIMINGS).write_text(timings_json(program.times))
            _write_html(program, tmp / "report.html")
            arrays.result()
        if export is not None:
            _write_export(program, export, tmp)
        names = sorted(p.name for p in tmp.iterdir())
        files = {name: _sha256(tmp / name) for name in names if name != TIMINGS}
        manifest = {**program.manifest, "files": files, "volatile": [TIMINGS]}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def _write_source(program: Program, path: Path) -> None:
    """model.pt: the graph, or a loaded program's own file as it was (byte for byte, no torch needed)."""
    if program.graph is None and program.source is not None:
        shutil.copyfile(program.source / "model.pt", path)
        return
    from neurocomp.frontend.ptfile import save_graph   # torch: only when a graph is written

    save_graph(program.source_graph(), path)


def _write_html(program: Program, path: Path) -> None:
    if not program.report:
        raise UserError("this program has no report (it was built for a backend, not compiled): compile it to save it")
    from neurocomp.report.html import write_html

    report = {**program.report, "interface": program.interface("PROGRAM")}   # no path: the same bytes wherever saved
    write_html(path, report, program.placed, program.routes, core_neurons=program.netlist.core_neurons(),
               neurons_per_core=program.target.spec["core.neurons"])


def _write_export(program: Program, name: str, folder: Path) -> None:
    """The family's extra file `name` (targets/<family>/cli.toml [[artifact]]), refused for another family's program."""
    from neurocomp.target import extension

    export = next(a for a in artifact_exports() if a.name == name)
    module = extension(program.target, export.module) if program.target.spec.family == export.family else None
    if module is None:
        raise UserError(f"{name} export needs a {export.family} program; this one targets {program.netlist.target!r}")
    getattr(module, export.function)(program, folder / export.file)


def timings_json(times: Mapping[str, float]) -> str:
    return json.dumps({"compile_time_s": dict(times)}, indent=1, sort_keys=True) + "\n"


# ---------------------------------------------------------------- verified loading


def load(path: str | Path) -> Program:
    """The program at `path`, after verifying every file and the structure of its arrays."""
    path = Path(path)
    try:
        man = verify(path)
        arrays = _read_arrays(path / "arrays.npz")
    except OSError as e:   # unreadable folder or file
        raise FormatError(f"{e.filename or path}: cannot read ({e.strerror or e})") from None
    target = load_target(str(path / "target.toml"))
    _check_arrays(path / "arrays.npz", man, arrays, target.hooks)
    report = _read_report(path / "report.json")
    times = _read_json(path / TIMINGS)["compile_time_s"] if man["volatile"] else {}
    return Program(man, _netlist_from(man, arrays), _placed_from(man, arrays), target, report, times, source=path)


def verify(path: Path) -> dict[str, Any]:
    """Check the manifest and every file's presence and hash; return the manifest."""
    if not (path / MANIFEST).is_file():
        raise FormatError(f"{path} is not a compiled program (no {MANIFEST})")
    man = _read_json(path / MANIFEST)
    where = path / MANIFEST
    if not isinstance(man, dict):
        raise FormatError(f"{where}: expected a JSON object, got a {type(man).__name__}")
    if man.get("schema") != SCHEMA or man.get("version") != VERSION:
        raise FormatError(f"{where}: unsupported program schema {man.get('schema')!r} version {man.get('version')!r}; "
                          f"this neurocomp reads {SCHEMA} version {VERSION} (recompile the model)")
    _check_manifest(where, man)
    entries = {p.name for p in path.iterdir()} - {MANIFEST}
    listed = set(man["files"]) | set(man["volatile"])
    extra, missing = sorted(entries - listed), sorted(listed - entries)
    if extra:
        raise FormatError(f"{path / extra[0]}: not listed in {MANIFEST} (a program holds only its own files)")
    if missing:
        raise FormatError(f"{path / missing[0]}: missing (listed in {MANIFEST})")
    for name, digest in sorted(man["files"].items()):
        f = path / name
        if f.is_symlink() or not f.is_file():
            raise FormatError(f"{f}: not a regular file")
        if _sha256(f) != digest:
            raise FormatError(f"{f}: sha256 differs from {MANIFEST} (the file was changed after compiling)")
    if man["volatile"]:
        _check_timings(path / TIMINGS)
    return man


def _read_report(path: Path) -> dict[str, Any]:
    report = _read_json(path)
    if not isinstance(report, dict):
        raise FormatError(f"{path}: expected a JSON object, got a {type(report).__name__}")
    missing = [k for k in REPORT_KEYS if k not in report]
    if missing:
        raise FormatError(f"{path}: missing key(s) {missing}")
    return report


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as e:
        raise FormatError(f"{path}: not readable JSON ({type(e).__name__}: {' '.join(str(e).split())[:120]})") from None


def _check_timings(path: Path) -> None:
    data = _read_json(path)
    stages = data.get("compile_time_s") if isinstance(data, dict) else None
    if not isinstance(data, dict) or set(data) != {"compile_time_s"} or not isinstance(stages, dict) or \
            not all(_number(v) and v >= 0 for v in stages.values()):
        raise FormatError(f"{path}: expected {{\"compile_time_s\": {{stage: seconds >= 0}}}}")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int(v: Any, lo: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo


def _need(ok: bool, where: Path, what: str) -> None:
    if not ok:
        raise FormatError(f"{where}: {what}")


_MANIFEST_TYPES: dict[str, type] = {"target": str, "inputs": list, "outputs": list, "layers": list, "mesh": dict,
                                    "notes": dict, "options": dict, "files": dict, "volatile": list}


def _check_manifest(where: Path, m: Mapping[str, Any]) -> None:
    """Keys, types and cross-references of the manifest, so nothing below meets a surprise."""
    for key, typ in _MANIFEST_TYPES.items():
        _need(key in m, where, f"missing key {key!r}")
        _need(isinstance(m[key], typ), where, f"{key!r} must be a JSON {typ.__name__}, got {type(m[key]).__name__}")
    known = set(REQUIRED_FILES + OPTIONAL_FILES)
    _need(all(k in known and isinstance(v, str) and len(v) == 64 for k, v in m["files"].items()), where,
          f"'files' must map program file names ({', '.join(sorted(known))}) to sha256 hex digests")
    _need(set(REQUIRED_FILES) <= set(m["files"]), where,
          f"'files' lacks {sorted(set(REQUIRED_FILES) - set(m['files']))}")
    _need(m["volatile"] in ([], [TIMINGS]), where, f"'volatile' must be [] or [{TIMINGS!r}]")
    _need(_int(m["options"].get("timesteps"), 1), where, "options.timesteps must be an integer >= 1")
    _need(isinstance(m["options"].get("weights", ""), str), where, "options.weights must be a string")
    _need(_int(m.get("latency_ticks", 0)), where, "'latency_ticks' must be an integer >= 0")
    _need(all(_int(m["mesh"].get(k), 1) for k in MESH_KEYS), where, f"'mesh' needs integers >= 1 for {MESH_KEYS}")
    _need(len(m["inputs"]) > 0 and all(isinstance(d, dict) and isinstance(d.get("name"), str) and _shape(d.get("shape"))
                                       for d in m["inputs"]), where, "'inputs' must list {name, shape} objects")
    _need(len({d["name"] for d in m["inputs"]}) == len(m["inputs"]), where, "input names repeat")
    enc = m.get("encodings", {})   # absent in programs compiled before it was recorded: the runner reads model.pt
    _need(isinstance(enc, dict) and (not enc or set(enc) == {d["name"] for d in m["inputs"]})
          and all(e in ENCODINGS for e in enc.values()), where,
          f"'encodings' must map every input to one of {', '.join(ENCODINGS)}")
    for d in m["layers"]:
        _need(isinstance(d, dict) and isinstance(d.get("name"), str) and _shape(d.get("shape"))
              and d.get("kind") in LAYER_KINDS and _number(d.get("scale")) and isinstance(d.get("binding"), str)
              and _number(d.get("used")) and _number(d.get("allowed")) and isinstance(d.get("cores"), list)
              and all(_int(c) for c in d["cores"]), where, f"layer entry {_short(d)} is malformed")
    names = [d["name"] for d in m["layers"]]
    _need(len(set(names)) == len(names), where, "layer names repeat")
    _check_notes(where, m["notes"], set(names))
    sums = m["notes"].get("readout_sums", {})
    _need(len(m["outputs"]) > 0 and all(isinstance(o, str) and (o in names or o in sums) for o in m["outputs"]),
          where, "'outputs' must name layers")


def _check_notes(where: Path, notes: Mapping[str, Any], layers: set[str]) -> None:
    latency, sums = notes.get("latency", {}), notes.get("readout_sums", {})
    _need(isinstance(latency, dict) and all(_int(v) for v in latency.values()), where,
          "notes.latency must map layers to integers >= 0")
    _need(isinstance(sums, dict) and all(isinstance(v, list) and v and all(p in layers for p in v)
                                         for v in sums.values()), where,
          "notes.readout_sums must map read-outs to lists of layers")
    _need(_int(notes.get("splitter_cores", 0)), where, "notes.splitter_cores must be an integer >= 0")


def _shape(v: Any) -> bool:
    return isinstance(v, list) and len(v) > 0 and all(_int(s, 1) for s in v)


def _short(v: Any) -> str:
    text = json.dumps(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        return read_npz(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError) as e:
        raise FormatError(f"{path}: not a readable .npz ({type(e).__name__}: {' '.join(str(e).split())})") from None


def _check_arrays(where: Path, man: Mapping[str, Any], a: Mapping[str, np.ndarray], hooks: Any) -> None:
    """Every array present, integer, of consistent shape, with every index in range; before any is used."""
    layer_keys = {f"layers/{d['name']}/neurons": d for d in man["layers"]}
    plain = [f"netlist/{k}" for k in NETLIST_ARRAYS] + [f"placement/{k}" for k in PLACEMENT_ARRAYS]
    for key in plain + list(layer_keys):
        _need(key in a, where, f"array {key!r} is missing")
    for key, arr in a.items():
        _need(arr.dtype.kind in "iu" and arr.ndim >= 1, where, f"array {key!r} must be an integer array, "
              f"got {arr.dtype} of shape {arr.shape}")
        _need(arr.ndim == 1 or key.startswith(TARGET_TABLES), where, f"array {key!r} must be 1-D, got shape {arr.shape}")
    g = {k: a[f"netlist/{k}"] for k in NETLIST_ARRAYS}
    nptr, aptr = g["neuron_ptr"], g["axon_ptr"]
    _need(nptr.size >= 2 and aptr.size == nptr.size, where, "neuron_ptr and axon_ptr need one entry per core plus one")
    _need(bool(nptr[0] == 0 and aptr[0] == 0 and np.all(np.diff(nptr) >= 0) and np.all(np.diff(aptr) >= 0)), where,
          "neuron_ptr and axon_ptr must start at 0 and never decrease")
    _need(np.diff(nptr).max() <= MAX_PER_CORE and np.diff(aptr).max() <= MAX_PER_CORE, where,
          f"a core holds more than {MAX_PER_CORE} neurons or axons (neuron_ptr, axon_ptr)")
    cores, neurons, axons = nptr.size - 1, int(nptr[-1]), int(aptr[-1])
    channels = sum(math.prod(d["shape"]) for d in man["inputs"])
    count = {"cores": cores, "neurons": neurons, "axons": axons, "synapses": g["syn_axon"].size}
    _ranges(where, g, (("core_layer", cores, -1, len(man["layers"])), ("edge_src", None, 0, neurons),
                       ("edge_axon", "edge_src", 0, axons), ("edge_delay", "edge_src", 0, MAX_DELAY + 1),
                       ("in_channel", None, 0, channels), ("in_axon", "in_channel", 0, axons),
                       ("in_delay", "in_channel", 0, MAX_DELAY + 1)))
    why = _synapses_from(a).problem(aptr, nptr)
    _need(why is None, where, f"synapse lists: {why}")
    if "netlist/copies" in a:
        copies = a["netlist/copies"]
        _ranges(where, {"copies": copies}, (("copies", neurons, 1, MAX_PER_CORE + 1),))
        _need(np.add.reduceat(np.append(copies, 0), nptr[:-1]).max() <= MAX_PER_CORE, where,
              f"a core holds more than {MAX_PER_CORE} neurons counting copies (copies)")
    for key, d in layer_keys.items():
        ids = a[key]
        _need(ids.size == math.prod(d["shape"]) and (ids.size == 0 or 0 <= ids.min() and ids.max() < neurons),
              where, f"array {key!r} must hold {math.prod(d['shape'])} neuron ids below {neurons}")
        _need(all(c < cores for c in d["cores"]), where, f"layer {d['name']!r} names a core >= {cores}")
    _check_target_tables(where, a, count, hooks)
    mesh = man["mesh"]
    _ranges(where, {k: a[f"placement/{k}"] for k in PLACEMENT_ARRAYS},
            (("chip", cores, 0, mesh["chips_x"] * mesh["chips_y"]), ("x", cores, 0, mesh["chip_cols"]),
             ("y", cores, 0, mesh["chip_rows"]), ("slot", cores, 0, mesh["cores_per_router"])))


def _ranges(where: Path, arrays: Mapping[str, np.ndarray],
            rules: Sequence[tuple[str, int | str | None, int, int | None]]) -> None:
    """(name, length (a number, or the name of an array of the same length, or None), low, high exclusive)."""
    for name, length, lo, hi in rules:
        arr = arrays[name]
        size = arrays[length].size if isinstance(length, str) else length
        _need(size is None or arr.size == size, where, f"array {name!r} has {arr.size} entries, expected {size}")
        _need(arr.size == 0 or (arr.min() >= lo and (hi is None or arr.max() < hi)), where,
              f"array {name!r} holds values outside [{lo}, {'inf' if hi is None else hi})")


def _check_target_tables(where: Path, a: Mapping[str, np.ndarray], count: Mapping[str, int], hooks: Any) -> None:
    """The target family's own tables (neuron parameters, synapse tables), judged by its `check_tables` hook."""
    params, tables, per_synapse = ({k[len(pre):]: v for k, v in a.items() if k.startswith(pre)} for pre in TARGET_TABLES)
    tables.update(per_synapse)
    why = hooks.check_tables(params, tables, count)
    _need(why is None, where, str(why))
    unknown = set(a) - {k for k in a if k.startswith(TARGET_TABLES + ("layers/",))} \
        - {f"netlist/{k}" for k in NETLIST_ARRAYS + OPTIONAL_ARRAYS} - {f"placement/{k}" for k in PLACEMENT_ARRAYS}
    _need(not unknown, where, f"unexpected arrays {sorted(unknown)}")


def _netlist_from(man: Mapping[str, Any], a: Mapping[str, np.ndarray]) -> Netlist:
    sub = lambda pre: {k[len(pre):]: v for k, v in a.items() if k.startswith(pre)}  # noqa: E731
    layers = tuple(LayerMap(d["name"], tuple(d["shape"]), a[f"layers/{d['name']}/neurons"], d["kind"], d["scale"],
                            tuple(d["cores"]), d["binding"], d["used"], d["allowed"]) for d in man["layers"])
    return Netlist(target=man["target"], params=sub("netlist/params/"), synapses=_synapses_from(a),
                   core_tables=sub("netlist/syn_tables/"), layers=layers,
                   inputs=tuple((d["name"], tuple(d["shape"])) for d in man["inputs"]), outputs=tuple(man["outputs"]), notes=man["notes"], copies=a.get("netlist/copies"),
                   **{k: a[f"netlist/{k}"] for k in NETLIST_ARRAYS if k not in SYNAPSE_ARRAYS})


def _synapses_from(a: Mapping[str, np.ndarray]) -> Synapses:
    pre = "netlist/synapse_tables/"
    return Synapses(a["netlist/core_template"], a["netlist/template_ptr"], a["netlist/syn_axon"], a["netlist/syn_neuron"],
                    {k[len(pre):]: v for k, v in a.items() if k.startswith(pre)})


def _placed_from(man: Mapping[str, Any], a: Mapping[str, np.ndarray]) -> Placed:
    m = man["mesh"]
    return Placed(a["placement/chip"], a["placement/x"], a["placement/y"], a["placement/slot"],
                  m["chip_cols"], m["chip_rows"], m["cores_per_router"], m["chips_x"], m["chips_y"])
