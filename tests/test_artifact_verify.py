"""Programs are verified before use (neurocomp.program.load): hashes of every file, the manifest's
schema, keys and types, and the structure of the arrays. Anything wrong is exit 2 naming the file;
a fuzzer over program directories meets no exception but the project's own error classes."""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurocomp.cli import main
from neurocomp.frontend.ptfile import save_graph
from neurocomp.ir.graph import IF, Affine, Graph, Input, Output
from neurocomp.npz import read_npz, write_npz
from neurocomp.program import Program
from netlib import random_spikes

RUN_INPUT = "in.npz"


def tiny_mlp() -> Graph:
    """A digits-like MLP shrunk to 16 -> 8 -> 4 with integer weights: compiles in well under a second."""
    rng = np.random.default_rng(3)
    return Graph([Input("x", (16,)), Affine("fc1", rng.choice([-1.0, 1.0, 2.0], size=(8, 16))), IF("h", threshold=2.0),
                  Affine("fc2", rng.choice([-1.0, 1.0], size=(4, 8))), IF("y", threshold=2.0), Output("out")],
                 [("x", "fc1"), ("fc1", "h"), ("h", "fc2"), ("fc2", "y"), ("y", "out")])


@pytest.fixture(scope="module")
def programs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("programs")
    save_graph(tiny_mlp(), root / "mlp.pt")
    np.savez(root / RUN_INPUT, input=random_spikes((16,), batch=1, ticks=4, rate=0.4))
    for target in ("loihi", "truenorth"):
        assert main(["compile", str(root / "mlp.pt"), "--target", target, "-o", str(root / target), "--json"]) == 0
    return {"loihi": root / "loihi", "truenorth": root / "truenorth", "input": root / RUN_INPUT}


@pytest.fixture()
def prog(programs, tmp_path) -> Path:
    shutil.copytree(programs["loihi"], tmp_path / "prog")
    return tmp_path / "prog"


def manifest(path: Path) -> dict[str, Any]:
    return json.loads((path / "manifest.json").read_text())


def write_manifest(path: Path, man: Any) -> None:
    (path / "manifest.json").write_text(json.dumps(man))


def rehash(path: Path, name: str) -> None:
    """Record `name`'s current hash, as a careful forger would: the structure checks must still catch it."""
    man = manifest(path)
    man["files"][name] = hashlib.sha256((path / name).read_bytes()).hexdigest()
    write_manifest(path, man)


def arrays(path: Path) -> dict[str, np.ndarray]:
    return read_npz(path / "arrays.npz")


def fails(capsys, argv: list[str], *needles: str) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "internal error" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def run_argv(prog: Path, programs) -> list[str]:
    return ["run", str(prog), "--input", str(programs["input"]), "--json"]


def test_a_genuine_program_loads_runs_and_reports(prog, programs, capsys):
    assert main(run_argv(prog, programs)) == 0
    assert main(["report", str(prog), "--json"]) == 0
    assert set(manifest(prog)["files"]) == {"arrays.npz", "model.pt", "target.toml", "report.json", "report.html"}
    assert manifest(prog)["volatile"] == ["timings.json"]
    assert Program.load(prog).full_report()["compile_time_s"].keys() >= {"partition", "place", "route"}


def test_one_integer_changed_in_arrays(prog, programs, capsys):
    a = arrays(prog)
    a["netlist/synapse_tables/weight"][0] += 1
    write_npz(prog / "arrays.npz", a)
    fails(capsys, run_argv(prog, programs), "arrays.npz", "sha256 differs")


def test_an_energy_edited_in_target_toml(prog, programs, capsys):
    text = (prog / "target.toml").read_text()
    assert "synaptic_event_j = { value = 23.6e-12" in text
    (prog / "target.toml").write_text(text.replace("synaptic_event_j = { value = 23.6e-12", "synaptic_event_j = { value = 2.36e-12"))
    fails(capsys, run_argv(prog, programs), "target.toml", "sha256 differs")


