"""Every user mistake ends in exit 2 with exactly one stderr line "neurocomp: error: ..." and no traceback
(issue 16 §3): absurd sizes, option values, target specs, numeric extremes, run and convert inputs,
pickled .pt files; and a closed stdout pipe ends quietly."""
from __future__ import annotations

import io
import json
import os
import pickle
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest
import torch

from neurocomp.cli import main
from neurocomp.encoding import input_spikes
from neurocomp.errors import UserError
from neurocomp.frontend import graph_to_dict, save_graph, save_nir
from neurocomp.ir.graph import IF, Affine, Graph, Input, Output
from neurocomp.target import load_spec
from netlib import integer_cnn

SHAPE = (2, 6, 6)  # integer_cnn's input


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """A model, its compiled loihi program and a valid run input, shared by the battery."""
    d = tmp_path_factory.mktemp("ue")
    save_graph(integer_cnn(), d / "net.pt")
    assert main(["compile", str(d / "net.pt"), "--target", "loihi", "-o", str(d / "prog"), "--json"]) == 0
    np.savez(d / "ok.npz", input=np.full((2,) + SHAPE, 0.5))
    return d


def _one_error_line(capsys, argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("neurocomp: error: ") and "Traceback" not in err, err
    return err


def _graph_file(d: Path, name: str, graph: Graph) -> Path:
    save_graph(graph, d / name)
    return d / name


def _chain(n_in: int, threshold: float = 1.0) -> Graph:
    nodes = [Input("x", (n_in,)), IF("n", threshold=np.array(threshold)), Output("out")]
    return Graph(nodes, [("x", "n"), ("n", "out")])


# ------------------------------------------------------------------ absurd sizes and numeric extremes

def _huge_npz(d: Path) -> Path:
    """An .npz whose one member declares 10^13 float64 values in a few bytes."""
    header = io.BytesIO()
    np.lib.format.write_array_header_2_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 13,)})
    with zipfile.ZipFile(d / "huge.npz", "w") as z:
        z.writestr("input.npy", header.getvalue())
    return d / "huge.npz"


def _huge_pt(d: Path) -> Path:
    """A valid .pt whose central directory declares a member of 10^13 bytes (a zip bomb's claim)."""
    save_graph(integer_cnn(), d / "bomb.pt")
    raw = bytearray((d / "bomb.pt").read_bytes())
    end = raw.rindex(b"PK\x05\x06")
    central = int.from_bytes(raw[end + 16:end + 20], "little")
    assert raw[central:central + 4] == b"PK\x01\x02"
    raw[central + 24:central + 28] = (2 ** 32 - 2).to_bytes(4, "little")  # uncompressed size of the first member
    (d / "bomb.pt").write_bytes(bytes(raw))
    return d / "bomb.pt"


def _huge_nir(d: Path) -> Path:
    """A valid NIR file whose fc weight dataset is declared 10^6 x 10^6 (chunked, nothing written)."""
    path = d / "huge.nir"
    save_nir(integer_cnn(), path, bias_timing="early")
    with h5py.File(path, "a") as f:
        name = next(k for k in f["node/nodes"] if k == "fc")
        del f[f"node/nodes/{name}/weight"]
        f.create_dataset(f"node/nodes/{name}/weight", shape=(10 ** 6, 10 ** 6), dtype="f8", chunks=(1, 1024))
    return path


