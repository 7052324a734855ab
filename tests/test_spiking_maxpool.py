"""Spiking max pooling (convert --maxpool spiking): the IF tree computes the window maximum of rates."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from neurocomp.backends import reference
from neurocomp.convert import ConvertOptions, ann_forward, conversion_info, convert
from neurocomp.convert.ann import Pool
from neurocomp.convert.maxpool import levels, spiking_max
from neurocomp.errors import GraphError
from neurocomp.ir.graph import Graph, Input, Output, Readout
from neurocomp.ir.layers import lower

T = 200


@pytest.mark.parametrize("rates, kernel", [([0.25, 0.5, 0.75, 0.1], (2, 2)), ([0.3, 0.9, 0.2, 0.6, 0.1, 0.4, 0.8, 0.5, 0.7], (3, 3))])
def test_tree_counts_the_window_maximum(rates: list[float], kernel: tuple[int, int]) -> None:
    """Rate-coded inputs (one window, one channel); the read-out sums the spikes of the pooled output, so
    after T ticks it holds ~ max(rate) * T, short by at most one spike per level of latency and rounding."""
    pool = Pool("pool", "max", kernel, kernel)
    tree, edges, picks = spiking_max("x", 1, pool, "ro", "subtract")
    ops = [p for _, p in picks if p is not None]
    nodes = [Input("x", (1, *kernel), encoding="rate"), *tree, *ops, Readout("ro"), Output("y")]
    edges += [(src, p.name if p else "ro") for src, p in picks] + [(p.name, "ro") for p in ops] + [("ro", "y")]
    res = reference.run(lower(Graph(nodes, edges)), {"x": np.array(rates).reshape(1, 1, *kernel)}, T)
    total = res.potentials["ro"][0, -1].item()
    assert levels(pool) == (2 if len(rates) == 4 else 4)
    assert max(rates) * T - levels(pool) - 2 <= total <= max(rates) * T + 1


def _cnn(pool_after_relu: bool) -> nn.Module:
    torch.manual_seed(0)
    mid = [nn.ReLU(), nn.MaxPool2d(2)] if pool_after_relu else [nn.MaxPool2d(2), nn.ReLU()]
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), *mid, nn.Flatten(), nn.Linear(36, 3)).double().eval()


@pytest.mark.parametrize("pool_after_relu", [True, False])
def test_convert_keeps_the_max(pool_after_relu: bool) -> None:
    """A max pool before the ReLU moves after it (they commute); the float SNN then tracks the ANN's max-pool logits."""
    x = np.random.default_rng(0).uniform(size=(64, 1, 6, 6))
    net = _cnn(pool_after_relu)
    opts = ConvertOptions(maxpool="spiking", timesteps=64, calibration_batches=1, calibration_rounds=1)
    g = convert(net, x, input_shape=(1, 6, 6), method=opts)
    assert {"if1", "readout.max1", "readout.max1.rest", "readout.max2", "readout.pick", "readout"} <= {n.name for n in g.nodes}
    with torch.no_grad():
        logits = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ann_forward(net, x, opts), logits, atol=1e-12)  # the ANN it approximates keeps the max
    info = conversion_info(g)
    assert info["argmax_agreement"] >= 0.9 and info["layers"]["readout"]["rmse"] < 0.1 * np.abs(logits).max()


def test_max_pool_on_the_input_is_refused() -> None:
    net = nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(9, 2)).double().eval()
    with pytest.raises(GraphError, match="max pool .* must directly follow a ReLU"):
        convert(net, np.random.default_rng(0).uniform(size=(8, 1, 6, 6)), input_shape=(1, 6, 6),
                method=ConvertOptions(maxpool="spiking"))


def test_overlapping_pool_on_an_odd_map_keeps_the_pool_geometry() -> None:
    """3x3/2 on 7x7 gives 3x3; the window-start pick must not give ceil(7/2) = 4."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Conv2d(2, 2, 3), nn.ReLU(),
                        nn.Flatten(), nn.Linear(2, 3)).eval()
    x = np.random.default_rng(0).random((8, 1, 9, 9))
    g = convert(net, x, input_shape=(1, 9, 9), method=ConvertOptions(calibration_batches=0, batch_size=8))
    assert g.shape("if2") == (2, 1, 1)
    assert reference.run(lower(g), {"input": x[:2]}, ticks=8).potentials["readout"].shape == (2, 8, 3)


@pytest.mark.parametrize("target", ["truenorth", "loihi"])
def test_pick_then_linear_compiles_with_the_pick_kept_at_one(target: str) -> None:
    """pick (one-hot conv) -> flatten -> linear is a chain of two weighted ops; the cores store their
    product, so the pick keeps its integer 1s and only the linear takes the weight range."""
    from neurocomp.compiler import CompileOptions, compile_graph
    from neurocomp.target import load_target

    x = np.random.default_rng(0).uniform(size=(64, 1, 6, 6))
    reset = "subtract" if target == "truenorth" else "zero"
    g = convert(_cnn(True), x, input_shape=(1, 6, 6),
                method=ConvertOptions(maxpool="spiking", reset=reset, timesteps=32, calibration_batches=0, batch_size=8))
    compiled = compile_graph(g, load_target(target), CompileOptions(timesteps=32))
    picks = [op for lay in compiled.qnet.network.layers for p in lay.projections for op in p.chain if op.name.endswith("pick")]
    assert picks and all(np.array_equal(np.unique(np.asarray(op.weight)), [0.0, 1.0]) for op in picks)
