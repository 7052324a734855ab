"""What the CLI prints: progress bars (transient, on the console), --quiet, report's interface, export --json."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from neurocomp.cli import main
from neurocomp.compiler import CompileOptions, compile_graph, compile_stages
from neurocomp.frontend.ptfile import save_graph
from neurocomp.progress import steps
from neurocomp.target import load_target
from netlib import integer_cnn, random_spikes, shared_nir_dir


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    save_graph(integer_cnn(), tmp_path / "net.pt")
    return tmp_path / "net.pt"


def test_compile_stages_are_the_stages_compile_runs(model):
    graph, target = integer_cnn(), load_target("loihi")
    seen: list[str] = []
    compile_graph(graph, target, CompileOptions(), progress=seen.append)
    assert tuple(seen) == compile_stages(False)
    seen.clear()
    profile = {"x": random_spikes((2, 6, 6), batch=2, ticks=8, rate=0.3).astype(np.float64).mean(axis=1)}
    compile_graph(graph, target, CompileOptions(timesteps=8), progress=seen.append, profile=profile)
    assert tuple(seen) == compile_stages(True)


def test_a_bar_names_each_step_and_counts_them():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with steps(console, "compiling", 3) as step:
        for name in ("lower", "partition", "place"):
            step(name)
    text = out.getvalue()
    assert "compiling: place" in text and "2/3" in text
    quiet = io.StringIO()
    with steps(Console(file=quiet, force_terminal=True, quiet=True), "compiling", 3) as step:
        step("lower")
    assert quiet.getvalue() == ""


def test_quiet_prints_nothing_and_still_writes(model, tmp_path, capsys):
    assert main(["compile", str(model), "--target", "loihi", "-o", str(tmp_path / "p"), "--quiet"]) == 0
    assert (tmp_path / "p" / "manifest.json").is_file()
    assert capsys.readouterr() == ("", "")
    assert main(["report", str(tmp_path / "p"), "--quiet", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cores_used"] >= 1


def test_report_states_inputs_outputs_and_how_to_run(model, tmp_path, capsys):
    prog = tmp_path / "p"
    assert main(["compile", str(model), "--target", "truenorth", "-o", str(prog), "--quiet"]) == 0
    assert main(["report", str(prog), "--json"]) == 0
    face = json.loads(capsys.readouterr().out)["interface"]
    assert face["inputs"] == [{"name": "x", "shape": [2, 6, 6], "encoding": "spikes", "npz_key": "input",
                               "accepts": "spikes (batch, ticks, 2, 6, 6) of 0/1"}]
    assert [(o["name"], o["kind"], o["npz_key"]) for o in face["outputs"]] == [("n2", "spiking", "spikes/n2")]
    assert face["run"] == f"neurocomp run {prog} --input IN.npz --out OUT.npz"
    x = random_spikes((2, 6, 6), batch=1, ticks=face["ticks"], rate=0.3)
    np.savez(tmp_path / "in.npz", **{face["inputs"][0]["npz_key"]: x})   # the interface is what run takes
    assert main(["run", str(prog), "--input", str(tmp_path / "in.npz"), "--out", str(tmp_path / "o.npz"), "--quiet"]) == 0
    with np.load(tmp_path / "o.npz") as o:
        assert o[face["outputs"][0]["npz_key"]].shape == (1, face["ticks"], 4)


def test_export_json_names_what_it_wrote(model, tmp_path, capsys):
    assert main(["export", str(model), "--nir", str(tmp_path / "m.nir"), "--bias-timing", "early", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"nir": str(tmp_path / "m.nir"), "source": str(model), "dt": 1e-3,
                                                   "bias_timing": "early"}
    assert (tmp_path / "m.nir").is_file()


def test_the_nir_reading_options_reach_the_reader(tmp_path, capsys):
    """An IF whose r is neither 1 nor 1/dt is refused until --if-gain says how to read it; export --lif-r picks
    the LIF form (r = 1 folds tau/dt into the weights)."""
    import nir

    g = nir.NIRGraph(nodes={"x": nir.Input(input_type={"input": np.array([2])}),
                            "fc": nir.Affine(weight=np.array([[1.0, 0.5], [0.25, 1.0]]), bias=np.zeros(2)),
                            "if": nir.IF(r=np.array([0.8, 0.8]), v_threshold=np.array([1.0, 1.0])),
                            "y": nir.Output(output_type={"output": np.array([2])})},
                     edges=[("x", "fc"), ("fc", "if"), ("if", "y")])
    nir.write(tmp_path / "if.nir", g)
    argv = ["check", str(tmp_path / "if.nir"), "--target", "loihi", "--json"]
    assert main(argv) == 2
    assert "if_gain" in capsys.readouterr().err
    assert main(argv + ["--if-gain", "step"]) == 0
    assert json.loads(capsys.readouterr().out)["total_layers"] == 1
    braille = ["check", str(shared_nir_dir() / "braille_noDelay_bias_zero.nir"), "--target", "loihi", "--dt", "1e-4",
               "--json"]   # biases into a decaying current, one tick before the input
    assert main(braille) == 2
    assert "--bias-timing early" in capsys.readouterr().err
    assert main(braille + ["--bias-timing", "early"]) == 0
    save_graph(integer_cnn(), tmp_path / "m.pt")
    for form in ("tau/dt", "1"):
        assert main(["export", str(tmp_path / "m.pt"), "--nir", str(tmp_path / f"m{form[-1]}.nir"), "--lif-r", form,
                     "--bias-timing", "early", "--quiet"]) == 0


def test_the_clis_nir_choices_are_the_readers():
    import inspect

    from neurocomp import cli_nir
    from neurocomp.frontend import load_model, nirgraph

    assert (cli_nir.IF_GAINS, cli_nir.INTEGRATORS, cli_nir.BIAS_TIMINGS, cli_nir.LIF_RS) == \
        (nirgraph.IF_GAINS, nirgraph.INTEGRATORS, nirgraph.BIAS_TIMINGS, nirgraph.LIF_RS)
    assert list(inspect.signature(load_model).parameters)[1:] == list(cli_nir.READING)


def test_the_scale_out_tables_show_their_records_numbers(capsys):
    """eval, track --clips and sweep print their records through report.tables.emit: the table with the record's
    figures, or (as_json) the record itself."""
    import io
    import json

    from rich.console import Console

    from neurocomp.report.tables import emit

    timing = {"workers": 2, "address": None, "ray_startup_s": 4.25, "workers_open_s": 1.5, "work_s": 7.75, "total_s": 9.0}
    records = {
        "eval_table": timing | {"samples": 45, "chunks": 6, "accuracy": 0.3111, "correct": 14, "spikes_per_sample": 12.5,
                                "chip_spikes_per_sample": 30.25, "energy_per_sample_j": 3.602e-6,
                                "dynamic_per_sample_j": 1.5e-6, "samples_per_s": 5.8},
        "clips_table": timing | {"clips": 1, "frames": 3, "per_clip": [{"clip": 4, "auc": 0.905, "precision": 1.0,
                                                                          "fps": 19.2, "energy_uj": 23521.7}],
                                 "auc": 0.905, "precision": 1.0, "chip_fps": 19.2, "energy_uj_per_frame": 23521.7,
                                 "host_fps": 0.26},
        "grid_table": timing | {"rows": [{"target": "loihi", "timesteps": 8, "weights": "levels", "accuracy": 0.3111,
                                          "cores": 2, "energy_uj": 3.602}]},
    }
    wanted = {"eval_table": ("0.3111 (14/45)", "3.602 uJ", "7.75 s"), "clips_table": ("0.905", "23521.7 uJ", "4.25 s"),
              "grid_table": ("0.3111", "3.602 uJ", "1.50 s")}
    for name, record in records.items():
        console = Console(file=io.StringIO(), width=200, record=True)
        assert emit(False, console, record, name) is False
        text = console.export_text()
        assert all(w in text for w in wanted[name]), (name, text)
        assert emit(True, console, record, name) is True
        assert json.loads(capsys.readouterr().out) == record
