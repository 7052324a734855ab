"""SiamSNN: hybrid response by hand, graph heads, and a track on the emulated chip."""
import numpy as np
import pytest
import torch

from neurocomp.models.siamsnn import (EMBEDDING, GATES, SCORE, SCORE_SPIKES, hybrid_response, siamsnn_record,
                                      tracker_config, with_kernel)


def test_hybrid_response_by_hand():
    u = np.array([1.0, 3.0, 6.0, 10.0]).reshape(1, 4, 1)  # increments c_t = 1, 2, 3, 4
    assert hybrid_response(u, tau0=2, weighting="drop")[0, 0] == pytest.approx(3.5)
    assert hybrid_response(u, tau0=0, weighting="linear")[0, 0] == pytest.approx(30 / 10)
    assert hybrid_response(u, tau0=0, weighting="uniform")[0, 0] == pytest.approx(2.5)
    with pytest.raises(ValueError):
        hybrid_response(u, 0, "median")


def test_exemplar_on_the_canvas_corner_embeds_exactly_like_the_exemplar_alone():
    """The one-program design: no layer pads, so conv5's top-left e x e window of a search-size
    canvas holding the exemplar at its corner sees only the exemplar's pixels."""
    from neurocomp.models.siamfc import build

    torch.manual_seed(1)
    model = build("micro").eval()
    cfg = model.config
    z = torch.rand(1, 3, cfg.exemplar_size, cfg.exemplar_size) * 255
    canvas = torch.zeros(1, 3, cfg.search_size, cfg.search_size)
    canvas[..., :cfg.exemplar_size, :cfg.exemplar_size] = z
    e = cfg.embed_size(cfg.exemplar_size)
    with torch.no_grad():
        torch.testing.assert_close(model.embed(canvas)[..., :e, :e], model.embed(z), rtol=1e-5, atol=1e-4)


def _tiny_siamsnn():
    from neurocomp.models.siamfc import SiamConfig, SiamFC
    from neurocomp.models.siamsnn import SiamSNNOptions, build_siamsnn

    torch.manual_seed(0)
    # conv4 wide enough that TrueNorth splits the score layers' fan-in: the split's partial sums
    # leave the two-status kick two of a neuron's four weight levels.
    cfg = SiamConfig("tiny", 41, 73, (2, 2, 4, 8, 2), (5, 3, 3, 3, 3), conv_strides=(2, 2, 1, 1, 1), pools=False)
    return build_siamsnn(SiamFC(cfg).eval(), SiamSNNOptions(calibration_samples=4, timesteps=8, tau0=2))


def test_siamsnn_graph_heads_and_metadata():
    g = _tiny_siamsnn()
    assert g.shape(EMBEDDING) == (2, 3, 3) and g.shape(SCORE) == (1, 9, 9) and g.shape(SCORE_SPIKES) == (81,)
    assert siamsnn_record(g)["config"]["name"] == "tiny"
    cfg = tracker_config(g)
    assert (cfg.exemplar_size, cfg.search_size, cfg.stride, cfg.score_size) == (41, 73, 4, 9)
    bound = with_kernel(g, np.full((2, 3, 3), 0.5), timesteps=8, tau0=3)
    np.testing.assert_array_equal(bound.node(GATES).v_init, [-2.0] * 4 + [-3.0] * 4)
    np.testing.assert_array_equal(bound.node("corr.score").weight, np.full((1, 2, 3, 3), 0.5))
    theta = 0.25 * 18 * 8 / 5  # K.K spread over the 5-tick fire window
    np.testing.assert_allclose(bound.node("corr.spikes").weight, 0.5 / theta)


def test_track_cli_on_emulated_truenorth(tmp_path):
    """Compile a tiny SiamSNN, track 3 frames on the emulated chip; binding rewrites only score cores."""
    import json

    from neurocomp.cli import main
    from neurocomp.frontend.ptfile import save_graph

    save_graph(_tiny_siamsnn(), tmp_path / "tiny.pt")
    prog = tmp_path / "tiny.tn"
    assert main(["compile", str(tmp_path / "tiny.pt"), "--target", "truenorth", "-o", str(prog), "--json"]) == 0
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["track", str(prog), "--frames", "3", "--ticks", "8", "--exemplar-ticks", "16", "--tau0", "2",
                     "--gif", str(tmp_path / "t.gif"), "--json"])
    assert code == 0
    rec = json.loads(buf.getvalue())
    assert len(rec["boxes"]) == 3 and 0 <= rec["auc"] <= 1 and (tmp_path / "t.gif").stat().st_size > 1000
    pf = rec["per_frame"]
    assert pf["ticks"] == 3 * 8 + 16 / 2  # three scales per frame, plus the exemplar's ticks over two frames
    assert pf["chip_ms"] == pytest.approx(pf["ticks"])  # TrueNorth ticks at 1 ms
    n_cores = json.loads((prog / "report.json").read_text())["cores_used"]
    assert 0 < rec["cores_rewritten"][0] < n_cores
    assert main(["track", str(prog), "--tau0", "9", "--ticks", "8"]) == 2


def test_chip_tracker_runs_the_ticks_a_fan_in_split_adds():
    """A 300-input hidden layer is split into partial sums on TrueNorth (one more tick before the score):
    the tracker runs T + 1 ticks, counts them, and hands the scorer the last T."""
    from neurocomp.compiler import CompileOptions, compile_graph
    from neurocomp.ir.graph import IF, Affine, Graph, Input, Output, Readout
    from neurocomp.models.chip_tracker import ChipOptions, ChipSiamese, lags
    from neurocomp.target import load_target

    rng = np.random.default_rng(0)
    g = Graph([Input("x", (300,), "spikes"), Affine("a", rng.choice([-1.0, 1.0], (4, 300))), IF("h", threshold=2.0),
               Affine("b", np.ones((2, 4))), Readout("score"), Output("o")],
              [("x", "a"), ("a", "h"), ("h", "b"), ("b", "score"), ("score", "o")])
    target = load_target("truenorth")
    program = compile_graph(g, target, CompileOptions()).program
    assert lags(g, program) == {"score": 1}
    chip = ChipSiamese(g, program, target, ChipOptions())
    x = (rng.random((2, 300)) < 0.5).astype(float)
    result = chip._run(g, program, chip.prepared, {"x": x}, 6, ("score",))
    assert result.ticks == 6 and result.potentials["score"].shape == (2, 6, 2)
    assert chip.stats.ticks == 2 * 7 and chip.stats.frames == 1
