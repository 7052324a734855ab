"""TrueNorth programs mean what the source means (issue 16 §4): random small graphs compiled in every
weight mode, run on the emulator, against the float simulation of the source Graph, and against the
plain reference loop of tests/test_emulator.py (an independent TrueNorth simulator).

The rule checked: every layer the compile report calls exact has the source's spikes (read-outs: potentials) tick for tick over the ticks of one inference; a
graph that cannot be represented is refused with a project error naming the layer, or reported
approximate. Hand-made cases pin the chip's limits: the 20-bit potential saturating, the kappa
floor at -beta_max, the reset modes, fan-in splits and axon delays at 15 ticks.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurocomp.backends import emulator, reference
from neurocomp.compiler import CompileOptions, Compiled, compile_graph
from neurocomp.errors import ResourceError, UserError
from neurocomp.ir.graph import IF, Affine, Conv2d, Flatten, Graph, Input, Output, Readout, SumPool2d
from neurocomp.ir.layers import Network, lower
from neurocomp.partition.delays import flat_delays, relay_graph
from neurocomp.target import load_target
from netlib import random_spikes
from test_emulator import reference_run

TN = load_target("truenorth")
MODES = TN.hooks.WEIGHT_MODES
FAST = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
V_MAX = 2 ** 19 - 1   # the 20-bit potential
BETA_MAX = 262143


def opts(ticks: int, weights: str | None = None) -> CompileOptions:
    return CompileOptions(timesteps=ticks, weights=weights, place_effort=1, place_anneal=0, congestion=0.0)


# --- random representable graphs ------------------------------------------------------------------

def level_set(draw, rng: np.random.Generator, mode: str) -> np.ndarray:
    """The non-zero weights one layer may use: {-s, s} in trinary mode, else 1..4 distinct integers."""
    if mode == "trinary":
        s = float(draw(st.integers(1, 255)))
        return np.array([-s, s])
    k = draw(st.integers(1, 4))
    return rng.choice(np.r_[-255:0, 1:256], size=k, replace=False).astype(float)


def weights(rng: np.random.Generator, values: np.ndarray, shape: tuple[int, ...], sparsity: float) -> np.ndarray:
    w = rng.choice(values, size=shape)
    return np.where(rng.random(shape) < sparsity, 0.0, w)


def neuron(draw, rng: np.random.Generator, name: str, shape: tuple[int, ...], readout: bool = False):
    """An IF (either reset, any floor, a leak, a start potential) or a read-out, with integer registers."""
    bias = float(draw(st.sampled_from([0, 0, 1, -1, 255, -255, 37])))
    if readout:
        return Readout(name, bias=np.full(shape, bias))
    theta = rng.integers(1, draw(st.sampled_from([2, 50, 600])), shape).astype(float)
    v_min = draw(st.sampled_from([-math.inf, 0.0, -3.0, -2.5, -1000.0]))
    v_init = rng.integers(-int(theta.min()), int(theta.min()), shape).astype(float) if draw(st.booleans()) else 0.0
    return IF(name, threshold=theta, reset=draw(st.sampled_from(["zero", "subtract"])), bias=bias, v_min=v_min,
              v_init=v_init)


@st.composite
def graphs(draw, mode: str) -> Graph:
    """A small graph of one of five shapes with integer weights, thresholds, biases and floors; one dense
    graph in six reads 300 inputs, more than a core's axons (a fan-in split into spiking partial sums)."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    kind = draw(st.sampled_from(["dense", "conv", "pool_conv", "parallel", "converge"]))
    sparsity = draw(st.sampled_from([0.0, 0.5]))
    readout = draw(st.booleans())
    if kind in ("conv", "pool_conv"):
        c, size, k = draw(st.integers(1, 3)), draw(st.integers(4, 7)), draw(st.integers(1, 3))
        pool = [SumPool2d("pool", 2, draw(st.sampled_from([1, 2])))] if kind == "pool_conv" else []
        side = size - 1 if pool and pool[0].stride == (1, 1) else size // 2 if pool else size
        k = min(k, side)
        c_out = draw(st.integers(1, 4))
        conv = Conv2d("conv", weights(rng, level_set(draw, rng, mode), (c_out, c, k, k), sparsity),
                      padding=draw(st.integers(0, k - 1)))
        first = pool + [conv]
        g0 = Graph([Input("x", (c, size, size)), *first, IF("h", 1.0), Output("o")],
                   list(zip(["x"] + [op.name for op in first], [op.name for op in first] + ["h"])) + [("h", "o")])
        fc = Affine("fc", weights(rng, level_set(draw, rng, mode), (3, int(np.prod(g0.shape("h")))), sparsity))
        nodes = [Input("x", (c, size, size)), *first, neuron(draw, rng, "h", g0.shape("h")), Flatten("flat"), fc,
                 neuron(draw, rng, "out", (3,), readout), Output("o")]
        chain = ["x"] + [op.name for op in first] + ["h", "flat", "fc", "out", "o"]
        return Graph(nodes, list(zip(chain[:-1], chain[1:])))
    n_in, n_h = draw(st.sampled_from([draw(st.integers(1, 40))] * 5 + [300])), draw(st.integers(1, 20))  # 300: split
    a = Affine("a", weights(rng, level_set(draw, rng, mode), (n_h, n_in), sparsity))
    values = level_set(draw, rng, mode)
    b = Affine("b", weights(rng, values, (3, n_h), sparsity))
    nodes = [Input("x", (n_in,)), a, neuron(draw, rng, "h", (n_h,)), b, neuron(draw, rng, "out", (3,), readout), Output("o")]
    edges = [("x", "a"), ("a", "h"), ("h", "b"), ("b", "out"), ("out", "o")]
    if kind == "parallel":      # a second op from h into out: one layer, two projections from one source
        shared = values if draw(st.booleans()) else level_set(draw, rng, mode)
        nodes.append(Affine("b2", weights(rng, shared, (3, n_h), sparsity)))
        edges += [("h", "b2"), ("b2", "out")]
    if kind == "converge":      # a skip from the input into out: two sources, two depths
        nodes.append(Affine("skip", weights(rng, values, (3, n_in), sparsity)))
        edges += [("x", "skip"), ("skip", "out")]
    return Graph(nodes, edges)


