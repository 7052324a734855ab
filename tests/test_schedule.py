"""The tracker's real-time schedule (issue 17.4): the search scales in parallel on their own cores.

A parallel SiamSNN holds one copy of the search branch per scale (the same weights, each its own
Input and Correlation); it tracks exactly as the sequential one does, and a frame costs one run
(T + the mapping's lag) instead of one per scale, on ~3x the cores.
"""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch

from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.frames import FRAME_KEY
from neurocomp.errors import UserError
from neurocomp.ir.graph import IF, Affine, Graph, Input, Output, Readout
from neurocomp.models.chip_tracker import ChipOptions, ChipSiamese
from neurocomp.models.siamsnn import (GATES, SCORE, SiamSNNOptions, build_siamsnn, parallel_scales,
                                      scale_names, scheduled, tracker_config, with_kernel)
from neurocomp.models.tracker import Tracker
from neurocomp.models.tracking_data import make_clip
from neurocomp.report.tables import frame_rows
from neurocomp.target import load_target

FAST = CompileOptions(timesteps=8, place_effort=1, place_anneal=0, congestion=0.0)
T, EXEMPLAR_TICKS, TAU0 = 8, 16, 2


def tiny(reset: str) -> Graph:
    from neurocomp.models.siamfc import SiamConfig, SiamFC

    torch.manual_seed(0)
    cfg = SiamConfig("tiny", 41, 73, (2, 2, 4, 8, 2), (5, 3, 3, 3, 3), conv_strides=(2, 2, 1, 1, 1), pools=False)
    opts = SiamSNNOptions(calibration_samples=4, calibration_batches=0, timesteps=T, tau0=TAU0, reset=reset)
    return build_siamsnn(SiamFC(cfg).eval(), opts)


@pytest.fixture(scope="module")
def loihi_tiny() -> Graph:
    return tiny("zero")


def test_parallel_graph_copies_the_search_branch_per_scale(loihi_tiny):
    seq, par = loihi_tiny, scheduled(loihi_tiny, "parallel")
    assert [i.name for i in par.inputs] == ["input@0", "input@1", "input@2"]
    assert scale_names(par, SCORE) == ("score@0", "score@1", "score@2") and scale_names(seq, SCORE) == (SCORE,)
    assert len(par.nodes) == 3 * (len(seq.nodes) - 4) + 4   # the embedding head (conv5, crop, read-out, output) once
    assert par.predecessors(par.predecessors("embedding.crop")[0]) == ["if4@0"]
    for k in range(3):
        np.testing.assert_array_equal(par.node(f"conv5.score@{k}").weight, seq.node("conv5.score").weight)
        assert par.shape(f"score@{k}") == seq.shape(SCORE) and par.shape(f"input@{k}") == seq.shape("input")
    assert tracker_config(par).scale_num == 3
    frames = {s: json.loads(g.metadata[FRAME_KEY]) for s, g in (("seq", seq), ("par", par))}
    assert (frames["seq"]["runs"], frames["par"]["runs"]) == (3, 1)
    assert frames["par"]["read"] == [f"score@{k}" for k in range(3)] + [f"score_spikes@{k}" for k in range(3)]
    bound = with_kernel(par, np.full((2, 3, 3), 0.5), timesteps=T, tau0=3)
    theta = 0.25 * 18 * T / (T - 3)
    for k in range(3):   # one kernel into every copy; every copy's gates retimed
        np.testing.assert_array_equal(bound.node(f"corr.score@{k}").weight, np.full((1, 2, 3, 3), 0.5))
        np.testing.assert_allclose(bound.node(f"corr.spikes@{k}").weight, 0.5 / theta)
        np.testing.assert_array_equal(bound.node(f"{GATES}@{k}").v_init, [-2.0] * 4 + [-3.0] * 4)
    with pytest.raises(UserError, match="already parallel"):
        scheduled(par, "parallel")


def _lagged(frame: dict) -> Graph:
    """A 300-input hidden layer: TrueNorth splits it into partial sums, one tick behind the Graph."""
    rng = np.random.default_rng(0)
    g = Graph([Input("x", (300,), "spikes"), Affine("a", rng.choice([-1.0, 1.0], (4, 300))), IF("h", threshold=2.0),
               Affine("b", np.ones((2, 4))), Readout("score"), Output("o")],
              [("x", "a"), ("a", "h"), ("h", "b"), ("b", "score"), ("score", "o")])
    return Graph(g.nodes, g.edges, {FRAME_KEY: json.dumps(frame)})


def test_frame_figures_by_hand_for_both_schedules():
    """T = 20 ticks + 1 tick of fan-in split at 1 ms: sequential 3 x 21 = 63 ticks (15.9 frames/s), parallel
    21 ticks (47.6 frames/s) on three times the cores."""
    target = load_target("truenorth")
    opts = CompileOptions(timesteps=20, place_effort=1, place_anneal=0, congestion=0.0)
    seq = _lagged({"schedule": "sequential", "runs": 3, "units": 3, "unit": "search scale", "read": ["score"]})
    copies = parallel_scales(seq, 3)
    par = Graph(copies.nodes, copies.edges, {FRAME_KEY: json.dumps(
        {"schedule": "parallel", "runs": 1, "units": 3, "unit": "search scale", "read": ["score@0", "score@1", "score@2"]})})
    reports = {name: compile_graph(g, target, opts).report for name, g in (("seq", seq), ("par", par))}
    for name, ticks in (("seq", 63), ("par", 21)):
        f = reports[name]["realtime"]["frame"]
        assert (f["ticks_per_run"], f["lag_ticks"], f["ticks_per_frame"]) == (21, 1, ticks)
        assert f["frames_per_s"] == pytest.approx(1000 / ticks) and f["latency_s"] == pytest.approx(ticks / 1000)
    assert reports["par"]["cores_used"] == 3 * reports["seq"]["cores_used"]
    assert reports["seq"]["realtime"]["ticks_per_inference"] == 20 + reports["seq"]["latency_ticks"]  # unchanged
    rows = dict(frame_rows(reports["par"]["realtime"]["frame"]))
    assert rows["schedule"] == "parallel: 3 search scales side by side, 1 run per frame"
    assert rows["ticks / frame"] == "21 = 1 x (20 + 1 mapping lag)"
    assert dict(frame_rows(reports["seq"]["realtime"]["frame"]))["schedule"] == \
        "sequential: 3 runs one after another per frame"


