import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from neurocomp.errors import QuantizeError, ResourceError
from neurocomp.ir.graph import IF, LIF, Affine, Graph, Input, Output
from neurocomp.ir.layers import lower
from neurocomp.partition import partition
from neurocomp.partition.rows import chunk_rows
from neurocomp.quantize import quantize
from neurocomp.target import load_target
from neurocomp.targets.loihi.mapping import synapse_bits
from neurocomp.targets.truenorth.quant import check_params, cluster_weights, distinct_nonzero, neuron_params
from netlib import integer_cnn

TN, LOIHI = load_target("truenorth"), load_target("loihi")


@pytest.mark.parametrize("target", [TN, LOIHI], ids=["truenorth", "loihi"])
def test_integer_net_is_exact(target):
    q = quantize(lower(integer_cnn()), target)
    assert all(layer.exact for layer in q.layers)
    assert all(np.isinf(layer.weight_snr_db) for layer in q.layers)


def test_truenorth_scale_is_the_finest_power_of_two_that_fits():
    # max |w| = 2, weight_max 255 -> 2 / 2^e <= 255 -> e = -6 (2 * 64 = 128)
    q = quantize(lower(integer_cnn()), TN)
    assert q.qlayer("n1").scale == 2.0 ** -6
    n1 = q.network.layer("n1")
    assert np.max(np.abs(n1.projections[0].chain[0].weight)) == 128
    assert np.all(np.asarray(n1.neuron.threshold) == 3 * 64)
    assert np.array_equal(np.unique(q.qlayer("n1").params["leak"]), np.array([-64, 0, 64]))


def test_loihi_mixed_weights_use_half_range():
    # mixed sign: 7-bit magnitude (127), so max |w| = 2 -> scale 2^-5
    q = quantize(lower(integer_cnn()), LOIHI)
    assert q.qlayer("n1").scale == 2.0 ** -5
    p = q.qlayer("n1").params
    assert np.all(p["vth"] == 3 * 32 - 1) and np.all(p["bias_exp"] == 6) and np.all(p["du"] == 4095)


def test_loihi_rejects_subtractive_reset_naming_the_layer():
    with pytest.raises(QuantizeError, match="n1: reset by subtraction"):
        quantize(lower(integer_cnn(reset="subtract")), LOIHI)


def test_truenorth_rejects_exponential_leak():
    g = Graph([Input("x", (2,)), Affine("a", np.ones((1, 2))), LIF("n", decay=0.9), Output("o")], [("x", "a"), ("a", "n"), ("n", "o")])
    with pytest.raises(QuantizeError, match="linear leak"):
        quantize(lower(g), TN)


def test_cluster_weights_limits_levels_by_fan_in():
    rng = np.random.default_rng(0)
    w = rng.integers(-50, 51, size=(6, 40)).astype(float)   # fan-in 40 -> 256 // 40 = 6 -> 4 levels
    q = cluster_weights(w, TN.spec)
    assert np.all(distinct_nonzero(q) <= 4)
    assert np.all(np.sign(q) == np.sign(w))
    wide = rng.integers(-50, 51, size=(3, 100)).astype(float)  # fan-in 100 -> 2 levels: one per sign
    assert np.all(distinct_nonzero(cluster_weights(wide, TN.spec)) <= 2)
    few = np.array([[3.0, -3.0, 0.0, 3.0]])
    assert np.array_equal(cluster_weights(few, TN.spec), few)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.sampled_from(["levels", "bits", "whole"]), st.integers(1, 12), st.integers(0, 60))
def test_columns_zero_in_every_row_change_no_clustered_weight(seed, mode, fan, dead):
    """A fan-in part's weights are its layer's masked to a few channels: clustering with the all-zero columns gives
    the live columns' clustering with zeros between, whatever the mode (they add no level and no error)."""
    rng = np.random.default_rng(seed)
    live = rng.integers(-60, 61, size=(5, fan)).astype(float)
    at = np.sort(rng.choice(fan + dead, size=fan, replace=False))
    padded = np.zeros((5, fan + dead))
    padded[:, at] = live
    want = np.zeros_like(padded)
    want[:, at] = cluster_weights(live, TN.spec, mode)
    assert np.array_equal(cluster_weights(padded, TN.spec, mode), want)


def _source_index(n, src_ids: np.ndarray, sender: np.ndarray) -> np.ndarray:
    """Layer index of the neuron each sending copy replicates (TrueNorth copies follow copy 0 in its core)."""
    order = np.argsort(src_ids)
    pos = np.searchsorted(src_ids[order], sender, side="right") - 1
    return order[pos]


