"""neurocomp.train: QCFS, weight projections onto each target's sets, BN folding, the chip-in-the-loop surrogate
(bit for bit against the emulator), checkpoints and the CLI's refusals, and a small digits run end to end."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays
from torch import nn

from neurocomp.backends import emulator, reference
from neurocomp.cli import main
from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.errors import UserError
from neurocomp.ir.layers import lower
from neurocomp.target import load_target
from neurocomp.targets.truenorth.quant import cluster_weights
from neurocomp.train import (Surrogate, chip_logits, TrainOptions, deploy_for, exactness, finetune, fit, from_module, predict, qcfs,
                             to_graph, training_info)
from neurocomp.train import data as td
from neurocomp.train.augment import jitter
from neurocomp.train.pool import compose_conv, compose_linear, composed_stride

torch.set_num_threads(1)
TN, LOIHI = load_target("truenorth"), load_target("loihi")


def test_qcfs_hand_values():
    # lambda 2, L 4: steps = clip(floor(2 z + 1/2), 0, 4), h = steps / 2
    z = torch.tensor([-1.0, 0.0, 0.24, 0.26, 0.75, 1.3, 2.0, 5.0], dtype=torch.float64)
    lam = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    h = qcfs(z, lam, 4)
    assert h.tolist() == [0.0, 0.0, 0.0, 0.5, 1.0, 1.5, 2.0, 2.0]
    h.sum().backward()
    # dh/dlambda = steps / L - z / lambda where the floor's STE passes (0 <= steps <= L), steps / L where
    # clipped: 0, 0, 0 - 0.12, 0.25 - 0.13, 0.5 - 0.375, 0.75 - 0.65, 1 - 1, and 1 for z = 5
    assert lam.grad.item() == pytest.approx(-0.12 + 0.12 + 0.125 + 0.1 + 1.0)


@settings(max_examples=25, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 70)),
              elements=st.floats(-400, 400, allow_nan=False)), st.sampled_from(("bits", "levels", "trinary")))
def test_truenorth_projection_lands_in_its_set(w, mode):
    d = deploy_for(TN, mode)
    q = d.project(w)
    assert d.in_set(q)
    assert np.array_equal(cluster_weights(q, TN.spec, mode), q)   # the compiler stores it unchanged
    assert np.array_equal(d.project(q), q)


@settings(max_examples=25, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 70)),
              elements=st.floats(-400, 400, allow_nan=False)))
def test_loihi_projection_lands_on_the_mantissa(w):
    d = deploy_for(LOIHI)
    q = d.project(w)
    assert d.in_set(q)
    top = 127 if (q.min() < 0 < q.max()) else 255
    assert np.abs(q).max() <= top and np.array_equal(q, np.rint(q))


def test_projection_sets_by_hand():
    tn = deploy_for(TN, "trinary")
    assert tn.project(np.array([[3.0, -2.6, 0.2, 0.0]])).tolist() == [[3.0, -3.0, 0.0, 0.0]]
    assert not tn.in_set(np.array([[3.0, -2.0]]))
    assert deploy_for(LOIHI).project(np.array([[300.0, -0.4, 2.5]])).tolist() == [[255.0, -0.0, 2.0]]
    assert deploy_for(LOIHI).project(np.array([[300.0, -1.0]])).tolist() == [[127.0, -1.0]]


def test_batchnorm_is_folded_before_the_constraint():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(108, 4)).double()
    bn = m[1]
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 2)
    bn.bias.data.uniform_(-1, 1)
    m.eval()
    net = from_module(m, (1, 8, 8), deploy_for(TN), 16)
    x = torch.rand(5, 1, 8, 8, dtype=torch.float64)
    assert torch.allclose(net.float_forward(x)[-1], m(x), atol=1e-10)
    sigma = torch.sqrt(bn.running_var + bn.eps)
    folded = m[0].weight * (bn.weight / sigma)[:, None, None, None]
    assert torch.allclose(net.layers[0].weight, folded, atol=1e-12)   # the weights the constraint projects


def _small(kind: str, target, seed: int = 0):
    """A random small dense or conv net with lambdas from its activations, as an integer Graph."""
    torch.manual_seed(seed)
    if kind == "dense":
        m = nn.Sequential(nn.Flatten(), nn.Linear(64, 24), nn.ReLU(), nn.Linear(24, 16), nn.ReLU(), nn.Linear(16, 5))
    elif kind == "wide":   # the pooled read-out reads 16 x 4 x 4 positions: TrueNorth splits it into parts (host-summed)
        m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 16, 3, stride=2, padding=1),
                          nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(64, 5))
    elif kind == "conv":
        m = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(36, 5))
    elif kind == "split":   # the issue's digits CNN: conv2's fan-in 144 becomes spiking partial sums on TrueNorth
        m = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(64, 5))
    else:   # the digits CNN, small: conv + BN, strided conv, average pool, linear
        m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2, padding=1),
                          nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16, 5))
    net = from_module(m.double().eval(), (1, 8, 8), deploy_for(target), 8)
    x = np.random.default_rng(seed).random((40, 1, 8, 8))
    net.init_lambdas(torch.from_numpy(x), 99.0)
    return net, x


@pytest.mark.parametrize("kind", ["dense", "conv", "avgpool", "wide", "split"])
@pytest.mark.parametrize("target", [TN, LOIHI], ids=["truenorth", "loihi"])
def test_surrogate_equals_the_emulator_bit_for_bit(kind, target):
    net, x = _small(kind, target)
    graph = to_graph(net)
    assert all(exactness(graph, net.deploy).values())
    compiled = compile_graph(graph, target, CompileOptions(timesteps=8))
    ticks = 8 + compiled.report["latency_ticks"]
    res = emulator.run(compiled.program, target, {"input": x}, ticks)
    surrogate = Surrogate(compiled.qnet, net.deploy)
    with torch.no_grad():
        spikes, potential = surrogate(surrogate.encode(x, ticks))
    parts = [layer.name for layer in compiled.qnet.network.layers if ".part" in layer.name]
    partials = [n for n in parts if n.startswith("if2.part")]
    assert len(parts) - len(partials) == (4 if kind in ("wide", "split") and target is TN else 0)
    assert len(partials) == (6 if kind == "split" and target is TN else 0)   # 3 channel groups, each sign
    assert set(spikes) == {"if1", "if2", *partials}
    for name, s in spikes.items():
        assert res.spikes[name].sum() > 0
        assert np.array_equal(s.numpy(), res.spikes[name])
    assert np.array_equal(potential.numpy(), res.potentials["readout"])   # the parts' sum, as the host adds them
    assert np.abs(potential.numpy()).max() > 0


@pytest.mark.parametrize("kind", ["dense", "conv", "avgpool", "wide"])
@pytest.mark.parametrize("target", [TN, LOIHI], ids=["truenorth", "loihi"])
def test_spiking_forward_is_the_chips_read_out_with_gradients(kind, target):
    """QATNet.spiking_forward (the tandem epochs' forward) equals the emulated chip's last read-out potential in
    float units, and its gradient reaches every layer's weights through the rate model."""
    net, x = _small(kind, target)
    compiled = compile_graph(to_graph(net), target, CompileOptions(timesteps=8))
    ticks = 8 + compiled.report["latency_ticks"]
    assert ticks == 8 + len(net.layers)
    chip = emulator.run(compiled.program, target, {"input": x}, ticks).potentials["readout"][:, -1]
    logits = net.spiking_forward(torch.from_numpy(x))
    assert np.allclose(logits.detach().numpy(), chip * net.readout_unit() / 8, rtol=0, atol=1e-9)
    assert np.abs(chip).max() > 0
    logits.square().sum().backward()
    assert all(float(layer.weight.grad.abs().sum()) > 0 for layer in net.layers)


def test_chip_forward_is_checked():
    with pytest.raises(UserError, match="chip_forward"):
        TrainOptions(chip_forward="exact")


def test_reset_zero_model_counts_the_loihi_neurons_spikes():
    """Loihi's IF (the surrogate's step, bit for bit the emulator's) from v = theta / 2 under a constant current
    fires as many times in T ticks as the reset-to-zero model of QCFS says; QCFS itself overcounts."""
    hooks, theta, ticks = deploy_for(LOIHI).hooks, 8.0, 16
    currents = torch.arange(0.0, 10.0, dtype=torch.float64)
    regs = {"vth": torch.tensor(theta * 64)}
    v, fired = torch.full_like(currents, theta / 2 * 64), torch.zeros_like(currents)
    for _ in range(ticks):
        v, s = hooks.surrogate_step(v, currents, torch.zeros_like(currents), regs, lambda a, b: (a >= b).double())
        fired += s
    model = hooks.qat_activation(currents, torch.tensor(theta), ticks) * ticks / theta
    assert model.tolist() == fired.tolist() == [0, 2, 3, 5, 5, 8, 8, 8, 8, 16]   # I = 1: ticks 5 and 14
    assert qcfs(currents, torch.tensor(theta), ticks).mul(ticks / theta).tolist() == [0, 2, 4, 6, 8, 10, 12, 14, 16, 16]


def test_pooled_weight_composition_by_hand():
    """A pool's 1/area spreads each tap of the next op over its window: the weights the chip holds."""
    w = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float64)          # Linear on a pooled (1, 2, 2) map
    got = compose_linear(w, (1, 5, 5), (((2, 2), (2, 2)),)).reshape(5, 5)    # row and column 5: dropped by the pool
    assert got.tolist() == [[.25, .25, .5, .5, 0], [.25, .25, .5, .5, 0], [.75, .75, 1, 1, 0], [.75, .75, 1, 1, 0], [0] * 5]
    k = compose_conv(torch.full((1, 1, 1, 1), 8.0, dtype=torch.float64), (((2, 2), (2, 2)),))
    assert k.tolist() == [[[[2.0, 2.0], [2.0, 2.0]]]] and composed_stride((1, 1), (((2, 2), (2, 2)),)) == (2, 2)
    k = compose_conv(torch.tensor([[[[4.0, 8.0]]]], dtype=torch.float64), (((2, 2), (1, 1)),))
    assert k.tolist() == [[[[1.0, 3.0, 2.0], [1.0, 3.0, 2.0]]]]   # overlapping windows sum


