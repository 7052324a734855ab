"""The core-native SiamSNN: QAT backbone under SiamSNN's heads, stage files, the compiler reading what training recorded."""
import dataclasses
import json

import numpy as np
import pytest
import torch

from neurocomp.models.siamfc import SiamConfig, SiamFC
from neurocomp.models.siamsnn import EMBEDDING, SCORE, SiamSNNOptions, siamsnn_graph, with_kernel

TINY = SiamConfig("tiny", 41, 73, (2, 4, 4, 4, 2), (5, 3, 3, 3, 3), conv_strides=(2, 2, 1, 1, 1), pools=False,
                  groups=(1, 2, 2, 2, 2))


def _qat(target: str = "truenorth", timesteps: int = 8, weights: str | None = None):
    from neurocomp.models.siamsnn import calibration_inputs
    from neurocomp.models.train_siamsnn import qat_net

    torch.manual_seed(1)
    model = SiamFC(TINY).eval()
    with torch.no_grad():
        model.backbone[-1].bias.uniform_(-0.5, 0.5)   # conv5's bias: the head must keep it
    net = qat_net(model, target, timesteps, weights)
    net.init_lambdas(torch.from_numpy(calibration_inputs(model, 4, 0)), 99.9)
    return model, net


def test_heads_over_a_trained_backbone_keep_conv5s_bias_in_every_branch():
    """Embedding = the backbone's own read-out over the exemplar window, tick by tick; score(t) = K correlated
    with that read-out less its initial potential (conv5's copies carry the bias the QAT net put in the read-out)."""
    from neurocomp.backends import reference
    from neurocomp.ir.layers import lower
    from neurocomp.train import to_graph

    _, net = _qat()
    backbone = to_graph(net)
    readout = backbone.node("readout")
    assert np.any(readout.bias)
    g = siamsnn_graph(backbone, TINY, SiamSNNOptions(timesteps=8, spiking_score=False))
    assert json.loads(g.metadata["frame"])["ticks"] == 8   # the compiler's frame figures count the tracker's ticks
    kernel = np.random.default_rng(0).normal(size=(2, 3, 3))
    g = with_kernel(g, kernel, 8, 0)
    x = np.random.default_rng(1).random((2, 3, 73, 73))
    ticks = 12
    ref = reference.run(lower(backbone), {"input": x}, ticks=ticks, record=["readout"]).potentials["readout"]
    got = reference.run(lower(g), {"input": x}, ticks=ticks, record=[EMBEDDING, SCORE]).potentials
    np.testing.assert_allclose(got[EMBEDDING], ref[:, :, :, :3, :3], atol=1e-9)
    fed = torch.from_numpy(ref.reshape(-1, *ref.shape[2:]) - np.asarray(readout.v_init)[None])
    want = torch.nn.functional.conv2d(fed, torch.from_numpy(kernel)[None]).numpy().reshape(2, ticks, 1, 9, 9)
    np.testing.assert_allclose(got[SCORE], want, rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("target", ["truenorth", "loihi"])
def test_the_chip_stage_changes_only_conv1_4s_weights_and_stays_exact(target):
    """train_siamsnn's chip stage: the same Graph as the QAT stage's but for the spiking layers' integer weights
    (read-out, biases, thresholds and shapes kept), still in the target's sets, so the SiamSNN compiles exactly."""
    from neurocomp.ir.graph import Affine, Conv2d
    from neurocomp.models.train_siamsnn import QATOptions, chip_finetune
    from neurocomp.train import exactness, to_graph

    model, net = _qat(target)
    before = to_graph(net)
    after = chip_finetune(net, model, target, QATOptions(timesteps=8), epochs=3, samples=24)
    assert [n.name for n in after.nodes] == [n.name for n in before.nodes] and after.edges == before.edges
    weighted = [n.name for n in before.nodes if isinstance(n, (Affine, Conv2d))]
    changed = {n for n in weighted if not np.array_equal(after.node(n).weight, before.node(n).weight)}
    assert changed and changed <= set(weighted[:-1])   # some spiking layer moved; conv5 (the read-out's op) did not
    for a, b in zip(after.nodes, before.nodes):   # every other node is the QAT stage's own
        if a.name not in changed:
            assert type(a) is type(b) and all(np.array_equal(np.asarray(getattr(a, f.name), dtype=object),
                                                              np.asarray(getattr(b, f.name), dtype=object))
                                              for f in dataclasses.fields(a)), a.name
    assert all(exactness(after, net.deploy).values())


def test_trained_graph_compiles_exactly_with_the_weight_mode_and_T_it_was_trained_for():
    from neurocomp.compiler import CompileOptions, compile_graph, trained_weight_mode
    from neurocomp.target import load_target
    from neurocomp.train import to_graph

    _, net = _qat(timesteps=6, weights="trinary")
    graph = to_graph(net)
    assert json.loads(graph.metadata["training"])["weights"] == "trinary"
    compiled = compile_graph(graph, load_target("truenorth"), CompileOptions())
    options = compiled.program.manifest["options"]
    assert (options["weights"], options["timesteps"]) == ("trinary", 6)
    assert all(q.exact for q in compiled.qnet.layers)
    assert trained_weight_mode(graph, load_target("loihi")) == "levels"   # trained for another target: its default


@pytest.mark.parametrize("record", ['{"timesteps": "many", "weights": 3, "target": "truenorth"}', "[1, 2]", "not json",
                                    '{"timesteps": true}', '{"timesteps": -4}'])
def test_a_forged_training_record_falls_back_to_the_defaults(record):
    from neurocomp.compiler import DEFAULT_TIMESTEPS, trained_timesteps, trained_weight_mode
    from neurocomp.ir.graph import Graph, Input, Output
    from neurocomp.target import load_target

    g = Graph((Input("x", (2,)), Output("o")), (("x", "o"),), {"training": record})
    assert trained_timesteps(g) == DEFAULT_TIMESTEPS
    assert trained_weight_mode(g, load_target("truenorth")) == "bits"


def test_qat_stage_trains_and_its_files_are_replaced_only_when_they_are_ours(tmp_path):
    from neurocomp.errors import UserError
    from neurocomp.models.train_siamsnn import QATOptions, _save_state, load_qat, qat, stage_record
    from neurocomp.target import load_target
    from neurocomp.train import exactness, to_graph
    from neurocomp.train.deploy import deploy_for

    model = SiamFC(TINY).eval()
    opts = QATOptions(timesteps=8, epochs=1, chip_epochs=1, pairs_per_epoch=8, batch=4, clips_per_epoch=2,
                      frames_per_clip=8)
    before = [p.detach().clone() for p in model.parameters()]
    net = qat(model, "loihi", opts, log=lambda _: None)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))   # the float model is left alone
    assert all(exactness(to_graph(net), deploy_for(load_target("loihi"))).values())
    path = tmp_path / "stage.pt"
    _save_state(path, net.state_dict(), {"target": "loihi", "weights": net.deploy.mode}, 1.0)
    first = path.read_bytes()
    again = load_qat(model, "loihi", 8, path, stage_record(path)["weights"])
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values()))
    _save_state(path, net.state_dict(), {"target": "loihi", "weights": net.deploy.mode}, 2.0)   # ours: replaced
    assert path.read_bytes() == first   # the training time lives in the JSON beside it only
    foreign = tmp_path / "user.pt"
    foreign.write_bytes(b"user data")
    with pytest.raises(UserError):
        _save_state(foreign, net.state_dict(), {}, 0.0)
    assert foreign.read_bytes() == b"user data"


