"""--device on run and track: the emulator's torch path gives numpy's integers, and a device that cannot be used
is one line and exit 2 before any work."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from neurocomp.cli import main
from neurocomp.frontend.ptfile import save_graph
from netlib import integer_cnn, random_spikes


@pytest.fixture(params=["loihi", "truenorth"])
def program(request, tmp_path: Path) -> Path:
    save_graph(integer_cnn(reset="zero"), tmp_path / "net.pt")
    assert main(["compile", str(tmp_path / "net.pt"), "--target", request.param, "-o", str(tmp_path / "p"), "--quiet"]) == 0
    np.savez(tmp_path / "x.npz", input=random_spikes((2, 6, 6), batch=3, ticks=20, rate=0.35, seed=7))
    return tmp_path / "p"


def _outputs(program: Path, device: str) -> dict[str, np.ndarray]:
    out = program.parent / f"out-{device}.npz"
    assert main(["run", str(program), "--input", str(program.parent / "x.npz"), "--out", str(out), "--device", device,
                 "--quiet"]) == 0
    with np.load(out) as z:
        return {k: z[k] for k in z.files}


def test_torch_cpu_gives_numpys_integers(program):
    numpy_run, torch_run = _outputs(program, "numpy"), _outputs(program, "cpu")
    assert numpy_run.keys() == torch_run.keys() and sum(v.sum() for k, v in numpy_run.items() if k.startswith("spikes/")) > 0
    for key, value in numpy_run.items():
        np.testing.assert_array_equal(torch_run[key], value, err_msg=key)


def test_cuda_runs_or_is_refused_in_one_line(program, capsys):
    if torch.cuda.is_available():
        cuda = _outputs(program, "cuda")
        for key, value in _outputs(program, "numpy").items():
            np.testing.assert_array_equal(cuda[key], value, err_msg=key)
        return
    assert main(["run", str(program), "--input", str(program.parent / "x.npz"), "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "torch sees no CUDA device" in err


def test_a_device_for_another_backend_is_refused(program, capsys):
    assert main(["run", str(program), "--input", str(program.parent / "x.npz"), "--device", "cpu",
                 "--backend", "reference", "--json"]) == 2
    assert "--device applies to the emulator" in capsys.readouterr().err
    assert main(["run", str(program), "--input", str(program.parent / "x.npz"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["backend"] == "emulator"