@pytest.mark.parametrize("target", [TN, LOIHI], ids=["truenorth", "loihi"])
def test_netlist_synapses_equal_the_quantised_layers(target):
    """Summing the effective weights over each source's axons reproduces the quantised Graph's matrices."""
    q = quantize(lower(integer_cnn()), target)
    n = partition(q, target)
    S = target.hooks.synapse_matrix(n).toarray()
    for lm, layer in zip(n.layers, q.network.layers):
        (src, m), = chunk_rows(layer, np.arange(layer.size))
        if src == "x":
            senders, axons = n.in_channel, n.in_axon
        else:
            senders, axons = _source_index(n, n.layer(src).neurons, n.edge_src), n.edge_axon
        got = np.zeros(m.shape)
        np.add.at(got.T, senders, S[lm.neurons][:, axons].T)
        shift = 1 if target is LOIHI and np.any(m.data < 0) else 0
        assert np.array_equal(got, m.toarray() * 2 ** shift), lm.name


def test_truenorth_one_destination_per_neuron_and_no_shared_axons():
    n = partition(quantize(lower(integer_cnn()), TN), TN)
    assert np.all(np.bincount(n.edge_src, minlength=n.n_neurons) <= n.copies) and n.copies.max() > 1
    assert np.bincount(n.expanded().edge_src).max() == 1
    assert np.bincount(np.concatenate([n.edge_axon, n.in_axon])).max() == 1
    assert np.all(n.core_neurons() <= 256) and np.all(np.diff(n.axon_ptr) <= 256)


def test_big_dense_layer_splits_across_cores():
    rng = np.random.default_rng(0)
    g = Graph([Input("x", (64,)), Affine("a", rng.choice([-1.0, 1.0], size=(600, 64))), IF("n"), Output("o")],
              [("x", "a"), ("a", "n"), ("n", "o")])
    n = partition(quantize(lower(g), TN), TN)
    lm = n.layer("n")
    assert len(lm.cores) == 3                       # 600 neurons / 256 per core
    assert lm.binding.startswith("neurons")
    assert np.array_equal(np.sort(np.diff(n.neuron_ptr)), [88, 256, 256])


def test_fan_in_too_wide_for_one_core_is_a_precise_error():
    rng = np.random.default_rng(0)
    g = Graph([Input("x", (300,)), Affine("a", rng.choice([-1.0, 1.0], size=(4, 300))), IF("n"), Output("o")],
              [("x", "a"), ("a", "n"), ("n", "o")])
    with pytest.raises(ResourceError, match=r"layer n, one neuron: axons 300 exceeds the allowed 256"):
        partition(quantize(lower(g), TN), TN)


def test_loihi_synapse_memory_matches_nengo_worked_example():
    # LOIHI.md §2.1: dense 784 -> 256, 8-bit weights: 784 axons x 4 chunks x 576 bits = 1,806,336 bits
    axon = np.repeat(np.arange(784), 256)
    assert synapse_bits(axon, 784, 256, LOIHI.spec) == 1_806_336


def test_loihi_splits_by_synapse_memory():
    rng = np.random.default_rng(0)
    g = Graph([Input("x", (784,)), Affine("a", rng.integers(1, 100, size=(256, 784)).astype(float)), IF("n", threshold=50.0),
               Output("o")], [("x", "a"), ("a", "n"), ("n", "o")])
    n = partition(quantize(lower(g), LOIHI), LOIHI)
    lm = n.layer("n")
    assert len(lm.cores) == 2 and lm.binding == "synapse memory bits"
    assert lm.used <= 1_048_576


