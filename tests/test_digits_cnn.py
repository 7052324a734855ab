"""The committed digits CNNs (models/train_digits_cnn.py): each compiles exactly for its target and the emulated
chip scores the accuracy its training record says on the 360 test digits, near its ANN's; retraining gives the
same bytes (slow). The goals' margins are measured over seeds by benchmarks/train_digits.py."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.frontend.ptfile import load_graph
from neurocomp.models import train_digits_cnn as tdc
from neurocomp.target import load_target

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.mark.parametrize("target", tdc.TARGETS)
def test_the_committed_digits_cnn_runs_on_the_chip_as_recorded(target):
    record = json.loads((MODELS / f"digits_cnn_{target}.json").read_text())
    graph = load_graph(MODELS / f"digits_cnn_{target}.pt")
    compiled = compile_graph(graph, load_target(target), CompileOptions(timesteps=record["timesteps"], seed=record["seed"]))
    assert all(q.exact for q in compiled.qnet.layers) and record["exact"]
    assert compiled.program.netlist.n_cores == record["cores"]
    _, _, x, y = tdc.data()
    chip = tdc.chip_accuracy(compiled, record["timesteps"], x, y)
    assert chip == record["accuracy"]["chip"] and record["test_digits"] == len(y) == 360
    assert chip >= record["accuracy"]["float ANN"] - 0.01   # within 3 digits: the chip computes the trained net


@pytest.mark.slow
def test_retraining_gives_the_committed_bytes(tmp_path):
    graph, record = tdc.train_for("loihi")
    assert record == json.loads((MODELS / "digits_cnn_loihi.json").read_text())
    from neurocomp.frontend.ptfile import save_graph

    save_graph(graph, tmp_path / "digits_cnn_loihi.pt")
    assert (tmp_path / "digits_cnn_loihi.pt").read_bytes() == (MODELS / "digits_cnn_loihi.pt").read_bytes()
