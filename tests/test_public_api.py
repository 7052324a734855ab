"""The Python API (neurocomp.compile / load / convert_ann, Program, Result) gives what the command line gives."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import neurocomp
from neurocomp.cli import main
from neurocomp.errors import UserError
from neurocomp.frontend.ptfile import save_graph
from neurocomp.ir.graph import Graph
from neurocomp.target import load_target
from netlib import integer_cnn, random_spikes

HASHED = ("arrays.npz", "model.pt", "target.toml", "report.json", "report.html", "manifest.json")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["loihi", "truenorth"])
def model(request, tmp_path: Path) -> tuple[Path, str]:
    save_graph(integer_cnn(reset="zero" if request.param == "loihi" else "subtract"), tmp_path / "net.pt")
    return tmp_path / "net.pt", request.param


def test_a_program_compiled_in_python_is_the_one_the_cli_writes(model, tmp_path):
    path, target = model
    assert main(["compile", str(path), "--target", target, "-o", str(tmp_path / "cli"), "--json"]) == 0
    program = neurocomp.compile(path, target)
    assert program.save(tmp_path / "api") == tmp_path / "api"
    for name in HASHED:
        assert (tmp_path / "api" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    assert set(program.times) >= {"lower", "quantize", "partition", "place", "route"}
    assert program.full_report()["cores_used"] == program.netlist.n_cores == program.report["cores_used"]


def test_run_in_python_equals_the_cli_run_and_the_reference(model, tmp_path):
    path, target = model
    prog = tmp_path / "prog"
    assert main(["compile", str(path), "--target", target, "-o", str(prog), "--json"]) == 0
    x = random_spikes((2, 6, 6), batch=2, ticks=14, rate=0.3)
    np.savez(tmp_path / "x.npz", input=x)
    assert main(["run", str(prog), "--input", str(tmp_path / "x.npz"), "--out", str(tmp_path / "out.npz"), "--json"]) == 0
    result = neurocomp.load(prog).run(x)
    with np.load(tmp_path / "out.npz") as cli:
        assert set(cli.files) - {"format"} == set(result.outputs)
        for key, value in result.outputs.items():
            np.testing.assert_array_equal(cli[key], value, err_msg=key)
    reference = neurocomp.load(prog).run({"x": x}, backend="reference")
    for layer, spikes in reference.spikes.items():   # integer weights and thresholds: the chip is the source graph
        np.testing.assert_array_equal(result.spikes[layer], spikes, err_msg=layer)
    assert result.summary["ticks"] == 14 and result.energy["per_inference_j"] > 0
    assert set(result.times_s) == {"load", "inputs", "prepare", "simulate"}


def test_compile_takes_a_graph_and_a_target_object_and_states_its_stages(tmp_path):
    stages: list[str] = []
    program = neurocomp.compile(integer_cnn(), load_target("loihi"), timesteps=9, progress=stages.append)
    assert stages[:4] == ["lower", "legalize", "quantize", "partition"] and "place" in stages
    assert program.timesteps == 9 and program.manifest["model_sha256"] == ""
    assert program.latency_ticks == program.manifest["latency_ticks"] >= 2
    again = neurocomp.load(program.save(tmp_path / "p"))
    assert again.graph is None and again.source_graph().node_map.keys() == integer_cnn().node_map.keys()


def test_convert_ann_turns_a_torch_module_into_a_graph_that_compiles():
    torch.manual_seed(0)
    ann = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3)).eval()
    calib = np.random.default_rng(0).random((16, 1, 8, 8))
    snn = neurocomp.convert_ann(ann, calib, timesteps=16, reset="zero")
    assert isinstance(snn, Graph) and snn.inputs[0].shape == (1, 8, 8)
    assert neurocomp.compile(snn, "loihi").netlist.n_cores >= 2
    with pytest.raises(UserError, match="unknown conversion option"):
        neurocomp.convert_ann(ann, calib, timestep=16)


def test_a_single_input_program_takes_a_bare_array_and_a_wrong_backend_is_one_error(model):
    path, target = model
    program = neurocomp.compile(path, target)
    x = random_spikes((2, 6, 6), batch=1, ticks=5, rate=0.3)
    assert program.run(x).summary["ticks"] == 5
    with pytest.raises(UserError, match="backend 'spinnaker'"):
        program.run(x, backend="spinnaker")


def test_importing_neurocomp_stays_light():
    """The API's names come with the package; torch and the compiler load when a call needs them."""
    code = "import sys, neurocomp\nprint(sorted(m for m in ('torch', 'neurocomp.compiler', 'scipy.sparse') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr


def test_the_public_api_is_mypy_clean():
    files = [ROOT / "neurocomp" / name for name in ("__init__.py", "api.py", "program.py", "runner.py", "hooks.py", "target.py")]
    out = subprocess.run([sys.executable, "-m", "mypy", "--follow-imports=silent", "--ignore-missing-imports",
                          *map(str, files)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
