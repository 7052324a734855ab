"""The CLI contract: commands, outputs, determinism, and one-line exit-2 errors that write nothing."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from neurocomp.cli import main
from neurocomp.frontend.ptfile import graph_to_dict, save_graph
from neurocomp.target import load_spec
from netlib import integer_cnn, random_spikes, tiny


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    path = tmp_path / "net.pt"
    save_graph(integer_cnn(), path)
    return path


def _err_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


def test_targets_json(capsys):
    assert main(["targets", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"]: r["neurons_per_core"] for r in rows} == {"truenorth": 256, "loihi": 1024, "loihi2": 1024}


@pytest.mark.parametrize("target", ["truenorth", "loihi"])
def test_compile_writes_a_complete_program(model, tmp_path, capsys, target):
    out = tmp_path / f"prog.{target}"
    assert main(["compile", str(model), "--target", target, "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("target", "cores_used", "chips_used", "neurons", "synapses", "layers", "traffic", "energy", "realtime", "compile_time_s"):
        assert key in report
    assert report["traffic"].keys() >= {"cut_spikes_per_tick", "spike_hops_per_tick", "max_link_load", "sequential_spike_hops_per_tick"}
    assert report["energy"]["per_inference_j"] > 0 and report["realtime"]["inferences_per_s"] > 0
    assert [layer["name"] for layer in report["layers"]] == ["n1", "n2"]
    assert sorted(p.name for p in out.iterdir()) == ["arrays.npz", "manifest.json", "model.pt", "report.html", "report.json", "target.toml",
                                                          "timings.json"]
    assert main(["report", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cores_used"] == report["cores_used"]


def test_same_inputs_give_byte_identical_artifacts(model, tmp_path):
    for name in ("a", "b"):
        assert main(["compile", str(model), "--target", "truenorth", "-o", str(tmp_path / name), "--json"]) == 0
    for f in ("manifest.json", "arrays.npz", "model.pt", "target.toml", "report.json", "report.html"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_run_emulator_equals_reference_through_the_cli(model, tmp_path, capsys):
    prog = tmp_path / "prog"
    assert main(["compile", str(model), "--target", "loihi", "-o", str(prog), "--json"]) == 0
    x = random_spikes((2, 6, 6), batch=2, ticks=16, rate=0.3)
    np.savez(tmp_path / "in.npz", input=x)
    outs = {}
    for backend in ("emulator", "reference"):
        capsys.readouterr()
        assert main(["run", str(prog), "--input", str(tmp_path / "in.npz"), "--backend", backend,
                     "--out", str(tmp_path / f"{backend}.npz"), "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["ticks"] == 16 and summary["batch"] == 2
        assert set(summary["times_s"]) == {"load", "inputs", "prepare", "simulate"}
        assert summary["times_s"]["simulate"] == summary["wall_s"] and min(summary["times_s"].values()) >= 0
        with np.load(tmp_path / f"{backend}.npz") as z:
            outs[backend] = {k: z[k] for k in z.files}
    assert outs["emulator"]["output"].shape == (2, 16, 4)
    for key in ("output", "spikes/n1", "spikes/n2"):
        assert np.array_equal(outs["emulator"][key], outs["reference"][key]), key


def test_console_script_is_installed(tmp_path):
    exe = Path(sys.executable).with_name("neurocomp")
    res = subprocess.run([str(exe), "targets", "--json"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "truenorth" in res.stdout


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def _bad_models(tmp: Path) -> dict[str, Path]:
    files = {"missing": tmp / "nope.pt", "corrupt": tmp / "corrupt.pt", "pickled": tmp / "pickled.pt",
             "nan": tmp / "nan.pt", "unsupported": tmp / "unsupported.pt", "suffix": tmp / "model.onnx"}
    files["corrupt"].write_bytes(b"\x00not a torch file" * 10)
    torch.save({"format": "neurocomp.snn", "obj": Evil()}, files["pickled"])
    d = graph_to_dict(integer_cnn())
    conv = next(n for n in d["nodes"] if n["name"] == "conv")
    conv["weight"] = conv["weight"].clone()
    conv["weight"][0, 0, 0, 0] = float("nan")
    torch.save(d, files["nan"])
    d = graph_to_dict(integer_cnn())
    next(n for n in d["nodes"] if n["name"] == "pool")["type"] = "MaxPool2d"
    torch.save(d, files["unsupported"])
    files["suffix"].write_bytes(b"x")
    return files


@pytest.mark.parametrize("case, needle", [("missing", "no such file"), ("corrupt", "nope"), ("pickled", "refused for safety"), ("nan", "NaN"),
                                          ("unsupported", "MaxPool2d"), ("suffix", "unsupported model file")])
def test_bad_models_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, case, needle):
    path = _bad_models(tmp_path)[case]
    out = tmp_path / "out"
    assert main(["compile", str(path), "--target", "truenorth", "-o", str(out)]) == 2
    err = _err_line(capsys)
    if case != "corrupt":
        assert needle in err
    assert not out.exists()
    assert not any(p.name.startswith(".out") for p in tmp_path.iterdir())


def test_model_too_big_for_the_chip(tmp_path, model, capsys):
    spec = load_spec("truenorth").text
    spec = spec.replace('cores = { value = 4096', 'cores = { value = 1').replace('mesh_cols = { value = 64', 'mesh_cols = { value = 1')
    spec = spec.replace('mesh_rows = { value = 64', 'mesh_rows = { value = 1').replace('max_chips = { value = 16', 'max_chips = { value = 1')
    (tmp_path / "tiny.toml").write_text(spec)
    out = tmp_path / "out"
    assert main(["compile", str(model), "--target", str(tmp_path / "tiny.toml"), "-o", str(out)]) == 2
    err = _err_line(capsys)
    assert "cores 2 exceeds the allowed 1" in err
    assert not out.exists()


def test_unknown_target_and_bad_run_input(model, tmp_path, capsys):
    assert main(["compile", str(model), "--target", "spinnaker"]) == 2
    assert "unknown target 'spinnaker'" in _err_line(capsys)
    prog = tmp_path / "prog"
    assert main(["compile", str(model), "--target", "truenorth", "-o", str(prog), "--json"]) == 0
    capsys.readouterr()
    np.savez(tmp_path / "bad.npz", input=np.zeros((1, 3, 3)))
    assert main(["run", str(prog), "--input", str(tmp_path / "bad.npz")]) == 2
    assert "fits neither" in _err_line(capsys)
    assert main(["run", str(tmp_path / "nowhere"), "--input", str(tmp_path / "bad.npz")]) == 2
    assert "not a compiled program" in _err_line(capsys)


def test_compile_exports_netx_for_loihi_and_refuses_it_for_truenorth(model, tmp_path, capsys):
    import h5py

    uniform = tmp_path / "tiny.pt"
    save_graph(tiny(), uniform)
    out = tmp_path / "prog"
    assert main(["compile", str(uniform), "--target", "loihi", "--export", "netx", "-o", str(out), "--json"]) == 0
    with h5py.File(out / "network.net", "r") as f:
        # the quantiser scales weights 1 to 128 (finest power of two within 8 bits), threshold 2 -> vth 2*128 - 1
        assert np.array_equal(f["layer/0/weight"][()], [[128, 128]]) and f["layer/0/neuron/vThMant"][()] == 255
    capsys.readouterr()
    assert main(["compile", str(model), "--target", "loihi", "--export", "netx", "-o", str(tmp_path / "x")]) == 2
    assert "vth differs between its neurons" in _err_line(capsys)
    bad = tmp_path / "tn"
    assert main(["compile", str(model), "--target", "truenorth", "--export", "netx", "-o", str(bad)]) == 2
    assert "netx export needs a loihi program" in _err_line(capsys)
    assert not bad.exists()