def test_manifest_that_is_a_json_list(prog, programs, capsys):
    write_manifest(prog, [manifest(prog)])
    fails(capsys, run_argv(prog, programs), "manifest.json", "expected a JSON object, got a list")


def test_manifest_missing_a_key(prog, programs, capsys):
    man = manifest(prog)
    del man["layers"]
    write_manifest(prog, man)
    fails(capsys, run_argv(prog, programs), "manifest.json", "missing key 'layers'")


def test_array_missing_even_with_a_matching_hash(prog, programs, capsys):
    a = arrays(prog)
    del a["netlist/edge_src"]
    write_npz(prog / "arrays.npz", a)
    rehash(prog, "arrays.npz")
    fails(capsys, run_argv(prog, programs), "arrays.npz", "array 'netlist/edge_src' is missing")


def test_index_out_of_range_even_with_a_matching_hash(prog, programs, capsys):
    a = arrays(prog)
    a["netlist/syn_neuron"][-1] = a["netlist/neuron_ptr"][-1]
    write_npz(prog / "arrays.npz", a)
    rehash(prog, "arrays.npz")
    fails(capsys, run_argv(prog, programs), "arrays.npz", "a synapse names a neuron outside its core")


def test_float_array_even_with_a_matching_hash(prog, programs, capsys):
    a = arrays(prog)
    a["placement/x"] = a["placement/x"].astype(np.float64)
    write_npz(prog / "arrays.npz", a)
    rehash(prog, "arrays.npz")
    fails(capsys, run_argv(prog, programs), "arrays.npz", "'placement/x' must be an integer array")


def test_extra_and_missing_files(prog, programs, capsys):
    (prog / "notes.txt").write_text("mine")
    fails(capsys, run_argv(prog, programs), "notes.txt", "not listed in manifest.json")
    (prog / "notes.txt").unlink()
    (prog / "model.pt").unlink()
    fails(capsys, run_argv(prog, programs), "model.pt", "missing")


def test_wrong_version(prog, programs, capsys):
    man = manifest(prog)
    man["version"] = 1
    write_manifest(prog, man)
    fails(capsys, run_argv(prog, programs), "manifest.json", "version 1", "recompile")


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", bytes(range(256))])
def test_report_json_that_is_not_an_object(prog, capsys, content):
    (prog / "report.json").write_bytes(content)
    fails(capsys, ["report", str(prog)], "report.json", "sha256 differs")
    rehash(prog, "report.json")
    fails(capsys, ["report", str(prog)], "report.json")


@pytest.mark.parametrize("command", ["run", "report", "export", "track"])
def test_every_reader_verifies(prog, programs, capsys, command):
    (prog / "report.html").write_text("tampered")
    argv = {"run": run_argv(prog, programs), "report": ["report", str(prog)],
            "export": ["export", str(prog), "--nir", str(prog.parent / "x.nir")],
            "track": ["track", str(prog), "--frames", "2"]}[command]
    fails(capsys, argv, "report.html", "sha256 differs")
    assert not (prog.parent / "x.nir").exists()


# ---------------------------------------------------------------- fuzzing