@pytest.mark.parametrize("target", [TN, LOIHI], ids=["truenorth", "loihi"])
def test_avgpool_export_holds_the_composed_integers(target):
    net, _ = _small("avgpool", target)
    graph = to_graph(net)
    assert exactness(graph, net.deploy) == {"if1": True, "if2": True, "readout": True}
    q = np.asarray(graph.node("linear").weight)
    assert q.shape == (5, 64)                                   # over the unpooled (4, 4, 4) map, no SumPool2d node
    blocks = q.reshape(5, 4, 2, 2, 2, 2)                        # (out, c, y, dy, x, dx): one value per pool window
    assert np.array_equal(blocks, np.broadcast_to(blocks[:, :, :, :1, :, :1], blocks.shape))
    assert net.deploy.in_set(q) and np.abs(q).max() > 0


def test_max_pool_is_refused_in_one_line():
    m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 5)).double().eval()
    with pytest.raises(UserError, match=r"^max_pool2d: max pool is not supported in training yet .*average pooling"):
        from_module(m, (1, 8, 8), deploy_for(TN), 8)


@pytest.mark.parametrize("mode", TN.hooks.WEIGHT_MODES)
def test_export_is_exact_in_every_truenorth_weight_mode(mode):
    x = np.random.default_rng(0).random((40, 1, 8, 8))
    torch.manual_seed(0)
    net = from_module(nn.Sequential(nn.Flatten(), nn.Linear(64, 12), nn.ReLU(), nn.Linear(12, 4)).double().eval(),
                      (1, 8, 8), deploy_for(TN, mode), 8)
    net.init_lambdas(torch.from_numpy(x), 99.0)
    graph = to_graph(net)
    assert exactness(graph, net.deploy) == {"if1": True, "readout": True}
    for name in ("linear", "linear_1"):
        assert net.deploy.in_set(np.asarray(graph.node(name).weight))


