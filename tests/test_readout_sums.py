"""Read-outs wider than a core: split over input-channel groups into parts the host adds
(neurocomp.partition.fanin, neurocomp.ir.sums). Exact on integer cases, on both targets."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from neurocomp.backends import emulator, reference
from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.ir import sums
from neurocomp.ir.graph import IF, Conv2d, Correlation, Graph, Input, Output, Readout
from neurocomp.ir.layers import lower
from neurocomp.partition import count_cores
from neurocomp.partition.fanin import channel_groups, fan_in, sample_rows, split_readouts
from neurocomp.quantize import quantize
from neurocomp.target import load_target
from netlib import random_spikes, wide_readout


@pytest.mark.parametrize("name,parts", [("loihi", 2), ("loihi2", 2), ("truenorth", 79)])
def test_wide_readout_program_equals_the_unsplit_graph(name: str, parts: int) -> None:
    """5,000 inputs: 2 parts of <= 4,096 on Loihi, ceil(5000 / 64) on TrueNorth (256 axons / 4 levels)."""
    g, target = wide_readout(), load_target(name)
    x = random_spikes((5000,), batch=2, ticks=6, rate=0.2)
    c = compile_graph(g, target, CompileOptions())
    assert len(c.report["host_summed_readouts"]["r"]) == parts == len(c.program.netlist.layers)
    assert c.program.netlist.outputs == ("r",) and c.report["latency_ticks"] == 1
    emu = emulator.run(c.program, target, {"x": x})
    ref = reference.run(lower(g), {"x": x}).potentials["r"]
    assert np.abs(ref).max() > 50
    assert np.array_equal(emu.potentials["r"], ref)
    only = emulator.run(c.program, target, {"x": x}, record=("r",))
    assert np.array_equal(only.potentials["r"], ref) and not only.spikes


def test_loihi_census_counts_the_parts() -> None:
    target = load_target("loihi")
    qnet = quantize(target.hooks.legalize(lower(wide_readout()), target.spec), target)
    census = count_cores(qnet, target)
    assert [(c.layer, c.cores, c.error) for c in census] == [("r.part0", 1, ""), ("r.part1", 1, "")]


def test_grouped_conv_masks_follow_source_channels() -> None:
    """Conv 4 out / 8 in, groups 2: outputs 0-1 read inputs 0-3 as columns 0-3, outputs 2-3 read inputs
    4-7 as columns 0-3. A budget of 2 inputs gives channel groups {0,1} {2,3} {4,5} {6,7}; group {2,3}
    is columns 2-3 of outputs 0-1 and nothing of outputs 2-3 (masking columns alone would take both)."""
    g = Graph([Input("x", (8, 3, 3), "spikes"), Conv2d("c", np.ones((4, 4, 1, 1)), groups=2), Readout("r"), Output("o")],
              [("x", "c"), ("c", "r"), ("r", "o")])
    layer = lower(g).layers[0]
    masks = channel_groups(layer.projections[0], sample_rows(layer), budget=2)
    a, b, z = [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0]
    assert [m[:, :, 0, 0].astype(int).tolist() for m in masks] == [[a, a, z, z], [b, b, z, z], [z, z, a, a], [z, z, b, b]]


def _score_net(seed: int = 0) -> Graph:
    """Grouped conv (8 x 64 x 3 x 3, groups 2) then a Correlation with an 8 x 8 x 8 kernel: each score
    neuron reads 64 channels x 10 x 10 = 6,400 inputs, like SiamFC's conv5 folded into its score."""
    rng = np.random.default_rng(seed)
    conv = Conv2d("conv5", rng.choice([-1.0, 1.0], size=(8, 32, 3, 3)), groups=2)
    corr = Correlation("corr", rng.choice([1.0, 2.0], size=(1, 8, 8, 8)))
    return Graph([Input("x", (64, 12, 12), "spikes"), conv, corr, Readout("score"), Output("o")],
                 [("x", "conv5"), ("conv5", "corr"), ("corr", "score"), ("score", "o")])