def _json_values() -> st.SearchStrategy:
    scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=8)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                              max_size=3), max_leaves=6)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key/index path into a JSON value."""
    out = [prefix]
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for k, v in items:
        out += _paths(v, prefix + (k,))
    return out


def _replace(node: Any, path: tuple, value: Any, delete: bool) -> Any:
    if not path:
        return value
    parent = node
    for k in path[:-1]:
        parent = parent[k]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return node


def _bad_array(draw, arr: np.ndarray) -> np.ndarray:
    kind = draw(st.sampled_from(["empty", "scalar", "float", "bool", "str", "2d", "negative", "huge", "short", "long"]))
    if kind == "empty":
        return arr[:0]
    if kind == "scalar":
        return np.array(arr.flat[0] if arr.size else 0)
    if kind == "float":
        return arr.astype(np.float64) + 0.5
    if kind == "bool":
        return arr != 0
    if kind == "str":
        return arr.astype(str)
    if kind == "2d":
        return arr.reshape(1, -1)
    out = arr.astype(np.int64) if kind == "huge" else arr.copy()   # int32 tables cannot hold 2**40 themselves
    if kind in ("negative", "huge") and out.size:
        out.flat[draw(st.integers(0, out.size - 1))] = -1 if kind == "negative" else 2**40
    if kind == "short":
        return arr[:-1]
    if kind == "long":
        return np.concatenate([arr, arr[:1]])
    return out


@st.composite
def mutations(draw) -> tuple[str, Any]:
    """One way to damage a program: (description, function(path) -> None)."""
    kind = draw(st.sampled_from(["bytes", "truncate", "delete", "add", "manifest", "arrays", "report", "timings"]))
    names = ["manifest.json", "arrays.npz", "model.pt", "target.toml", "report.json", "report.html", "timings.json"]
    name = draw(st.sampled_from(names))
    if kind == "bytes":
        at, byte = draw(st.integers(0, 10**6)), draw(st.integers(0, 255))

        def mutate(p: Path) -> None:
            data = bytearray((p / name).read_bytes())
            data[at % len(data)] = byte if data[at % len(data)] != byte else (byte + 1) % 256
            (p / name).write_bytes(bytes(data))
    elif kind == "truncate":
        keep = draw(st.integers(0, 4000))

        def mutate(p: Path) -> None:
            (p / name).write_bytes((p / name).read_bytes()[:keep])
    elif kind == "delete":
        def mutate(p: Path) -> None:
            (p / name).unlink()
    elif kind == "add":
        extra = draw(st.sampled_from(["notes.txt", ".hidden", "network.net", "arrays.npz.bak", "sub"]))

        def mutate(p: Path) -> None:
            (p / extra).mkdir() if extra == "sub" else (p / extra).write_bytes(b"x")
    elif kind in ("manifest", "report", "timings"):
        file = {"manifest": "manifest.json", "report": "report.json", "timings": "timings.json"}[kind]
        pick, value, delete = draw(st.integers(0, 10**6)), draw(_json_values()), draw(st.booleans())

        def mutate(p: Path) -> None:
            doc = json.loads((p / file).read_text())
            paths = _paths(doc)
            path = paths[pick % len(paths)]
            (p / file).write_text(json.dumps(_replace(doc, path, value, delete and bool(path))))
            if file == "report.json":
                rehash(p, file)
    else:
        pick, extra = draw(st.integers(0, 10**6)), draw(st.booleans())
        data = draw(st.data())

        def mutate(p: Path) -> None:
            a = arrays(p)
            key = sorted(a)[pick % len(a)]
            if extra:
                a[f"{key}/x"] = a[key]
            else:
                a[key] = _bad_array(data.draw, a[key])
            write_npz(p / "arrays.npz", a)
            rehash(p, "arrays.npz")
    return f"{kind} {name}", mutate


def _check_damaged(programs, target: str, mutate) -> None:
    """report (which loads and verifies) exits 0 or 2, never 1; a program it accepts also runs or exits 2."""
    work = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        prog = work / "prog"
        shutil.copytree(programs[target], prog)
        mutate(prog)
        code = main(["report", str(prog), "--json"])
        assert code in (0, 2)
        if code == 0:
            assert main(run_argv(prog, programs)) in (0, 2)
    finally:
        shutil.rmtree(work)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])


@FUZZ
@given(target=st.sampled_from(["loihi", "truenorth"]), mutation=mutations())
def test_fuzzed_programs_raise_only_our_errors(programs, capsys, target, mutation):
    _check_damaged(programs, target, mutation[1])
    capsys.readouterr()


@pytest.mark.slow
@settings(FUZZ, max_examples=10_000)
@given(target=st.sampled_from(["loihi", "truenorth"]), mutation=mutations())
def test_fuzzed_programs_raise_only_our_errors_slow(programs, capsys, target, mutation):
    _check_damaged(programs, target, mutation[1])
    capsys.readouterr()