def test_a_read_out_mode_constrains_the_read_out_only_and_the_compiler_keeps_both():
    """Trinary spiking layers under a "bits" read-out: each layer lands in its own set, the Graph records both,
    the compiler picks the read-out's mode (whose set holds trinary rows) and keeps every integer; a chip of
    that Graph maps its hidden layer on two axons per input."""
    from neurocomp.compiler import trained_weight_mode

    x = np.random.default_rng(0).random((40, 1, 8, 8))
    torch.manual_seed(0)
    m = nn.Sequential(nn.Flatten(), nn.Linear(64, 12), nn.ReLU(), nn.Linear(12, 4)).double().eval()
    net = from_module(m, (1, 8, 8), deploy_for(TN, "trinary", "bits"), 8)
    net.init_lambdas(torch.from_numpy(x), 99.0)
    graph = to_graph(net)
    hidden, readout = (np.asarray(graph.node(n).weight) for n in ("linear", "linear_1"))
    assert max(np.unique(np.abs(r[r != 0])).size for r in hidden) == 1            # trinary rows
    assert max(np.unique(np.abs(r[r != 0])).size for r in readout) > 1             # the read-out kept its levels
    assert net.deploy.in_set(readout, readout=True) and not net.deploy.in_set(readout)
    assert training_info(graph)["readout_weights"] == "bits" and net.deploy.compile_mode == "bits"
    assert trained_weight_mode(graph, TN) == "bits"
    assert exactness(graph, net.deploy) == {"if1": True, "readout": True}
    compiled = compile_graph(graph, TN, CompileOptions())
    assert compiled.program.manifest["options"]["weights"] == "bits" and all(q.exact for q in compiled.qnet.layers)
    nl = compiled.program.netlist
    hidden_cores = np.asarray(nl.core_layer) == [lm.name for lm in nl.layers].index("if1")
    assert np.diff(nl.axon_ptr)[hidden_cores].sum() <= 2 * 64                     # paired axons: <= 2 per input
    assert deploy_for(TN, "bits", "bits").readout_mode is None
    with pytest.raises(UserError, match="weight mode 'fine' is not one of truenorth's"):
        deploy_for(TN, "trinary", "fine")
    with pytest.raises(UserError, match="read-out weight mode 'trinary' does not hold 'bits' weights on truenorth"):
        deploy_for(TN, "bits", "trinary")


