"""The core census (neurocomp.compiler.census, `neurocomp check --census`): per layer the cores a compile builds,
counted without core tables; refused in one line on a target without one; the chips against the spec's."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from neurocomp.cli import main
from neurocomp.compiler import CompileOptions, census, compile_graph
from neurocomp.errors import UserError
from neurocomp.frontend.ptfile import load_graph
from neurocomp.target import load_target

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.mark.parametrize("model, weights", [("siamsnn_micro_loihi.pt", None), ("digits_cnn_loihi.pt", None)])
def test_the_census_counts_the_cores_the_compile_builds(model, weights):
    graph, target = load_graph(MODELS / model), load_target("loihi")
    counted = census(graph, target, CompileOptions(weights=weights))
    built = compile_graph(graph, target, CompileOptions(weights=weights)).program.netlist
    assert {c.layer: c.cores for c in counted.layers} == {m.name: len(m.cores) for m in built.layers}
    assert counted.cores == built.n_cores and counted.chips == -(-built.n_cores // target.spec.cores_per_chip)
    assert not counted.unmapped


def test_check_census_prints_the_count_and_refuses_a_target_without_one(capsys):
    assert main(["check", str(MODELS / "siamsnn_micro_loihi.pt"), "--target", "loihi", "--census", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)["census"]
    assert (data["cores"], data["chips"], data["max_chips"], data["fits"]) == (88, 1, 64, True)
    assert sum(r["cores"] for r in data["layers"]) == 88
    assert main(["check", str(MODELS / "digits_cnn_truenorth.pt"), "--target", "truenorth", "--census"]) == 2
    err = capsys.readouterr().err
    assert "truenorth has no core census" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(UserError, match="no core census"):
        census(load_graph(MODELS / "digits_cnn_truenorth.pt"), load_target("truenorth"), CompileOptions())


def test_a_compile_refused_for_memory_points_to_the_census(tmp_path, capsys, monkeypatch):
    import neurocomp.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 1 << 20)   # above the file's unpacked size, below the compile's
    argv = ["compile", str(MODELS / "siamsnn_micro_loihi.pt"), "--target", "loihi", "-o", str(tmp_path / "p")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "needs about" in err and "neurocomp check MODEL --target T --census" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p").exists()


def test_weights_without_census_is_one_line(capsys):
    assert main(["check", str(MODELS / "digits_cnn_loihi.pt"), "--target", "loihi", "--weights", "levels"]) == 2
    err = capsys.readouterr().err
    assert "goes with --census" in err and len(err.strip().splitlines()) == 1