# --- the check --------------------------------------------------------------------------------

def depths(net: Network) -> dict[str, int]:
    d = {i.name: 0 for i in net.inputs}
    for layer in net.layers:
        d[layer.name] = 1 + max(d[p.source] for p in layer.projections)
    return d


def exact_flags(c: Compiled) -> dict[str, bool]:
    """Per source layer: exact in the report (a host-summed read-out: all its parts)."""
    rows = {r["name"]: r["exact"] for r in c.report["layers"]}
    for name, parts in c.report["host_summed_readouts"].items():
        rows[name] = all(rows[p] for p in parts)
    return rows


def check_against_source(g: Graph, mode: str, seed: int, ticks: int, rate: float) -> tuple[Compiled | None, list[str]]:
    """Compile, run and compare; returns the program and the layers found equal to the source."""
    try:
        c = compile_graph(g, TN, opts(ticks, mode))
    except UserError as err:
        assert type(err).__module__ == "neurocomp.errors"
        assert any(name in str(err) for name in g.node_map), str(err)
        if isinstance(err, ResourceError):
            assert err.used > err.allowed
        return None, []
    net = lower(g)
    total = c.report["realtime"]["ticks_per_inference"]
    x = random_spikes(net.inputs[0].shape, batch=2, ticks=total, rate=rate, seed=seed)
    emu = emulator.run(c.program, TN, {"x": x})
    src = reference.run(net, {"x": x})
    depth, latency = depths(net), c.program.netlist.notes["latency"]
    checked = []
    flags = exact_flags(c)
    for name in [layer.name for layer in net.layers if flags[layer.name]]:
        shift = int(latency.get(name, depth[name])) - depth[name]
        got = emu.potentials[name] if name in src.potentials else emu.spikes[name]
        want = src.potentials[name] if name in src.potentials else src.spikes[name]
        np.testing.assert_array_equal(got[:, shift:], want[:, :total - shift], err_msg=name)
        checked.append(name)
    assert emu.merges == 0
    return c, checked