@pytest.mark.parametrize("kind", ["dense", "wide", "split"])
def test_finetuned_graph_stays_exact_and_in_the_set(kind):
    net, x = _small(kind, TN, seed=1)
    graph = to_graph(net)
    compiled = compile_graph(graph, TN, CompileOptions(timesteps=8))
    s = Surrogate(compiled.qnet, net.deploy)
    # the wide net's chip already equals its QAT model (error ~2e-5): there the teacher is another seed's net
    unit, teacher = training_info(graph)["readout_unit"], torch.from_numpy(predict(net if kind == "dense" else _small(kind, TN, 2)[0], x))
    run_ticks = 8 + compiled.report["latency_ticks"]
    error = lambda: float(torch.mean((chip_logits(s, x, run_ticks, unit, 8).detach() - teacher) ** 2))  # noqa: E731
    before = error()
    finetune(s, x, teacher.numpy(), run_ticks, unit, 8, epochs=2, lr=0.5, batch_size=20,
             holdout=0)
    assert error() < before   # measured on these seeds: the chip's logits move toward the QAT model's
    assert any(".part" in n for n in s.names) == (kind != "dense")
    tuned = s.to_graph()
    for part in (n for n in s.names if ".part" in n):   # each part still reads only its own channel group
        node = tuned.predecessors(part)[0]
        axes = (0,) if kind == "wide" or part.startswith("readout") else (0, 2, 3)
        reads = [np.any(np.asarray(g.node(node).weight) != 0, axis=axes) for g in (tuned, s.graph)]
        assert np.array_equal(*reads) and 0 < reads[0].sum() < reads[0].size
    assert all(exactness(tuned, net.deploy).values())
    again = compile_graph(tuned, TN, CompileOptions(timesteps=8))
    ticks = 8 + again.report["latency_ticks"]
    with torch.no_grad():
        _, pot = Surrogate(again.qnet, net.deploy)(s.encode(x, ticks))
        _, mine = s(s.encode(x, ticks))
    assert np.array_equal(pot.numpy(), mine.numpy())   # the recompiled chip computes the fine-tuned surrogate