@settings(max_examples=15, deadline=None)
@given(n_in=st.integers(1, 60), n_out=st.integers(1, 700), seed=st.integers(0, 1000))
def test_random_dense_layers_honour_every_limit(n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    w = rng.integers(-3, 4, size=(n_out, n_in)).astype(float)
    g = Graph([Input("x", (n_in,)), Affine("a", w), IF("n", threshold=2.0), Output("o")], [("x", "a"), ("a", "n"), ("n", "o")])
    for target in (TN, LOIHI):
        n = partition(quantize(lower(g), target), target)
        assert np.all(np.diff(n.neuron_ptr) <= target.spec["core.neurons"])
        assert np.all(np.diff(n.axon_ptr) <= target.spec["core.axons"])
        assert sorted(np.concatenate([n.layer("n").neurons])) == sorted(set(n.layer("n").neurons))


def test_truenorth_legalize_splits_wide_fan_in_and_compiles():
    """Fan-in 300 with signed weights cannot fit 256 axons: partial-sum groups of <= 64 inputs take over."""
    from neurocomp.targets.truenorth.legalize import legalize

    rng = np.random.default_rng(0)
    w = rng.choice([-1.0, 1.0], size=(4, 300))
    g = Graph([Input("x", (300,)), Affine("a", w), IF("n", threshold=4.0), Output("o")],
              [("x", "a"), ("a", "n"), ("n", "o")])
    net = legalize(lower(g), TN.spec)
    parts = [l for l in net.layers if ".part" in l.name]
    assert len(parts) == 2 * 5                      # ceil(300 / 64) = 5 groups, a + and a - layer each
    assert all(l.neuron.reset == "subtract" and l.neuron.v_min == 0.0 for l in parts)
    # each partial spike carries one threshold of the original neuron, held once (0-d), not once per neuron
    assert all(np.array_equal(np.broadcast_to(l.neuron.threshold, l.shape), np.full(4, 4.0)) for l in parts)
    assert all(np.ndim(l.neuron.threshold) == 0 for l in parts)
    final = net.layer("n")
    assert sorted(p.source for p in final.projections) == sorted(l.name for l in parts)
    n = partition(quantize(net, TN), TN)
    assert np.all(np.diff(n.axon_ptr) <= 256)


@pytest.mark.parametrize("bias, culprit", [(9999.0, 0), (np.array([1.0, 2.0, 9999.0, 3.0]), 2)])
def test_truenorth_register_checks_name_the_neuron_whether_one_value_or_per_neuron(bias, culprit):
    """A layer-wide register is one value broadcast (checked once, neuron 0 standing for all); a per-neuron one is
    checked neuron by neuron; both name the first neuron out of range, and a broadcast initial potential too."""
    spec = load_target("truenorth").spec
    params = neuron_params("n", IF("n", threshold=4.0, bias=bias), 4, spec)
    with pytest.raises(QuantizeError, match=rf"^n: neuron {culprit} leak = 9999 outside"):
        check_params("n", params, spec)
    params = neuron_params("n", IF("n", threshold=4.0, v_init=1e9), 4, spec)
    with pytest.raises(QuantizeError, match="initial potential outside"):
        check_params("n", params, spec)
    check_params("n", neuron_params("n", IF("n", threshold=4.0, bias=1.0), 4, spec), spec)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2 ** 16), mode=st.sampled_from(["bits", "levels", "trinary", "whole"]),
       fan_in=st.sampled_from([9, 40, 150]), zero_cols=st.integers(0, 200),
       target=st.sampled_from([TN, LOIHI]))
def test_clustering_ignores_all_zero_columns(seed, mode, fan_in, zero_cols, target):
    """The hooks' contract that lets quantize cluster a conv on its live taps: inserting columns that are zero in
    every row changes no other weight, and they stay zero (bit for bit, up to the sign of a zero)."""
    rng = np.random.default_rng(seed)
    live = rng.integers(-300, 300, size=(6, fan_in)).astype(np.float64)
    live[rng.random(live.shape) < 0.3] = 0.0
    at = np.sort(rng.choice(fan_in + zero_cols, size=fan_in, replace=False))
    wide = np.zeros((6, fan_in + zero_cols))
    wide[:, at] = live
    compact = target.hooks.cluster_weights(live, target.spec, mode)
    full = target.hooks.cluster_weights(wide, target.spec, mode)
    assert np.array_equal(full[:, at], compact)
    assert not np.delete(full, at, axis=1).any()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 16), form=st.sampled_from(["full", "per_output", "per_channel"]),
       sign=st.sampled_from([1.0, -1.0]), correlation=st.booleans())
def test_a_restricted_conv_is_its_masked_kernel_with_its_live_taps_known(seed, form, sign, correlation):
    """fanin.restricted writes a part's kernel on the taps its mask keeps alone (graph.on_taps): the weight equals
    np.where(mask, w, 0) * sign, the reach shrinks with the mask, and the live taps and finiteness it sets are those
    a fresh node finds in the weight (a NaN kept or masked away)."""
    from neurocomp.ir.graph import Conv2d, Correlation
    from neurocomp.partition.fanin import restricted
    rng = np.random.default_rng(seed)
    w = rng.integers(-3, 4, size=(1 if correlation else 4, 6, 3, 3)).astype(np.float64)   # a Correlation has one output
    w[0, rng.integers(6), 1, 1] = np.nan if seed % 2 else 1.0   # a NaN the mask may keep or drop
    shape = {"full": w.shape, "per_output": (w.shape[0], 6, 1, 1), "per_channel": (1, 6, 1, 1)}[form]
    mask = rng.random(shape) < 0.4
    op = Correlation("c", w, reach=rng.random(w.shape) < 0.8) if correlation else Conv2d("c", w)
    part = restricted(op, mask, sign)
    assert np.array_equal(part.weight, np.where(mask, w, 0.0) * sign, equal_nan=True)
    if correlation:
        assert np.array_equal(part.reach, np.asarray(op.reach, dtype=bool) & mask)
    live, kept = part.live_taps
    fresh = Conv2d("d", part.weight)
    assert np.array_equal(live, fresh.live_taps[0]) and np.array_equal(kept, fresh.live_taps[1], equal_nan=True)
    assert part.unfinite == fresh.unfinite