def test_split_groups_source_channels_through_a_grouped_conv() -> None:
    g = _score_net()
    net = lower(g)
    assert fan_in(net.layers[0].projections[0], sample_rows(net.layers[0])) == 6400
    split = split_readouts(net, lambda layer: True, budget=3200)
    parts = sums.decode(split.graph.metadata)["score"]
    assert parts == ("score.part0", "score.part1") and split.outputs == ("score",)
    for layer in split.layers:
        assert fan_in(layer.projections[0], sample_rows(layer)) == 3200
    x = random_spikes((64, 12, 12), batch=2, ticks=5, rate=0.3)
    whole = reference.run(net, {"x": x}).potentials["score"]
    summed = reference.run(split, {"x": x}).potentials["score"]
    assert np.abs(whole).max() > 20
    np.testing.assert_allclose(summed, whole, rtol=0, atol=1e-9)


def test_score_like_readout_on_loihi_is_exact() -> None:
    """Integer composite weights (|w| <= 36) are exact on Loihi: the summed program equals the graph."""
    g, target = _score_net(1), load_target("loihi")
    c = compile_graph(g, target, CompileOptions())
    assert c.report["host_summed_readouts"] == {"score": ["score.part0.coarse", "score.part0.fine", "score.part1.coarse",
                                                         "score.part1.fine"]}
    x = random_spikes((64, 12, 12), batch=2, ticks=5, rate=0.3, seed=2)
    emu = emulator.run(c.program, target, {"x": x}).potentials["score"]
    assert np.array_equal(emu, reference.run(lower(g), {"x": x}).potentials["score"])


def test_one_channel_too_wide_is_a_user_error() -> None:
    from neurocomp.errors import UserError

    g = Graph([Input("x", (1, 80, 80), "spikes"), Conv2d("c", np.ones((1, 1, 80, 80))), Readout("r"), Output("o")],
              [("x", "c"), ("c", "r"), ("r", "o")])
    with pytest.raises(UserError, match="one input channel of x already gives 6400 inputs"):
        split_readouts(lower(g), lambda layer: True, budget=4096)


def _bound_score(channels: int, kernel: int, side: int) -> Graph:
    """A tracker's score: a Correlation of `channels` x kernel x kernel over spikes, weights in -2..2 (4 levels per
    neuron: exact on TrueNorth)."""
    k = np.random.default_rng(4).integers(-2, 3, size=(1, channels, kernel, kernel)).astype(float)
    return Graph([Input("x", (channels, side, side), "spikes"), Correlation("corr", k), Readout("score"), Output("o")],
                 [("x", "corr"), ("corr", "score"), ("score", "o")])


@pytest.mark.parametrize("kernel,parts", [(5, 8), (7, 8), (3, 3)])
def test_truenorth_splits_a_bound_readout_into_parts_of_half_a_core(kernel: int, parts: int) -> None:
    """A bound kernel opens 4 types per input, so a part takes <= 64 inputs; TrueNorth asks for <= 32 (half a
    core's axons) where one channel allows. 8 channels: 5x5 -> 8 parts of one channel (25 inputs), not 4 of two;
    7x7 (49 inputs, over 32) -> parts of <= 64, one channel each; 3x3 -> 3 parts of <= 3 channels (27 inputs).
    Each program equals its graph, and a core holds several positions of a part."""
    g, target = _bound_score(8, kernel, 12), load_target("truenorth")
    c = compile_graph(g, target, CompileOptions())
    assert len(c.report["host_summed_readouts"]["score"]) == parts
    x = random_spikes((8, 12, 12), batch=2, ticks=5, rate=0.3, seed=1)
    emu = emulator.run(c.program, target, {"x": x}).potentials["score"]
    assert np.array_equal(emu, reference.run(lower(g), {"x": x}).potentials["score"])
    side = 12 - kernel + 1
    assert c.program.netlist.n_cores < parts * side * side


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 3), st.integers(0, 1), st.integers(1, 2),
       st.sampled_from(["", "pool", "crop", "flat"]), st.integers(0, 10_000))