@pytest.mark.parametrize("target", [TN, LOIHI], ids=["truenorth", "loihi"])
def test_a_windowed_fine_tune_of_the_spiking_layers_leaves_the_read_out(target):
    """A tracker's kind of fine-tune: the read-out read as a mean rise over a window (checked against the emulator's
    potentials by hand), judged by the loss alone, only the spiking layers' weights trained (the read-out's and
    every bias kept as compiled)."""
    net, x = _small("wide", target, seed=3)
    graph = to_graph(net)
    compiled = compile_graph(graph, target, CompileOptions(timesteps=8))
    ticks, window = 8 + compiled.report["latency_ticks"], (4, 8 + compiled.report["latency_ticks"])
    unit = training_info(graph)["readout_unit"]
    s = Surrogate(compiled.qnet, net.deploy)
    pot = emulator.run(compiled.program, target, {"input": x}, ticks).potentials["readout"]
    by_hand = (pot[:, window[1] - 1] - pot[:, window[0] - 1]) * unit / (window[1] - window[0])
    with torch.no_grad():
        np.testing.assert_array_equal(chip_logits(s, x, ticks, unit, 8, window=window).numpy(), by_hand)
    teacher = predict(_small("wide", target, 4)[0], x)   # another net's outputs: there is something to learn
    before = [p.detach().clone() for p in s.parameters()]
    error = lambda: float(np.mean((chip_logits(s, x, ticks, unit, 8, window=window).detach().numpy() - teacher) ** 2))  # noqa: E731
    start = error()
    finetune(s, x, teacher, ticks, unit, 8, epochs=3, lr=0.5, batch_size=20, holdout=0, window=window, classes=False,
             spiking_weights_only=True)
    assert error() < start
    frozen = {id(p) for p in s.parameters()} - {id(p) for p in s.spiking_weights()}
    moved = [not torch.equal(a, p) for a, p in zip(before, s.parameters())]
    assert frozen and not any(m for m, p in zip(moved, s.parameters()) if id(p) in frozen) and any(moved)


def test_whole_mode_maps_the_digits_cnn_without_partial_sums_and_computes_its_source():
    """conv2's fan-in 144 has both signs: the default modes split it into spiking partial sums (not exact); in
    "whole" mode each neuron keeps 4 levels on one axon per input, and the chip equals the exported Graph."""
    net, x = _small("split", TN)
    default = compile_graph(to_graph(net), TN, CompileOptions(timesteps=8))
    assert any(".part" in layer.name for layer in default.qnet.network.layers)
    assert not all(q.exact for q in default.qnet.layers)
    torch.manual_seed(0)
    net = from_module(nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                    nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                                    nn.Linear(64, 5)).double().eval(), (1, 8, 8), deploy_for(TN, "whole"), 8)
    net.init_lambdas(torch.from_numpy(x), 99.0)
    w2 = net.layers[1].integers(net.layers[0].lam, net.deploy)[0].detach().numpy().reshape(16, -1)
    assert (np.count_nonzero(w2, axis=1).max() > 128 and   # wider than a core takes with paired axons
            np.max([np.unique(r[r != 0]).size for r in w2]) == 4)   # and all four levels kept
    graph = to_graph(net)
    compiled = compile_graph(graph, TN, CompileOptions(timesteps=8))
    assert [layer.name for layer in compiled.qnet.network.layers] == ["if1", "if2", "readout"]
    assert all(q.exact for q in compiled.qnet.layers) and compiled.program.manifest["options"]["weights"] == "whole"
    ticks = 8 + compiled.report["latency_ticks"]
    chip = emulator.run(compiled.program, TN, {"input": x}, ticks)
    source = reference.run(lower(graph), {"input": x}, ticks)
    for name in ("if1", "if2"):
        assert chip.spikes[name].sum() > 0 and np.array_equal(chip.spikes[name], source.spikes[name])
    assert np.array_equal(chip.potentials["readout"], source.potentials["readout"])
    assert compiled.program.netlist.n_cores > default.program.netlist.n_cores   # the price: fewer neurons per core
    surrogate = Surrogate(compiled.qnet, net.deploy)
    with torch.no_grad():
        spikes, potential = surrogate(surrogate.encode(x, ticks))
    assert all(np.array_equal(spikes[name].numpy(), chip.spikes[name]) for name in ("if1", "if2"))
    assert np.array_equal(potential.numpy(), chip.potentials["readout"])


def test_jitter_is_seeded_and_only_moves_the_chosen_fraction():
    x = torch.from_numpy(np.random.default_rng(0).random((64, 1, 8, 8)))
    same = lambda **k: jitter(x, torch.Generator().manual_seed(3), **k)  # noqa: E731
    assert torch.equal(same(fraction=0.0), x)
    assert torch.allclose(same(degrees=0.0, scale=0.0, shift=0.0), x, atol=1e-12)   # the identity warp
    a, b = same(fraction=0.5), same(fraction=0.5)
    moved = (a != x).flatten(1).any(1)
    assert torch.equal(a, b) and 16 < int(moved.sum()) < 48
    with pytest.raises(UserError, match="images"):
        jitter(x.flatten(1), torch.Generator())
    with pytest.raises(UserError, match="jitter"):
        TrainOptions(jitter=1.5)
    net, _ = _small("dense", LOIHI)
    before = [p.detach().clone() for p in net.parameters()]
    with pytest.raises(UserError, match=r"\(64,\) per sample"):   # flat input: refused before any step
        fit(net, x.flatten(1).numpy(), np.arange(64) % 5, TrainOptions(epochs=1, jitter=0.5))
    assert all(torch.equal(a, p) for a, p in zip(before, net.parameters()))