SIZES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "1e11-neuron layer": (lambda d: ["compile", str(_graph_file(d, "huge.pt", _chain(10 ** 11))), "--target", "loihi",
                                     "-o", str(d / "p_huge")], "layer n (100,000,000,000 neurons"),
    "export of a 1e11-neuron layer": (lambda d: ["export", str(_graph_file(d, "huge_x.pt", _chain(10 ** 11))), "--nir",
                                                 str(d / "huge.nir.out.nir")], "layer n (100,000,000,000 neurons"),
    "--ticks 10**12": (lambda d: ["run", str(d / "prog"), "--input", str(d / "ok.npz"), "--ticks", str(10 ** 12)],
                       "run of 1,000,000,000,000 ticks"),
    "npz declaring 80 TB": (lambda d: ["run", str(d / "prog"), "--input", str(_huge_npz(d))], "array input.npy"),
    "nir declaring 8 TB": (lambda d: ["compile", str(_huge_nir(d)), "--target", "loihi", "-o", str(d / "p_nir")],
                           "HDF5 datasets"),
    "--profile with --timesteps 10**12": (lambda d: ["compile", str(d / "net.pt"), "--target", "loihi", "-o",
                                                     str(d / "p_prof"), "--timesteps", str(10 ** 12), "--profile",
                                                     str(d / "ok.npz")], "run of 1,000,000,000,"),
    "reference --ticks 10**12": (lambda d: ["run", str(d / "prog"), "--input", str(d / "ok.npz"), "--backend",
                                            "reference", "--ticks", str(10 ** 12)], "run of 1,000,000,000,000 ticks"),
    "track --frames 10**10": (lambda d: ["track", str(d / "prog"), "--frames", str(10 ** 10)], "track --frames"),
    "threshold 1e308": (lambda d: ["compile", str(_graph_file(d, "big.pt", Graph(
        [Input("x", (4,)), Affine("a", np.ones((3, 4))), IF("n", threshold=np.array(1e308)), Output("o")],
        [("x", "a"), ("a", "n"), ("n", "o")]))), "--target", "loihi", "-o", str(d / "p_big")], "n:"),
}


@pytest.mark.parametrize("case", SIZES)
def test_absurd_sizes_and_extremes(files, capsys, case):
    build, needle = SIZES[case]
    err = _one_error_line(capsys, build(files))
    assert needle in err
    if "memory" in err:
        assert re.search(r"needs about [\d.e+]+ GB of memory, more than the [\d.]+ GB available", err), err


def test_pt_whose_archive_claims_more_than_the_memory(files, capsys, monkeypatch):
    """A compressed member can unpack far beyond its file: the declared sizes are checked first (here 4.3 GB
    against 1 GB available; a zip64 claim can be any size)."""
    monkeypatch.setattr("neurocomp.memory.available_bytes", lambda: 10 ** 9)
    err = _one_error_line(capsys, ["compile", str(_huge_pt(files)), "--target", "loihi", "-o", str(files / "p_bomb")])
    assert "(its unpacked tensors): needs about 4.29 GB of memory, more than the 1 GB available" in err


@pytest.mark.parametrize("weight", [5e-324, -5e-324, 1e-300])
def test_subnormal_and_tiny_weights_compile_like_zero_weights(files, capsys, weight):
    """A subnormal weight underflowed the quantiser's step (math domain error, exit 1); it now takes the
    coarsest step, as a weight of 1e-300 always did: exit 0, nothing on stderr."""
    graph = Graph([Input("x", (4,)), Affine("a", np.full((3, 4), weight)), IF("n"), Output("o")],
                  [("x", "a"), ("a", "n"), ("n", "o")])
    model = _graph_file(files, f"tiny_{weight:g}.pt", graph)
    assert main(["compile", str(model), "--target", "truenorth", "-o", str(files / f"p_tiny_{weight:g}")]) == 0
    assert capsys.readouterr().err == ""