def check_program_alone(c: Compiled, seed: int) -> None:
    """The emulator equals the plain reference loop and the quantised Graph with relays for its delays."""
    n = c.program.netlist
    x = random_spikes(dict(n.inputs)["x"], batch=2, ticks=20, rate=0.3, seed=seed)
    emu = emulator.run(c.program, TN, {"x": x})
    loop = reference_run(c.program, TN, x.reshape(2, 20, -1))
    relayed = reference.run(lower(relay_graph(c.qnet.network.graph, flat_delays(n.notes.get("delay", {})))), {"x": x})
    for lm in n.expanded().layers:   # the loop runs one neuron per copy
        if lm.kind == "spiking":
            np.testing.assert_array_equal(emu.spikes[lm.name].reshape(2, 20, -1), loop["spikes"][:, :, lm.neurons])
            np.testing.assert_array_equal(emu.spikes[lm.name], relayed.spikes[lm.name])
        else:
            np.testing.assert_array_equal(emu.potentials[lm.name].reshape(2, 20, -1),
                                          loop["potential"][:, :, lm.neurons] * lm.scale)


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=40, **FAST)
@given(data=st.data(), seed=st.integers(0, 1000), ticks=st.integers(4, 40), rate=st.sampled_from([0.1, 0.5, 0.9]))
def test_random_graphs_equal_the_source_wherever_the_report_says_exact(mode, data, seed, ticks, rate):
    g = data.draw(graphs(mode))
    c, _ = check_against_source(g, mode, seed, ticks, rate)
    if c is not None and seed % 4 == 0:
        check_program_alone(c, seed)


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=600, **FAST)
@given(data=st.data(), seed=st.integers(0, 1000), ticks=st.integers(4, 80), rate=st.sampled_from([0.1, 0.5, 0.9]))
def test_random_graphs_equal_the_source_many(mode, data, seed, ticks, rate):
    g = data.draw(graphs(mode))
    c, _ = check_against_source(g, mode, seed, ticks, rate)
    if c is not None:
        check_program_alone(c, seed)


def test_exact_graphs_compare_every_layer_in_every_mode():
    """Integer graphs with reset by subtraction, leak and a read-out: every layer is exact and equal."""
    for mode in MODES:
        for seed in range(3):
            rng = np.random.default_rng(seed)
            w = rng.choice([-3.0, 1.0, 2.0] if mode != "trinary" else [-2.0, 2.0], size=(6, 10))
            g = Graph([Input("x", (10,)), Affine("a", w), IF("h", threshold=3.0, bias=-1.0, reset="subtract"),
                       Affine("b", np.where(rng.random((3, 6)) < 0.5, -2.0, 2.0)), Readout("out", bias=1.0), Output("o")],
                      [("x", "a"), ("a", "h"), ("h", "b"), ("b", "out"), ("out", "o")])
            _, checked = check_against_source(g, mode, seed, 30, 0.5)
            assert checked == ["h", "out"], (mode, seed)


def pool_then_padded_conv() -> Graph:
    """A 2x2 stride-1 pooling before a padded conv: no single conv (fold_linear keeps them apart), and each
    stored weight sums up to 4 conv weights: 1, 5, 6, 9, 10, 16 inside, more at the borders."""
    w = np.array([[[[1.0, 5.0], [9.0, 1.0]]]])
    return Graph([Input("x", (1, 6, 6)), SumPool2d("p", 2, 1), Conv2d("c", w, padding=1), IF("n", threshold=2.0),
                  Output("o")], [("x", "p"), ("p", "c"), ("c", "n"), ("n", "o")])


def test_composed_weights_beyond_four_levels_are_refused_with_the_reason():
    with pytest.raises(ResourceError, match=r"layer n, one neuron: weight levels per neuron 6 exceeds the allowed 4; "
                                            r"a neuron of n stores 6 distinct weights over all its projections") as err:
        compile_graph(pool_then_padded_conv(), TN, opts(10, "levels"))
    assert (err.value.used, err.value.allowed) == (6, 4)


def test_composed_weights_fit_the_bit_planes_on_a_shorter_ladder():
    """Bits mode puts the conv on a 4x shorter ladder (q in [0, 3]), so the sums of 4 stay on the 4-bit planes:
    it compiles (it was refused), approximate, and runs as its quantised Graph."""
    c = compile_graph(pool_then_padded_conv(), TN, opts(10, "bits"))
    conv = np.asarray(c.qnet.network.layers[0].projections[0].chain[-1].weight)
    a = np.gcd.reduce(conv.astype(np.int64).ravel())
    assert set((conv / a).ravel().tolist()) <= {0.0, 1.0, 2.0, 3.0} and not row(c, "n")["exact"]
    check_program_alone(c, 1)