def test_resume_gives_the_same_weights(tmp_path):
    net, x = _small("dense", LOIHI)
    y = np.arange(len(x)) % 5
    opts = TrainOptions(timesteps=8, epochs=2, float_epochs=1, batch_size=16, jitter=0.5)
    whole = fit(_small("dense", LOIHI)[0], x, y, opts)
    ckpt, config = tmp_path / "run.ckpt", "c"

    class Stop(Exception):
        pass

    def save_then_stop(epoch, n, o):
        td.save_checkpoint(ckpt, epoch, config, n, o, [])
        if epoch == 2:
            raise Stop

    first = _small("dense", LOIHI)[0]
    opt = torch.optim.Adam(first.parameters(), lr=opts.lr)
    with pytest.raises(Stop):
        fit(first, x, y, opts, 0, opt, save_then_stop)
    resumed = _small("dense", LOIHI)[0]
    opt = torch.optim.Adam(resumed.parameters(), lr=opts.lr)
    start = td.load_checkpoint(ckpt, config, resumed, opt)
    assert start == 2
    fit(resumed, x, y, opts, start, opt)
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(td.UserError, match="another model"):
        td.load_checkpoint(ckpt, "other", resumed, opt)


@pytest.fixture(scope="module")
def pt2(tmp_path_factory):
    d = tmp_path_factory.mktemp("train")
    m = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    torch.export.save(torch.export.export(m, (torch.zeros(1, 1, 8, 8),)), d / "m.pt2")
    return d