def test_warnings_after_a_success_are_one_line_each(files, capsys):
    """Weights of 1e308 compile (the quantiser scales them) but overflow numpy on the way: exit 0, and each
    warning is one 'neurocomp: warning:' line instead of numpy's two-line source excerpt."""
    graph = Graph([Input("x", (4,)), Affine("a", np.full((3, 4), 1e308)), IF("n"), Output("o")],
                  [("x", "a"), ("a", "n"), ("n", "o")])
    model = _graph_file(files, "w308.pt", graph)
    assert main(["compile", str(model), "--target", "loihi", "-o", str(files / "p_w308")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert all(line.startswith("neurocomp: warning: ") for line in err), err


# ------------------------------------------------------------------ option values

OPTIONS = [
    (["compile", "m.pt", "--target", "loihi", "--timesteps", "0"], "--timesteps"),
    (["compile", "m.pt", "--target", "loihi", "--rate", "-0.1"], "--rate"),
    (["compile", "m.pt", "--target", "loihi", "--rate", "0"], "--rate"),
    (["compile", "m.pt", "--target", "loihi", "--rate", "nan"], "--rate"),
    (["compile", "m.pt", "--target", "loihi", "--rate", "1e-320"], "--rate: must be a finite number in [1e-09, 1]"),
    (["compile", "m.pt", "--target", "loihi", "--seed", str(2 ** 64)], f"--seed: must be <= {2 ** 63 - 1}"),
    (["compile", "m.pt", "--target", "loihi", "--dt", "0"], "--dt"),
    (["compile", "m.pt", "--target", "loihi", "--congestion", "-1"], "--congestion"),
    (["compile", "m.pt", "--target", "loihi", "--seed", "-1"], "--seed"),
    (["compile", "m.pt", "--target", "loihi", "--timesteps", "many"], "--timesteps"),
    (["run", "p", "--input", "x.npz", "--ticks", "0"], "--ticks"),
    (["run", "p", "--input", "x.npz", "--ticks", "-5"], "--ticks"),
    (["run", "p", "--input", "x.npz", "--seed", "-1"], "--seed"),
    (["convert", "a.pt2", "--calibration", "c.npz", "--timesteps", "0"], "--timesteps"),
    (["convert", "a.pt2", "--calibration", "c.npz", "--percentile", "0"], "--percentile"),
    (["convert", "a.pt2", "--calibration", "c.npz", "--percentile", "101"], "--percentile"),
    (["convert", "a.pt2", "--calibration", "c.npz", "--v-init", "1"], "--v-init"),
    (["convert", "a.pt2", "--calibration", "c.npz", "--calibration-batches", "-1"], "--calibration-batches"),
    (["track", "p", "--frames", "1"], "--frames"),
    (["track", "p", "--ticks", "0"], "--ticks"),
    (["track", "p", "--exemplar-ticks", "0"], "--exemplar-ticks"),
    (["track", "p", "--tau0", "-1"], "--tau0"),
    (["track", "p", "--tau0", "20", "--ticks", "20"], "--tau0"),
    (["track", "p", "--clip", "-1"], "--clip"),
    (["export", "m.pt", "--nir", "o.nir", "--dt", "0"], "--dt"),
    (["export", "m.pt", "--nir", "o.nir", "--dt", "inf"], "--dt"),
    (["compile", "m.pt"], "--target"),
    (["frobnicate"], "invalid choice"),
]


@pytest.mark.parametrize("argv, option", OPTIONS, ids=[" ".join(a[0:1] + a[-2:]) for a, _ in OPTIONS])
def test_option_values(capsys, argv, option):
    assert option in _one_error_line(capsys, argv)


# ------------------------------------------------------------------ target specs

def _set(text: str, key: str, value: str) -> str:
    new, n = re.subn(rf"(?m)^{key} = {{ value = [^,]+,", f"{key} = {{ value = {value},", text)
    assert n == 1, key
    return new


LOIHI, TN = load_spec("loihi").text, load_spec("truenorth").text
SPECS = {
    "negative energy": (_set(LOIHI, "synaptic_event_j", "-1e-12"), "energy.synaptic_event_j must lie in [0, inf) (J)"),
    "NaN power": (_set(LOIHI, "static_power_w", "nan"), "energy.static_power_w must be a finite number (W per chip)"),
    "infinite energy": (_set(TN, "hop_ew_j", "inf"), "energy.hop_ew_j must be a finite number"),
    "weight_bits 0": (_set(LOIHI, "weight_bits", "0"), "core.weight_bits must lie in [2, 8] (bits), got 0"),
    "weight_bits -1": (_set(LOIHI, "weight_bits", "-1"), "core.weight_bits must lie in [2, 8] (bits), got -1"),
    "weight_bits 64": (_set(LOIHI, "weight_bits", "64"), "core.weight_bits must lie in [2, 8] (bits), got 64"),
    "axon_types 0": (_set(TN, "axon_types", "0"), "core.axon_types must lie in [2, 8]"),
    "tick_s 0": (_set(TN, "tick_s", "0.0"), "timing.tick_s must lie in (0, inf) (s)"),
    "string number": (_set(LOIHI, "neurons", '"many"'), "core.neurons must be a finite integer"),
    "float count": (_set(TN, "neurons", "25.5"), "core.neurons must be a finite integer"),
    "bool number": (_set(TN, "weight_max", "true"), "core.weight_max must be a finite integer"),
    "bad choice": (_set(TN, "v_overflow", '"explode"'), "core.v_overflow must be one of"),
    "unknown family": (LOIHI.replace('family = "loihi"', 'family = "spinnaker"'), "unknown target family 'spinnaker'"),
    "family path": (LOIHI.replace('family = "loihi"', 'family = "../x"'), "not a module name"),
    "misspelt field": (LOIHI.replace("weight_bits =", "weight_bit ="), "unknown spec field core.weight_bit"),
    "missing field": (re.sub(r"(?m)^tick_s = .*$", "", TN), "missing timing.tick_s"),
    "barrier order": (_set(LOIHI, "barrier_min_s", "1e-3"), "timing.barrier_min_s (0.001) exceeds timing.barrier_max_s"),
    "invalid TOML": ("[target\nname=", "invalid TOML"),
    "binary": (bytes(range(256)) * 4, "not a text TOML file"),
}


@pytest.mark.parametrize("case", SPECS)
def test_target_specs(files, capsys, case):
    text, needle = SPECS[case]
    spec = files / f"spec_{case.replace(' ', '_')}.toml"
    spec.write_bytes(text if isinstance(text, bytes) else text.encode())
    err = _one_error_line(capsys, ["compile", str(files / "net.pt"), "--target", str(spec), "-o", str(files / "p_x")])
    assert needle in err
    assert not (files / "p_x").exists()


def test_builtin_specs_pass_their_own_validation():
    for name in ("truenorth", "loihi", "loihi2"):
        assert load_spec(name).name == name


# ------------------------------------------------------------------ run and convert inputs

def _npz(d: Path, name: str, **arrays) -> Path:
    np.savez(d / name, **arrays)
    return d / name


INPUTS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "0-byte file": (lambda d: (d / "empty.npz").write_bytes(b"") and d / "empty.npz" or d / "empty.npz", "not an .npz"),
    ".npy": (lambda d: (np.save(d / "arr.npy", np.zeros((1,) + SHAPE)), d / "arr.npy")[1], "an .npy array?"),
    "batch 0": (lambda d: _npz(d, "b0.npz", input=np.zeros((0,) + SHAPE)), "batch size 0"),
    "ticks 0": (lambda d: _npz(d, "t0.npz", input=np.zeros((1, 0) + SHAPE)), "holds no ticks"),
    "strings": (lambda d: _npz(d, "s.npz", input=np.full((1,) + SHAPE, "a")), "dtype <U1"),
    "objects": (lambda d: (pickle.dump(0, open(d / "o.npz", "wb")), d / "o.npz")[1], "not an .npz"),
    "complex": (lambda d: _npz(d, "c.npz", input=np.full((1,) + SHAPE, 0.5 + 0.5j)), "dtype complex128"),
    "dates": (lambda d: _npz(d, "dt.npz", input=np.zeros((1,) + SHAPE, "datetime64[s]")), "dtype datetime64[s]"),
    "negative analog": (lambda d: _npz(d, "n.npz", input=np.full((1,) + SHAPE, -0.5)), "must be >= 0, got -0.5"),
    "NaN": (lambda d: _npz(d, "nan.npz", input=np.full((1,) + SHAPE, np.nan)), "NaN or Inf"),
    "Inf": (lambda d: _npz(d, "inf.npz", input=np.full((1, 3) + SHAPE, np.inf)), "NaN or Inf"),
    "wrong shape": (lambda d: _npz(d, "w.npz", input=np.zeros((1, 3, 6, 6))),
                    "input shape (1, 3, 6, 6) fits neither (batch, ticks, 2, 6, 6) spikes nor (batch, 2, 6, 6)"),
    "wrong key": (lambda d: _npz(d, "k.npz", data=np.zeros((1,) + SHAPE)), "missing input key"),
}


@pytest.mark.parametrize("case", INPUTS)
def test_run_inputs(files, capsys, case):
    make, needle = INPUTS[case]
    assert needle in _one_error_line(capsys, ["run", str(files / "prog"), "--input", str(make(files))])


def test_analog_values_above_one_saturate_at_a_spike_every_tick():
    """The defined meaning of a rate above 1 (documented in neurocomp.encoding): a spike every tick, as at 1."""
    x = np.array([[0.5, 1.0, 3.0]])
    assert input_spikes(x, (3,), 4, "rate").sum(axis=1).tolist() == [[2, 4, 4]]
    with pytest.raises(UserError, match="must be >= 0"):
        input_spikes(-x, (3,), 4, "rate")


def test_convert_refuses_non_real_calibration():
    from neurocomp.convert.options import ConvertOptions
    from neurocomp.convert.pipeline import _check_calibration

    with pytest.raises(UserError, match="calibration data has dtype complex128"):
        _check_calibration(np.full((2, 3), 0.5 + 1j), (3,), ConvertOptions())
    with pytest.raises(UserError, match="calibration data has dtype <U3"):
        _check_calibration(np.full((2, 3), "0.5"), (3,), ConvertOptions())


# ------------------------------------------------------------------ pickled objects

class _Runs:
    def __reduce__(self):
        return (os.system, ("true",))


PICKLES = {
    "torch.save of os.system": lambda p: torch.save({"format": "neurocomp.snn", "x": _Runs()}, p),
    "plain pickle": lambda p: pickle.dump({"format": "neurocomp.snn"}, open(p, "wb")),
    "numpy array object": lambda p: torch.save({**graph_to_dict(integer_cnn()), "extra": np.ones(2)}, p),
}


@pytest.mark.parametrize("case", PICKLES)
def test_pickled_objects_are_refused_for_safety(files, capsys, case):
    path = files / f"{case.replace(' ', '_')}.pt"
    PICKLES[case](path)
    err = _one_error_line(capsys, ["compile", str(path), "--target", "loihi", "-o", str(files / "p_pickle")])
    assert "refused for safety: contains Python objects; neurocomp only loads tensors" in err.replace(
        re.search(r"objects( \([\w.]+\))?", err).group(0), "objects")


# ------------------------------------------------------------------ a closed pipe

# One interpreter runs every case (an import of torch per case would take most of the test's time): each
# gets a fresh stdout pipe whose reader is already gone; the codes go to a file, so stderr must stay empty.
PIPE_SCRIPT = """
import json, os, sys
from neurocomp.cli import main
codes = []
for argv in json.loads(sys.argv[2]):
    sys.stdout.flush()
    read, write = os.pipe()
    os.close(read)
    os.dup2(write, 1)
    os.close(write)
    codes.append(main(argv))
open(sys.argv[1], "w").write(json.dumps(codes))
"""
PIPED = {"targets json": ["targets", "--json"], "targets table": ["targets"], "report json": ["report", "{prog}", "--json"],
         "report table": ["report", "{prog}"], "run json": ["run", "{prog}", "--input", "{ok}", "--json"],
         "compile json": ["compile", "{net}", "--target", "loihi", "-o", "{out}", "--json"]}


def test_closed_pipe_ends_quietly(files):
    """`neurocomp targets --json | true` and the like: exit 0, nothing on stderr (was exit 1, BrokenPipeError)."""
    names = {"prog": files / "prog", "ok": files / "ok.npz", "net": files / "net.pt", "out": files / "p_pipe"}
    argvs = [[a.format(**names) for a in argv] for argv in PIPED.values()]
    done = subprocess.run([sys.executable, "-c", PIPE_SCRIPT, str(files / "codes.json"), json.dumps(argvs)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=600)
    assert (done.returncode, done.stderr) == (0, "")
    assert dict(zip(PIPED, json.loads((files / "codes.json").read_text()))) == dict.fromkeys(PIPED, 0)