def test_a_frame_record_states_its_own_ticks_per_run():
    """A SiamSNN states the ticks its tracker runs per scale (12 here): they count, not the compile's T (20);
    a record with a run count or ticks below 1 is refused."""
    target = load_target("truenorth")
    opts = CompileOptions(timesteps=20, place_effort=1, place_anneal=0, congestion=0.0)
    own = {"schedule": "sequential", "runs": 3, "units": 3, "unit": "search scale", "read": ["score"], "ticks": 12}
    f = compile_graph(_lagged(own), target, opts).report["realtime"]["frame"]
    assert (f["ticks_per_run"], f["lag_ticks"], f["ticks_per_frame"]) == (13, 1, 39)
    with pytest.raises(UserError, match="must be >= 1"):
        compile_graph(_lagged(own | {"ticks": 0}), target, opts)


def _track(g: Graph, target_name: str, score: str) -> tuple[np.ndarray, ChipSiamese, dict]:
    target = load_target(target_name)
    compiled = compile_graph(g, target, FAST)
    chip = ChipSiamese(g, compiled.program, target, ChipOptions(T, EXEMPLAR_TICKS, TAU0, score=score))
    boxes = Tracker(chip.embed, chip.score, tracker_config(g)).track(make_clip(10_000, 3, split="test"))
    return boxes, chip, compiled.report


def _same_track_both_ways(seq: Graph, target_name: str, score: str) -> tuple[dict, dict]:
    """Both schedules on the emulator: identical boxes; the per-frame ticks each schedule costs."""
    got = {name: _track(g, target_name, score) for name, g in (("seq", seq), ("par", scheduled(seq, "parallel")))}
    np.testing.assert_array_equal(got["seq"][0], got["par"][0])
    run = T + got["seq"][1].lag[got["seq"][1].read[0]]
    assert got["par"][1].read == tuple(f"{got['seq'][1].read[0]}@{k}" for k in range(3))
    assert got["seq"][1].stats.per_frame()["ticks"] == 3 * run + EXEMPLAR_TICKS / 2   # 2 tracked frames
    assert got["par"][1].stats.per_frame()["ticks"] == run + EXEMPLAR_TICKS / 2
    return got["seq"][2], got["par"][2]


@pytest.mark.parametrize("score", ["potential", "spikes"])
def test_parallel_schedule_tracks_exactly_like_sequential_on_loihi(loihi_tiny, score):
    seq, par = _same_track_both_ways(loihi_tiny, "loihi", score)
    # 13 search-branch cores per scale (the score's coarse and fine parts: targets/loihi/legalize.py) + the embedding's
    assert (seq["cores_used"], par["cores_used"]) == (14, 40)


@pytest.mark.slow
@pytest.mark.parametrize("score", ["potential", "spikes"])
def test_parallel_schedule_tracks_exactly_like_sequential_on_truenorth(score):
    seq, par = _same_track_both_ways(tiny("subtract"), "truenorth", score)
    assert par["chips_used"] > seq["chips_used"] and 2.9 < par["cores_used"] / seq["cores_used"] <= 3


def test_builder_reschedules_and_track_reports_the_schedule(loihi_tiny, tmp_path, monkeypatch):
    """`python -m neurocomp.models.siamsnn MODEL.pt --schedule parallel` reschedules a saved SiamSNN; compile and
    track state the schedule, one run of T ticks per frame, and the cores and chips used."""
    import sys

    from neurocomp.cli import main
    from neurocomp.frontend.ptfile import load_graph, save_graph
    from neurocomp.models import siamsnn

    save_graph(loihi_tiny, tmp_path / "seq.pt")
    monkeypatch.setattr(sys, "argv", ["siamsnn", str(tmp_path / "seq.pt"), "--schedule", "parallel",
                                      "-o", str(tmp_path / "par.pt")])
    siamsnn.main()
    assert [i.name for i in load_graph(tmp_path / "par.pt").inputs] == ["input@0", "input@1", "input@2"]
    prog = tmp_path / "par.loihi"
    assert main(["compile", str(tmp_path / "par.pt"), "--target", "loihi", "--timesteps", str(T), "-o", str(prog),
                 "--json"]) == 0
    frame = json.loads((prog / "report.json").read_text())["realtime"]["frame"]
    assert (frame["schedule"], frame["ticks_per_frame"]) == ("parallel", T)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["track", str(prog), "--frames", "3", "--ticks", str(T), "--exemplar-ticks", str(EXEMPLAR_TICKS),
                     "--tau0", str(TAU0), "--json"]) == 0
    rec = json.loads(buf.getvalue())
    assert (rec["schedule"], rec["scales"], rec["ticks_per_scale"], rec["cores"], rec["chips"]) == ("parallel", 3, T, 40, 1)
    assert rec["per_frame"]["ticks"] == T + EXEMPLAR_TICKS / 2