@pytest.mark.parametrize("change, message", [
    (lambda x, y: (np.where(np.arange(x.size).reshape(x.shape) == 5, np.nan, x), y), "NaN or Inf"),
    (lambda x, y: (x[:, :, :4], y), r"must be \(samples, 1, 8, 8\)"),
    (lambda x, y: (x, y[:-1]), "one per sample"),
    (lambda x, y: (x, y + 3), r"integers in \[0, 3\)"),
    (lambda x, y: (x * 2, y), r"lie in \[0, 1\]"),
])
def test_cli_refuses_bad_data_before_training(pt2, capsys, change, message):
    x, y = change(np.random.default_rng(0).random((12, 1, 8, 8)), np.arange(12) % 3)
    np.savez(pt2 / "bad.npz", input=x, labels=y)
    out = pt2 / "out.pt"
    assert main(["train", str(pt2 / "m.pt2"), "--data", str(pt2 / "bad.npz"), "--target", "loihi", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neurocomp: error: training") or "labels" in err[0]
    assert __import__("re").search(message, err[0])
    assert not out.exists() and not (pt2 / "out.pt.ckpt").exists()


def test_cli_trains_resumes_and_writes_a_compilable_model(pt2, capsys):
    rng = np.random.default_rng(0)
    np.savez(pt2 / "ok.npz", input=rng.random((24, 1, 8, 8)), labels=np.arange(24) % 3)
    args = ["train", str(pt2 / "m.pt2"), "--data", str(pt2 / "ok.npz"), "--target", "truenorth", "--timesteps", "8",
            "--epochs", "2", "--float-epochs", "1", "--finetune", "1", "--json", "-o", str(pt2 / "snn.pt")]
    assert main(args) == 0
    first = (pt2 / "snn.pt").read_bytes()
    assert (pt2 / "snn.pt.ckpt").exists()
    assert main(args + ["--resume"]) == 0   # the checkpoint is at the last epoch: nothing left but the export
    assert (pt2 / "snn.pt").read_bytes() == first
    assert main(args[:-2] + ["-o", str(pt2 / "none.pt"), "--resume"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["compile", str(pt2 / "snn.pt"), "--target", "truenorth", "-o", str(pt2 / "prog"), "--json"]) == 0
    jittered = args[:-2] + ["--jitter", "0.5", "-o", str(pt2 / "jit.pt")]
    assert main(jittered) == 0 and (pt2 / "jit.pt").read_bytes() != first   # the moved images train other weights
    assert main(args[:-2] + ["--jitter", "1.5", "-o", str(pt2 / "no.pt")]) == 2 and not (pt2 / "no.pt").exists()
    spiking = args[:-2] + ["--chip-forward", "spikes", "-o", str(pt2 / "spk.pt")]
    assert main(spiking) == 0 and (pt2 / "spk.pt").read_bytes() != first   # the QAT epochs ran the chip's spikes
    assert main(args[:-2] + ["--chip-forward", "exact", "-o", str(pt2 / "no.pt")]) == 2 and not (pt2 / "no.pt").exists()


def digits_run(target, timesteps: int, seed: int, finetune_epochs: int = 0) -> dict[str, float]:
    """Train a 64-48-10 MLP on the first 1,437 digits (float, then QAT), compile for the target, emulate 360 held-out digits."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = d.images[:, None] / 16.0, d.target
    xtr, ytr, xte, yte = x[:-360], y[:-360], x[-360:], y[-360:]
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 10)).double().eval()
    net = from_module(m, (1, 8, 8), deploy_for(target), timesteps)
    fit(net, xtr, ytr, TrainOptions(timesteps=timesteps, float_epochs=40, epochs=10, lr=3e-3, seed=seed))
    out = {"float ANN": float((predict(net, xte, quantised=False).argmax(1) == yte).mean()),
           "QAT ANN": float((predict(net, xte).argmax(1) == yte).mean())}
    graph = to_graph(net)
    compiled = compile_graph(graph, target, CompileOptions(timesteps=timesteps))
    ticks = timesteps + compiled.report["latency_ticks"]
    res = emulator.run(compiled.program, target, {"input": xte}, ticks)
    out["chip"] = float((res.potentials["readout"][:, -1].argmax(-1) == yte).mean())
    out["exact"] = float(all(q.exact for q in compiled.qnet.layers))
    return out


@pytest.mark.parametrize("target", [TN, LOIHI], ids=["truenorth", "loihi"])
def test_digits_end_to_end(target):
    # measured (seed 0, T 16, 360 held-out digits): truenorth float 90.3 %, QAT 90.0 %, chip 90.0 %;
    # loihi float 89.7 %, QAT 89.4 %, chip 89.4 %. Margins: QAT within 1 pt of float, chip within 1 pt of QAT.
    r = digits_run(target, 16, seed=0)
    assert r["exact"] == 1.0
    assert r["QAT ANN"] >= 0.88 and r["QAT ANN"] >= r["float ANN"] - 0.01
    assert r["chip"] >= r["QAT ANN"] - 0.01


def test_a_fine_tune_judged_on_jittered_copies_runs_the_chip_on_them(monkeypatch):
    """judge_jitter k: every judgement (before the first epoch and after each) also runs the chip on k seeded affine
    jitters of each held-out image, scored against its label; the jitters are the same every run."""
    from neurocomp.train import surrogate as sur

    net, x = _small("avgpool", TN)
    compiled = compile_graph(to_graph(net), TN, CompileOptions(timesteps=8))
    s = Surrogate(compiled.qnet, net.deploy)
    ticks, unit = 8 + compiled.report["latency_ticks"], training_info(to_graph(net))["readout_unit"]
    labels = predict(net, x).argmax(-1)
    judged: list[int] = []
    real = sur.chip_logits

    def spy(surrogate, xs, *args, **kwargs):
        if not (len(args) > 3 and args[3]):   # not a training batch
            judged.append(len(xs))
        return real(surrogate, xs, *args, **kwargs)

    monkeypatch.setattr(sur, "chip_logits", spy)
    finetune(s, x, predict(net, x), ticks, unit, 8, epochs=2, batch_size=20, labels=labels, holdout=0.25,
             judge_jitter=3)
    assert judged == [10, 30] * 3   # 10 of the 40 held out, 30 jittered copies; 3 judgements
    moved, y = sur._jittered(x[:10], torch.from_numpy(labels[:10]), 3, seed=0)
    again, _ = sur._jittered(x[:10], torch.from_numpy(labels[:10]), 3, seed=0)
    assert moved.shape == (30, 1, 8, 8) and np.array_equal(moved, again) and np.array_equal(y.numpy(), np.tile(labels[:10], 3))
    assert not np.allclose(moved, np.tile(x[:10], (3, 1, 1, 1)))
    with pytest.raises(ValueError, match="pass labels"):
        finetune(s, x, predict(net, x), ticks, unit, 8, epochs=1, judge_jitter=3)
