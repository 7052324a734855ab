"""TrueNorth model JSON and NSCS .sfti export (targets/truenorth/tnjson.py), checked by an independent reader.

The reader below parses the files as an outside tool would (the repeated "core" key kept by object_pairs_hook,
compressed arrays expanded, crossbars from hex rows) and a plain TrueNorth simulator (TRUENORTH.md §3,
deterministic modes) runs the model on the .sfti spikes: its spikes must equal the emulator's, layer by layer.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurocomp.backends import emulator
from neurocomp.cli import main
from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.ir.graph import IF, Affine, Graph, Input, Output
from neurocomp.program import Program
from neurocomp.target import extension, load_target
from netlib import integer_cnn, random_spikes, tiny

TN = load_target("truenorth")
TNJSON = extension(TN, "tnjson")
V_BITS = 20          # the truenorth spec's core.v_bits: V saturates at this signed width after each stage
SECTIONS = ["model", "crossbarTypes", "neuronTypes"]


# ---------------------------------------------------------------- the independent reader and simulator

def _hook(pairs: list[tuple[str, Any]]) -> Any:
    """A dict, unless a key repeats (the top level's "core"): then the ordered pairs themselves."""
    keys = [k for k, _ in pairs]
    return pairs if len(set(keys)) < len(keys) else dict(pairs)


def expand(items: list[int | str]) -> list[int]:
    """The model format's compressed integer arrays: v, "vxn", "a:b" (inclusive), "a:step:b"."""
    out: list[int] = []
    for item in items:
        if isinstance(item, int):
            out.append(item)
        elif "x" in item:
            value, count = item.split("x")
            out += [int(value)] * int(count)
        else:
            parts = [int(p) for p in item.split(":")]
            a, step, b = (parts[0], 1, parts[1]) if len(parts) == 2 else parts
            out += list(range(a, b + (1 if step > 0 else -1), step))
    return out


def read_model(path: Path) -> dict[str, Any]:
    """Per core (by id): effective weights (axon, neuron), the NeuronGeneral fields per neuron, destinations."""
    pairs = json.loads(path.read_text(), object_pairs_hook=_hook)
    keys = [k for k, _ in pairs]
    assert keys[:3] == SECTIONS and set(keys[3:]) == {"core"}
    model, crossbars, types = (v for _, v in pairs[:3])
    cores = [v for _, v in pairs[3:]]
    assert model["coreCount"] == len(cores) and model["crossbarSize"] == 256
    protos = {}
    for proto in crossbars:
        rows = proto["crossbar"]["rows"]
        assert len(rows) == 256
        bits = np.array([[int(h, 16) >> (3 - k) & 1 for h in row["synapses"].replace(" ", "") for k in range(4)]
                         for row in rows], dtype=np.int64)
        protos[proto["name"]] = (bits, np.array([int(row["type"][1]) for row in rows]))
    by_id = {int(t["name"][1:], 16): t for t in types}
    out = {}
    for core in cores:
        nrn = core["neurons"]
        fields = [by_id[k] for k in expand(nrn["types"])]
        bits, axon_type = protos[core["crossbar"]["name"]]
        weight = np.array([[f[f"sigma{g}"] * f[f"s{g}"] for g in range(4)] for f in fields])   # (neuron, type)
        assert not any(f[f"b{g}"] or f["c_lambda"] or f["TM"] for f in fields for g in range(4))
        params = {k: np.array([int(f[k]) for f in fields]) for k in
                  ("sigma_lambda", "lambda", "epsilon", "alpha", "beta", "gamma", "kappa", "sigma_VR", "VR", "V")}
        out[core["id"]] = {"w": bits * weight.T[axon_type], "p": params, "dest": np.array(
            [expand(nrn[k]) for k in ("destCores", "destAxons", "destDelays")]), "meta": core["metadata"]}
        assert all(len(expand(nrn[k])) == 256 for k in ("dendrites", "types"))
    return out


def read_sfti(path: Path) -> tuple[int, np.ndarray]:
    """The default delay and (srcTime, destCore, destAxon) per spike."""
    lines = path.read_text().splitlines()
    head, version = json.loads(lines[0]), json.loads(lines[1])
    assert head["class"] == "SpikeWriter" and head["encoding"] == "TEXT" and version["version"] == "sfti1.0"
    spikes = [json.loads(line)["spike"] for line in lines[2:]]
    return version["defaultDestinationDelay"], np.array([[s["srcTime"], s["destCore"], s["destAxon"]] for s in spikes],
                                                        dtype=np.int64).reshape(-1, 3)


def simulate(cores: dict[str, Any], delay: int, spikes_in: np.ndarray, ticks: int) -> np.ndarray:
    """(ticks, cores, 256) spikes: integrate -> leak -> threshold / fire / reset, per Cassidy 2013 (§3)."""
    ids = sorted(cores)
    assert ids == list(range(len(ids)))
    lo, hi = -(1 << (V_BITS - 1)), (1 << (V_BITS - 1)) - 1
    w = np.stack([cores[c]["w"] for c in ids])
    p = {k: np.stack([cores[c]["p"][k] for c in ids]) for k in cores[0]["p"]}
    dest = np.stack([cores[c]["dest"] for c in ids])            # (C, 3, 256)
    axons = np.zeros((ticks + 32, len(ids), 256), dtype=np.int64)
    for t, c, a in spikes_in:
        assert axons[t + delay, c, a] == 0, "two spikes on one axon in one tick"
        axons[t + delay, c, a] = 1
    v, leak = p["V"].copy(), p["sigma_lambda"] * p["lambda"]
    reset = p["sigma_VR"] * ((1 << p["VR"]) - 1)
    out = np.zeros((ticks, len(ids), 256), dtype=np.uint8)
    for t in range(ticks):
        v = np.clip(v + np.einsum("ca,can->cn", axons[t], w), lo, hi)
        moved = v + np.where(p["epsilon"] == 1, np.sign(v), 1) * leak
        v = np.clip(np.where((p["epsilon"] == 1) & (np.sign(moved) * np.sign(v) < 0), 0, moved), lo, hi)
        fire = v >= p["alpha"]
        below = ~fire & (v < -p["beta"])
        up = np.select([p["gamma"] == 0, p["gamma"] == 1], [reset, v - p["alpha"]], v)
        down = np.where(p["kappa"] == 1, -p["beta"], np.select([p["gamma"] == 0, p["gamma"] == 1], [-reset, v + p["beta"]], v))
        v = np.clip(np.where(fire, up, np.where(below, down, v)), lo, hi)
        out[t] = fire
        for c, j in zip(*np.nonzero(fire)):
            core, axon, d = dest[c, :, j]
            if core >= 0:
                assert axons[t + d, core, axon] == 0, "two spikes on one axon in one tick"
                axons[t + d, core, axon] = 1
    return out


def layer_spikes(program: Program, sim: np.ndarray) -> dict[str, np.ndarray]:
    """(ticks, layer size) spikes of each layer's first copies (core c's neuron j = expanded neuron ptr[c] + j)."""
    n = program.netlist.expanded()
    core = np.searchsorted(n.neuron_ptr, np.arange(n.n_neurons), side="right") - 1
    slot = np.arange(n.n_neurons) - n.neuron_ptr[core]
    return {lm.name: sim[:, core[lm.neurons], slot[lm.neurons]] for lm in n.layers}


def check_against_emulator(program: Program, target, model: Path, sfti: Path, emu_spikes: dict[str, np.ndarray],
                           ticks: int) -> int:
    """The reader's simulation equals the emulator's spikes on every layer; returns the spikes compared."""
    delay, spikes_in = read_sfti(sfti)
    sim = simulate(read_model(model), delay, spikes_in, ticks)
    total = 0
    for name, got in layer_spikes(program, sim).items():
        want = emu_spikes[name][0].reshape(ticks, -1)
        assert np.array_equal(got, want), name
        total += int(want.sum())
    return total


# ---------------------------------------------------------------- programs

def dense_net(seed: int = 0) -> Graph:
    """12 -> 20 (reset to zero, leak) -> 6 (subtractive reset, leak): integer weights, exact on TrueNorth."""
    rng = np.random.default_rng(seed)
    return Graph([Input("x", (12,), "rate"), Affine("a", rng.choice([-1.0, 1.0, 2.0], size=(20, 12)),
                                                     rng.choice([-1.0, 0.0, 1.0], size=20)),
                  IF("h", threshold=2.0, reset="zero"), Affine("b", rng.choice([-1.0, 1.0], size=(6, 20)),
                                                                np.array([1.0, 0.0, -1.0, 0.0, 1.0, 0.0])),
                  IF("o", threshold=3.0, reset="subtract"), Output("out")],
                 [("x", "a"), ("a", "h"), ("h", "b"), ("b", "o"), ("o", "out")])


def small_core_target(tmp_path: Path):
    """TrueNorth with 16-neuron, 16-axon cores: fan-out beyond a core goes through splitter cores."""
    text = TN.spec.text.replace("neurons = { value = 256", "neurons = { value = 16").replace(
        "axons = { value = 256", "axons = { value = 16")
    path = tmp_path / "tn_small.toml"
    path.write_text(text)
    return load_target(str(path))


def splitter_net(seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    return Graph([Input("x", (4,), "spikes"), Affine("a", rng.choice([1.0, 2.0], size=(8, 4))), IF("h", threshold=2.0),
                  Affine("b", rng.choice([-1.0, 1.0], size=(150, 8))), IF("o", threshold=2.0), Output("out")],
                 [("x", "a"), ("a", "h"), ("h", "b"), ("b", "o"), ("o", "out")])


@pytest.fixture(scope="module")
def dense_program(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tnjson") / "dense"
    compile_graph(dense_net(), TN, CompileOptions(timesteps=24, place_effort=1)).program.save(out)
    return out


# ---------------------------------------------------------------- tests

def test_cli_export_of_a_dense_program_simulates_to_the_emulators_spikes(dense_program, tmp_path, capsys):
    """Rate-coded analog input through the CLI: the .sfti holds what `run` encodes, the JSON the chip."""
    x = np.random.default_rng(3).random((2, 12))
    np.savez(tmp_path / "in.npz", input=x)
    model, sfti = tmp_path / "dense.json", tmp_path / "dense.sfti"
    assert main(["export", str(dense_program), "--truenorth-json", str(model), "--sfti", str(sfti),
                 "--input", str(tmp_path / "in.npz"), "--sample", "1", "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    program = Program.load(dense_program)
    ticks = done["ticks"]
    assert ticks == program.timesteps + program.latency_ticks and done["bytes"] == model.stat().st_size
    run = program.run({"x": x}, ticks=ticks)
    spikes = {name: s[1:2] for name, s in run.spikes.items()}
    assert check_against_emulator(program, TN, model, sfti, spikes, ticks) > 20
    assert done["input_spikes"] == len(read_sfti(sfti)[1]) > 0


def test_conv_net_with_fan_out_copies_and_two_cores(tmp_path):
    program = compile_graph(integer_cnn(1, reset="subtract"), TN, CompileOptions(timesteps=20, place_effort=1)).program
    n = program.netlist
    assert n.copies.max() > 1 and n.n_cores >= 2
    x = random_spikes((2, 6, 6), batch=1, ticks=20, rate=0.4, seed=5)
    model, sfti = tmp_path / "cnn.json", tmp_path / "cnn.sfti"
    TNJSON.write_model(program, model)
    records, ticks = TNJSON.input_records(program, {"x": x})
    TNJSON.write_spikes(sfti, records)
    emu = emulator.run(program, TN, {"x": x}, ticks)
    assert check_against_emulator(program, TN, model, sfti, emu.spikes, ticks) > 20
    cores = read_model(model)
    assert sum(int((c["dest"][0] >= 0).sum()) for c in cores.values()) == int(n.copies[np.unique(n.edge_src)].sum())


def test_splitter_cores_are_written_and_simulate_exactly(tmp_path):
    target = small_core_target(tmp_path)
    program = compile_graph(splitter_net(), target, CompileOptions(timesteps=20, place_effort=1)).program
    assert program.netlist.notes["splitter_cores"] > 0
    x = random_spikes((4,), batch=1, ticks=20, rate=0.4, seed=1)
    model, sfti = tmp_path / "split.json", tmp_path / "split.sfti"
    TNJSON.write_model(program, model)
    TNJSON.write_spikes(sfti, TNJSON.input_records(program, {"x": x})[0])
    emu = emulator.run(program, target, {"x": x}, 20)
    assert check_against_emulator(program, target, model, sfti, emu.spikes, 20) > 20
    classes = [c["meta"]["coreletClass"] for c in read_model(model).values()]
    assert classes.count("splitter") == program.netlist.notes["splitter_cores"]
    assert classes.count("o") == len(program.netlist.layer("o").cores) > 1


def test_output_is_byte_identical_and_replaces_only_its_own_files(dense_program, tmp_path, capsys):
    np.savez(tmp_path / "in.npz", input=random_spikes((12,), batch=1, ticks=10, rate=0.3))
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path in paths:
        assert main(["export", str(dense_program), "--truenorth-json", str(path), "--quiet"]) == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()
    args = ["export", str(dense_program), "--truenorth-json", str(paths[0]), "--sfti", str(tmp_path / "s.sfti"),
            "--input", str(tmp_path / "in.npz")]
    assert main(args) == 0 and main(args) == 0          # our own files are replaced
    assert paths[0].read_bytes() == paths[1].read_bytes()
    capsys.readouterr()
    (tmp_path / "theirs.json").write_text('{"model":{}}')
    (tmp_path / "theirs.sfti").write_text("spikes\n")
    for flag, name, kind in (("--truenorth-json", "theirs.json", "TrueNorth model"), ("--sfti", "theirs.sfti", ".sfti")):
        extra = ["--input", str(tmp_path / "in.npz")] if flag == "--sfti" else []
        assert main(["export", str(dense_program), flag, str(tmp_path / name), *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "refusing to write" in err and kind in err
    assert (tmp_path / "theirs.json").read_text() == '{"model":{}}' and (tmp_path / "theirs.sfti").read_text() == "spikes\n"


@pytest.mark.parametrize("args, message", [
    (["--truenorth-json", "x.json", "--nir", "x.nir"], "one at a time"),
    ([], "name an output"),
    (["--sfti", "x.sfti"], "--sfti and --input go together"),
    (["--truenorth-json", "x.json", "--input", "in.npz"], "--sfti and --input go together"),
])
def test_export_option_mistakes_are_one_line(dense_program, tmp_path, capsys, args, message):
    assert main(["export", str(dense_program), *[str(tmp_path / a) if a.endswith((".json", ".nir", ".sfti", ".npz"))
                                                 else a for a in args]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_a_loihi_program_is_refused(tmp_path, capsys):
    out = tmp_path / "loihi"
    compile_graph(tiny(), load_target("loihi"), CompileOptions(timesteps=8, place_effort=1)).program.save(out)
    assert main(["export", str(out), "--truenorth-json", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err
    assert "needs a truenorth program" in err and "'loihi'" in err and not (tmp_path / "m.json").exists()


def test_a_sample_outside_the_batch_is_refused(dense_program, tmp_path, capsys):
    np.savez(tmp_path / "in.npz", input=np.zeros((2, 12)))
    assert main(["export", str(dense_program), "--sfti", str(tmp_path / "s.sfti"), "--input", str(tmp_path / "in.npz"),
                 "--sample", "2"]) == 2
    assert "sample 2 is not in the input's batch of 2" in capsys.readouterr().err


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-300, 300), st.integers(-3, 3), st.integers(1, 6)), max_size=12))
def test_compressed_arrays_round_trip_and_never_grow(pieces):
    """Arrays built of runs and progressions (and single values) expand back exactly, in no more text."""
    values = np.array([a + s * k for a, s, n in pieces for k in range(n)], dtype=np.int64)
    packed = TNJSON.compress(values)
    assert expand(packed) == values.tolist()
    assert len(json.dumps(packed)) <= len(json.dumps(values.tolist()))


def test_a_model_file_is_refused(tmp_path, capsys):
    (tmp_path / "m.pt").write_bytes(b"not read")
    assert main(["export", str(tmp_path / "m.pt"), "--truenorth-json", str(tmp_path / "m.json")]) == 2
    assert "export a compiled program directory" in capsys.readouterr().err
