"""The core census (neurocomp.compiler.census, `neurocomp check --census`): per layer the cores a compile builds,
counted without core tables; refused in one line on a target without one; the chips against the spec's."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from neurocomp.cli import main
from neurocomp.compiler import CompileOptions, census, compile_graph
from neurocomp.frontend.ptfile import load_graph
from neurocomp.target import load_target

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.mark.parametrize("model, weights", [("siamsnn_micro_loihi.pt", None), ("digits_cnn_loihi.pt", None),
                                            ("siamsnn_micro3g_truenorth.pt", None), ("digits_cnn_truenorth.pt", "levels")])
def test_the_census_counts_the_cores_the_compile_builds(model, weights):
    graph, target = load_graph(MODELS / model), load_target(model.split("_")[-1].removesuffix(".pt"))
    counted = census(graph, target, CompileOptions(weights=weights))
    built = compile_graph(graph, target, CompileOptions(weights=weights)).program.netlist
    assert {c.layer: c.cores for c in counted.layers} == {m.name: len(m.cores) for m in built.layers}
    assert counted.cores == built.n_cores and counted.chips == -(-built.n_cores // target.spec.cores_per_chip)
    assert not counted.unmapped


@pytest.mark.parametrize("model", ["siamsnn_micro_loihi.pt", "siamsnn_micro3g_truenorth.pt"])
def test_the_census_tells_progress_each_stage_then_each_layer_once(model):
    """A paper-size census takes a minute: its bar names the front-end stage, then each layer with how many are
    counted of how many (TrueNorth counts from the last layer, Loihi from the first)."""
    graph, target = load_graph(MODELS / model), load_target(model.split("_")[-1].removesuffix(".pt"))
    told: list[str] = []
    counted = census(graph, target, CompileOptions(), told.append)
    names = [c.layer for c in counted.layers if not c.layer.endswith(".splitters")]
    n = len(names)
    assert told[:3] == ["lower", "legalize", "quantize"] and len(told) == 3 + n
    order = names[::-1] if target.name == "truenorth" else names
    assert told[3:] == [f"{name} ({k} of {n} layers)" for k, name in enumerate(order, 1)]


@pytest.mark.parametrize("model, target, cores", [("siamsnn_micro_loihi.pt", "loihi", 91),
                                                  ("siamsnn_micro_truenorth.pt", "truenorth", 7722)])
def test_check_census_prints_the_count(model, target, cores, capsys):
    assert main(["check", str(MODELS / model), "--target", target, "--census", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)["census"]
    per_chip = load_target(target).spec.cores_per_chip
    assert (data["cores"], data["chips"], data["fits"]) == (cores, -(-cores // per_chip), True)
    assert sum(r["cores"] for r in data["layers"]) == cores


def test_check_census_lists_a_splits_parts_in_one_row_and_the_json_each(capsys, monkeypatch):
    """The micro tracker's three score layers are split into 16 parts each on TrueNorth: the table gives one row per
    split, with the parts' neurons and cores summed; the JSON keeps all 48 parts."""
    monkeypatch.setenv("COLUMNS", "200")
    model = str(MODELS / "siamsnn_micro_truenorth.pt")
    assert main(["check", model, "--target", "truenorth", "--census", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["census"]["layers"]
    parts = [r for r in rows if r["layer"].startswith("score@1.part")]
    assert len(parts) == 16 and len([r for r in rows if ".part" in r["layer"]]) == 48
    assert main(["check", model, "--target", "truenorth", "--census"]) == 0
    table = capsys.readouterr().out
    row = next(line for line in table.splitlines() if "score@1.part*" in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[:3] == [f"score@1.part* (16 parts, {parts[0]['cores']} cores each)",
                         f"{sum(r['neurons'] for r in parts):,}", f"{sum(r['cores'] for r in parts):,}"]
    assert "score@1.part3 " not in table and table.count(".part*") == 3
    assert "if1@0 " in table and "embedding " in table


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