def test_group_fan_ins_from_unit_counts_equal_the_masked_matrices(groups, per_group, k, pad, stride, beside, seed):
    """unit_fan_ins gives each row's inputs per input channel, as each channel's own masked matrix has them (a conv
    read once with its units as weights, a crop or flatten after it too; without padding, off its kernel alone; behind
    a pool, one matrix per unit), and a group of
    channels reads the sum of its channels' fan-ins: fanin.widest equals, for every group count, the widest row of
    each group's masked matrix."""
    from neurocomp.ir.graph import Crop, Flatten, SumPool2d
    from neurocomp.partition.fanin import _channel_masks, _input_channel, masked, unit_fan_ins, widest

    rng = np.random.default_rng(seed)
    c_in = groups * per_group
    w = rng.integers(-1, 2, size=(2 * groups, per_group, k, k)).astype(float)
    conv = Conv2d("c", w, padding=pad, stride=stride, groups=groups)
    ops = {"": [conv], "pool": [SumPool2d("p", (2, 2), stride=(1, 1)), conv], "crop": [conv, Crop("k", 1, 0, 2, 3)],
           "flat": [conv, Crop("k", 1, 0, 2, 3), Flatten("f")]}[beside]
    names = ["x"] + [op.name for op in ops] + ["n", "o"]
    layer = lower(Graph([Input("x", (c_in, 7, 7)), *ops, IF("n", threshold=1.0), Output("o")],
                        list(zip(names[:-1], names[1:])))).layers[0]
    proj, rows = layer.projections[0], np.arange(layer.size)
    at = next(i for i, op in enumerate(proj.chain) if isinstance(op, Conv2d))
    assert [type(op) for op in proj.chain] == [type(op) for op in ops]
    op = proj.chain[at]
    counts = unit_fan_ins(proj, at, rows, _input_channel(op), c_in)
    per_unit = [np.diff(masked(proj, at, np.broadcast_to(_input_channel(op) == u, w.shape)).matrix(rows).indptr)
                for u in range(c_in)]
    assert np.array_equal(counts, np.stack(per_unit, axis=1))
    for g in range(1, c_in + 1):
        direct = max(int(np.diff(masked(proj, at, m).matrix(rows).indptr).max(initial=0))
                     for m in _channel_masks(op, g))
        assert widest(counts, g) == direct


@pytest.mark.parametrize("weights", ["bits", "levels", "trinary", "whole"])
@pytest.mark.parametrize("net", ["wide", "score"])
def test_truenorth_readout_parts_fit_a_core_as_they_are(net, weights) -> None:
    """legalize plans no partial sums for the parts it splits a read-out into (each reads <= axons / per_input inputs
    per neuron), so it skips planning them: every part's plan is empty, bound (a Correlation's) or not."""
    from neurocomp.partition.fanin import split_of
    from neurocomp.targets.truenorth.legalize import _plan, _planned
    from neurocomp.targets.truenorth.quant import mode_levels
    target = load_target("truenorth")
    rng = np.random.default_rng(3)
    score = Graph([Input("x", (16, 10, 10), "spikes"), Correlation("corr", rng.choice([1.0, 2.0], size=(1, 16, 4, 4))),
                   Readout("score"), Output("o")], [("x", "corr"), ("corr", "score"), ("score", "o")])
    source = lower(wide_readout() if net == "wide" else score)
    legal = target.hooks.legalize(source, target.spec, weights)
    parts = [layer for layer in legal.layers if split_of(layer.name)]
    assert len(parts) >= 2
    levels = mode_levels(weights, target.spec)
    whole = weights == "whole"
    assert all(_plan(layer, target.spec, levels, whole) == {} for layer in parts)
    for layer in source.layers + legal.layers:   # legalize's test of which read-outs to split, without their groups
        assert _planned(layer, target.spec, whole) == bool(_plan(layer, target.spec, levels, whole))