def test_fresh_photos_are_in_no_other_split():
    from neurocomp.models.tracking_data import SPLITS

    fresh = set(sum(SPLITS["fresh"], ()))
    assert fresh and not fresh & set(sum(SPLITS["train"] + SPLITS["test"], ()))


@pytest.mark.parametrize("config,density", [("micro3", 0.04), ("micro3g", 0.02)])
def test_the_committed_one_chip_trackers_compile_exactly_onto_one_truenorth_chip(config, density):
    """models/siamsnn_<config>_truenorth.pt: trinary conv1-4 (paired axons) under a bits read-out, three search scales
    side by side in 20 ticks per frame, the trained integers kept (all but the score's, whose kernel is bound at run
    time), on <= 4,096 cores of one chip; micro3g (16 groups) at <= 0.02 cores per network neuron."""
    from neurocomp.ir.layers import lower

    from pathlib import Path

    from neurocomp.compiler import CompileOptions, compile_graph
    from neurocomp.frontend import load_graph
    from neurocomp.ir.graph import Conv2d
    from neurocomp.target import load_target

    graph = load_graph(Path(__file__).resolve().parents[1] / "models" / f"siamsnn_{config}_truenorth.pt")
    record = json.loads(graph.metadata["training"])
    assert (record["weights"], record["readout_weights"]) == ("trinary", "bits")
    convs = [n for n in graph.nodes if isinstance(n, Conv2d) and n.name.startswith("conv")][:4]
    assert len(convs) == 4
    for conv in convs:
        rows = np.abs(np.asarray(conv.weight)).reshape(len(conv.weight), -1)
        assert max(np.unique(r[r != 0]).size for r in rows) == 1, conv.name
    compiled = compile_graph(graph, load_target("truenorth"), CompileOptions())
    assert all(q.exact for q in compiled.qnet.layers if not q.name.startswith(SCORE))
    assert compiled.program.placed.n_chips == 1 and compiled.program.netlist.n_cores <= 4096
    assert compiled.program.netlist.n_cores / sum(layer.size for layer in lower(graph).layers) <= density
    frame = compiled.report["realtime"]["frame"]
    assert frame["ticks_per_frame"] == 20 and frame["frames_per_s"] == 50.0