@st.composite
def driven_layers(draw) -> Graph:
    """One strongly driven layer (weights and leak up to 255, thresholds up to alpha_max) whose potential can
    reach the chip's limits within a few thousand ticks."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    n_in, size = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    w = rng.choice(np.r_[-255:0, 1:256], size=(size, n_in)).astype(float)
    if draw(st.booleans()):
        w = np.abs(w) * draw(st.sampled_from([1.0, -1.0]))
    bias = float(draw(st.sampled_from([0, 255, -255, 17])))
    if draw(st.booleans()):
        node = Readout("n", bias=bias, v_init=float(draw(st.integers(-1000, 1000))))
    else:
        theta = float(draw(st.sampled_from([1, 100, 5000, 262143])))
        node = IF("n", threshold=theta, bias=bias, reset=draw(st.sampled_from(["zero", "subtract"])),
                  v_min=draw(st.sampled_from([-math.inf, 0.0, -7.5, -300000.0])),
                  v_init=float(draw(st.integers(-1000, int(theta) - 1))))
    return one_input(list(w[0]), node) if size == 1 else Graph(
        [Input("x", (n_in,)), Affine("fc", w), node, Output("o")], [("x", "fc"), ("fc", "n"), ("n", "o")])


def check_exact_ticks(g: Graph, rate: float, seed: int, cap: int) -> None:
    """exact_ticks is sound: over that many ticks (at most `cap`) the program equals the source."""
    c = compile_graph(g, TN, opts(1))
    r = row(c, "n")
    if not c.qnet.layers[0].exact:
        return
    ticks = min(cap, r["exact_ticks"] if r["exact_ticks"] is not None else cap)
    x = random_spikes((g.shape("x")[0],), batch=2, ticks=ticks, rate=rate, seed=seed)
    emu, src = emulator.run(c.program, TN, {"x": x}), reference.run(lower(g), {"x": x})
    got, want = (emu.potentials, src.potentials) if "n" in src.potentials else (emu.spikes, src.spikes)
    np.testing.assert_array_equal(got["n"], want["n"])


@settings(max_examples=20, **FAST)
@given(g=driven_layers(), rate=st.sampled_from([0.3, 1.0]), seed=st.integers(0, 100))
def test_exact_ticks_is_sound_on_long_runs(g, rate, seed):
    check_exact_ticks(g, rate, seed, 3000)


@pytest.mark.slow
@settings(max_examples=400, **FAST)
@given(g=driven_layers(), rate=st.sampled_from([0.3, 0.9, 1.0]), seed=st.integers(0, 100))
def test_exact_ticks_is_sound_on_long_runs_many(g, rate, seed):
    check_exact_ticks(g, rate, seed, 6000)

# --- the chip's limits, by hand ------------------------------------------------------------------

def one_input(w: list[float], node) -> Graph:
    return Graph([Input("x", (len(w),)), Affine("fc", np.array([w])), node, Output("o")],
                 [("x", "fc"), ("fc", node.name), (node.name, "o")])


def row(c: Compiled, name: str) -> dict:
    return next(r for r in c.report["layers"] if r["name"] == name)


def test_readout_has_no_floor():
    """A read-out falling by 200 a tick passes -beta_max (262,143) after 1,311 ticks; kappa = 0 and gamma 2
    leave it alone (it had kappa = 1: floored at -262,143) until the 20-bit range, 2,621 ticks."""
    g = one_input([-200.0], Readout("r"))
    c = compile_graph(g, TN, opts(1500))
    assert row(c, "r")["exact"] and row(c, "r")["exact_ticks"] == 2621 == (2 ** 19) // 200
    x = np.ones((1, 1501, 1), np.uint8)
    got = emulator.run(c.program, TN, {"x": x}).potentials["r"]
    assert got.min() == -300000 and np.array_equal(got, reference.run(lower(g), {"x": x}).potentials["r"])


@pytest.mark.parametrize("timesteps, exact", [(2096, True), (2097, False)])
def test_readout_saturation_bounds_the_exact_ticks(timesteps, exact):
    """+250 a tick reaches 2^19 - 1 after 2,097 ticks: exact for an inference of 2,097 ticks (2,096 + 1 of
    latency), not one tick more; past it the chip saturates and the source does not."""
    g = one_input([250.0], Readout("r"))
    c = compile_graph(g, TN, opts(timesteps))
    assert (row(c, "r")["exact"], row(c, "r")["exact_ticks"]) == (exact, 2097)
    assert ("saturate at the 20-bit range" in row(c, "r")["limit"]) != exact
    x = np.ones((1, 2100, 1), np.uint8)
    got, want = emulator.run(c.program, TN, {"x": x}).potentials["r"], reference.run(lower(g), {"x": x}).potentials["r"]
    assert np.array_equal(got[:, :2097], want[:, :2097])
    assert got[0, 2099, 0] == V_MAX and want[0, 2099, 0] == 2099 * 250


def test_a_read_out_another_layer_reads_is_exact_until_it_can_fire():
    """The source's read-out never spikes; the chip's fires at V >= alpha_max (gamma 2 keeps V), so a layer
    reading it gets spikes from tick 1,049 (+250 a tick): exact for 1,048 ticks, then approximate downstream."""
    g = Graph([Input("x", (1,)), Affine("a", np.array([[250.0]])), Readout("r"), Affine("b", np.array([[1.0]])),
               IF("n", threshold=1.0), Output("o")], [("x", "a"), ("a", "r"), ("r", "b"), ("b", "n"), ("n", "o")])
    c = compile_graph(g, TN, opts(1100))
    assert (row(c, "r")["exact"], row(c, "r")["exact_ticks"]) == (False, (BETA_MAX - 1) // 250)
    assert row(c, "r")["limit"] == "the read-out may reach alpha = 262143 and fire"
    assert row(c, "n")["limit"] == "fed by r, which is approximate"
    x = np.ones((1, 1100, 1), np.uint8)
    got = emulator.run(c.program, TN, {"x": x}).spikes["n"]
    assert reference.run(lower(g), {"x": x}).spikes["n"].sum() == 0 and int(np.argmax(got[0, :, 0])) == 1050
    assert row(compile_graph(g, TN, opts(1040)), "n")["exact"]


def floor_case(v_min: float) -> tuple[Graph, np.ndarray]:
    """Input 0 pushes V down by 255 a tick for 1,100 ticks, then input 1 pulls it up by 255 a tick."""
    x = np.zeros((1, 3000, 2), np.uint8)
    x[:, :1100, 0] = 1
    x[:, 1100:, 1] = 1
    return one_input([-255.0, 255.0], IF("n", threshold=100.0, v_min=v_min)), x


def test_potential_below_the_kappa_floor_is_reported():
    """No floor in the source, -262,143 on the chip (kappa = 1, beta_max): exact for 1,028 ticks (262,143 // 255);
    after 1,100 ticks of falling the chip fires 29,000 / 255 ticks too early."""
    g, x = floor_case(-math.inf)
    assert row(compile_graph(g, TN, opts(1000)), "n")["exact"]
    c = compile_graph(g, TN, opts(1100))
    r = row(c, "n")
    assert (r["exact"], r["exact_ticks"]) == (False, 1028) and "floor -262143" in r["limit"]
    got, want = emulator.run(c.program, TN, {"x": x}).spikes["n"], reference.run(lower(g), {"x": x}).spikes["n"]
    first = lambda s: int(np.argmax(s[0, :, 0]))  # noqa: E731
    assert np.array_equal(got[:, :1028], want[:, :1028])
    assert first(want) - first(got) == 1101 - 1029 - 1 + 1 and got.sum() > want.sum()


@pytest.mark.parametrize("v_min", [-1000.0, -2.5, 0.0])
def test_a_floor_the_chip_has_is_exact_for_ever(v_min):
    """A finite v_min within beta_max is the chip's kappa floor (a fractional one as floor(v_min): same spikes)."""
    g, x = floor_case(v_min)
    c = compile_graph(g, TN, opts(3000))
    assert row(c, "n")["exact"] and row(c, "n")["exact_ticks"] is None
    want = reference.run(lower(g), {"x": x}).spikes["n"]
    assert want.sum() > 1000 and np.array_equal(emulator.run(c.program, TN, {"x": x}).spikes["n"], want)


def test_a_floor_deeper_than_beta_max_is_reported():
    g, _ = floor_case(-400000.0)
    r = row(compile_graph(g, TN, opts(1100)), "n")
    assert (r["exact"], r["exact_ticks"]) == (False, 1028)


def test_subtraction_that_cannot_keep_up_climbs_to_saturation():
    """Threshold 1, +255 a tick, reset by subtraction: V climbs 254 a tick, and saturates after 2,064 ticks;
    reset to zero never climbs."""
    sub = compile_graph(one_input([255.0], IF("n", threshold=1.0, reset="subtract")), TN, opts(3000))
    zero = compile_graph(one_input([255.0], IF("n", threshold=1.0)), TN, opts(3000))
    assert (row(sub, "n")["exact"], row(sub, "n")["exact_ticks"]) == (False, (V_MAX - 255) // 254 + 1)
    assert row(zero, "n")["exact"] and row(zero, "n")["exact_ticks"] is None


def test_a_rounded_threshold_is_exact_only_without_subtraction():
    """Thresholds 300.5 and 301 on integer weights: v >= 300.5 is v >= 301, but subtracting 301 is not
    subtracting 300.5."""
    rng = np.random.default_rng(0)
    x = (rng.random((2, 400, 2)) < 0.5).astype(np.uint8)
    for reset, exact in (("zero", True), ("subtract", False)):
        g = Graph([Input("x", (2,)), Affine("fc", np.array([[255.0, 128.0], [128.0, 255.0]])),
                   IF("n", threshold=np.array([300.5, 301.0]), reset=reset), Output("o")],
                  [("x", "fc"), ("fc", "n"), ("n", "o")])
        c = compile_graph(g, TN, opts(400))
        assert row(c, "n")["exact"] == exact
        same = np.array_equal(emulator.run(c.program, TN, {"x": x}).spikes["n"], reference.run(lower(g), {"x": x}).spikes["n"])
        assert same == exact


def test_spiking_partial_sums_are_reported_approximate():
    """Fan-in 300 > 256 axons: partial-sum layers plus the neuron, none of them exact, each saying why."""
    rng = np.random.default_rng(0)
    g = one_input(list(rng.choice([-1.0, 1.0, 2.0], size=300)), IF("n", threshold=4.0))
    c = compile_graph(g, TN, opts(40))
    rows = c.report["layers"]
    assert len(rows) == 1 + 2 * 5 and not any(r["exact"] for r in rows)
    assert {r["limit"] for r in rows} == {"fan-in split into spiking partial sums"} and row(c, "n")["exact_ticks"] == 0


def test_whole_mode_splits_only_a_neuron_wider_than_a_core():
    """Mixed signs over 200 inputs take 400 paired axons: "levels" splits the layer, "whole" gives each input one
    axon typed by its level and computes the source exactly; 300 inputs exceed a core's axons in any mode."""
    rng = np.random.default_rng(1)
    w = rng.choice([-3.0, -1.0, 1.0, 2.0], size=200)
    g = Graph([Input("x", (200,)), Affine("fc", np.array([w, w[::-1]])), IF("n", threshold=4.0, v_min=0.0), Output("o")],
              [("x", "fc"), ("fc", "n"), ("n", "o")])
    assert len(compile_graph(g, TN, opts(30, "levels")).report["layers"]) == 1 + 2 * 4   # groups of <= 256 / 4 inputs
    c, checked = check_against_source(g, "whole", 1, 30, 0.5)
    assert checked == ["n"] and [r["name"] for r in c.report["layers"]] == ["n"]
    wide = compile_graph(one_input(list(rng.choice([-1.0, 1.0, 2.0], size=300)), IF("n", threshold=4.0)), TN, opts(30, "whole"))
    assert len(wide.report["layers"]) > 1 and not row(wide, "n")["exact"]


def chain_of_splits(k: int) -> Graph:
    """x -> k layers that tiny cores must split (one tick each) -> out, plus a skip from 4 inputs of x into out
    (narrow, so out itself fits a core): the skip's axons wait k + 1 ticks."""
    rng = np.random.default_rng(k)
    nodes, edges, prev = [Input("x", (20,))], [], "x"
    for i in range(k):
        nodes += [Affine(f"w{i}", rng.choice([-1.0, 1.0], size=(20, 20))), IF(f"h{i}", threshold=2.0)]
        edges += [(prev, f"w{i}"), (f"w{i}", f"h{i}")]
        prev = f"h{i}"
    nodes += [Affine("last", rng.choice([1.0, 2.0], size=(3, 20))), Affine("skip", np.pad(rng.choice([1.0, 2.0], size=(3, 4)), ((0, 0), (0, 16)))),
              IF("out", threshold=3.0), Output("o")]
    edges += [(prev, "last"), ("x", "skip"), ("last", "out"), ("skip", "out"), ("out", "o")]
    return Graph(nodes, edges)


@pytest.fixture(scope="module")
def tiny_cores(tmp_path_factory):
    """TrueNorth with 32-axon cores: a 20-input mixed-sign layer needs a fan-in split."""
    path = tmp_path_factory.mktemp("spec") / "tiny.toml"
    path.write_text(TN.spec.text.replace("axons = { value = 256", "axons = { value = 32"))
    return load_target(str(path))


def test_axon_delay_of_15_ticks_runs_and_16_is_refused(tiny_cores):
    """14 split layers: the skip waits 15 ticks, the longest delay a TrueNorth axon has, and the program
    equals the quantised Graph with relays; 15 split layers would need 16."""
    c = compile_graph(chain_of_splits(14), tiny_cores, opts(20))
    n = c.program.netlist
    assert int(n.in_delay.max()) == 15 and c.program.netlist.notes["delay"]["out"]["x"] == 15
    x = random_spikes((20,), batch=2, ticks=40, rate=0.5, seed=0)
    relayed = reference.run(lower(relay_graph(c.qnet.network.graph, flat_delays(n.notes["delay"]))), {"x": x})
    got = emulator.run(c.program, tiny_cores, {"x": x}).spikes["out"]
    assert got.sum() > 10 and np.array_equal(got, relayed.spikes["out"])
    with pytest.raises(ResourceError, match=r"layer out, input from x: axon delay \(ticks\) 16 exceeds the allowed 15"):
        compile_graph(chain_of_splits(15), tiny_cores, opts(20))


def test_calibration_input_measures_what_approximate_layers_cost():
    """With --profile, each layer's row carries its error on the calibration input: zero where the report
    says exact, the spike-count error of a fan-in split (compared one split tick later) where it does not."""
    rng = np.random.default_rng(0)
    w = rng.choice([-1.0, 1.0, 2.0], size=(4, 300))
    g = Graph([Input("x", (300,)), Affine("fc", w), IF("n", threshold=4.0), Affine("b", np.array([[2.0, -1.0, 1.0, 1.0]])),
               Readout("r"), Output("o")], [("x", "fc"), ("fc", "n"), ("n", "b"), ("b", "r"), ("r", "o")])
    calib = {"x": rng.random((8, 300)) * 0.4}
    c = compile_graph(g, TN, opts(40), profile=calib)
    n, r = row(c, "n")["measured"], row(c, "r")["measured"]
    assert not row(c, "n")["exact"] and n["shift_ticks"] == 1 and n["source_spikes"] > 100
    assert 0 < n["spike_count_error"] < 0.2 and 0 < n["spikes_differ"] < 0.1
    assert r["shift_ticks"] == 1 and r["max_abs_potential_error"] > 0     # its own mapping is exact, its input is not
    assert (row(c, "r")["exact"], row(c, "r")["limit"]) == (False, "fed by n, which is approximate")
    from neurocomp.report.tables import layer_rows
    shown = dict((lay[0], lay[6]) for lay in layer_rows(c.report))
    assert shown["n"] == f"fan-in split into spiking partial sums, measured {n['spike_count_error']:.1%} spikes off"
    exact = compile_graph(one_input([3.0, -2.0], IF("h", threshold=2.0)), TN, opts(40), profile={"x": rng.random((8, 2))})
    assert row(exact, "h")["exact"] and row(exact, "h")["measured"]["spike_count_error"] == 0.0


@pytest.mark.parametrize("mode, db", [("bits", 22.9), ("levels", 11.1), ("trinary", 8.1)])
def test_converging_float_projections_share_a_neurons_levels(mode, db):
    """A skip connection: o reads h and x through two float ops. Clustered apart, each took the neuron's 4 levels
    (bits: 13, levels: 8 distinct weights per neuron, refused); clustered side by side they share them."""
    rng = np.random.default_rng(0)
    g = Graph([Input("x", (12,)), Affine("a", rng.normal(size=(8, 12))), IF("h", threshold=2.0),
               Affine("b", rng.normal(size=(5, 8))), Affine("c", rng.normal(size=(5, 12))), IF("o", threshold=2.0),
               Output("out")], [("x", "a"), ("a", "h"), ("h", "b"), ("b", "o"), ("x", "c"), ("c", "o"), ("o", "out")])
    c = compile_graph(g, TN, opts(20, mode))
    assert row(c, "o")["weight_snr_db"] == pytest.approx(db, abs=0.1) and not row(c, "o")["exact"]
    check_program_alone(c, 0)
