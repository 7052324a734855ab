"""The optimised emulator (neurocomp.backends.emulator) against a deliberately simple reference loop:
dense matrices, the targets' reference neuron steps, an axon ring buffer, plain Python over ticks.
Also delays, merges, per-layer counters, timing, stochastic synapses and the torch path."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from neurocomp.backends import emulator
from neurocomp.backends.emulator import loop
from neurocomp.backends.emulator import COUNTERS
from neurocomp.backends.emulator.plan import _sorted_triples, build
from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.ir.graph import IF, Affine, Conv2d, Flatten, Graph, Input, Output, Readout
from neurocomp.arrays import Numpy, Torch, int8_of
from neurocomp.route import grid_hops
from neurocomp.target import load_target
from neurocomp.targets.loihi import neuron as lif
from neurocomp.targets.truenorth import neuron as tn
from netlib import random_spikes, tiny

TARGETS = ("truenorth", "loihi")
TARGET = {name: load_target(name) for name in TARGETS}


def reference_run(program, target, x: np.ndarray, seed: int = 0) -> dict:
    """Tick by tick with one neuron per hardware neuron (copies expanded): (batch, ticks, channels) input
    spikes in, every neuron's spikes and potential, per-core counters and merges out."""
    n, hooks = program.netlist.expanded(), target.hooks
    B, T = x.shape[:2]
    S = hooks.synapse_matrix(n).toarray()
    S_any = np.zeros((n.n_neurons, n.n_axons), dtype=np.int64)
    np.add.at(S_any, (n.syn_neuron, n.syn_axon), 1)
    depth = int(max(n.edge_delay.max(initial=1), n.in_delay.max(initial=1))) + 1
    ring = np.zeros((depth, n.n_axons, B), dtype=np.int64)
    state = hooks.init_state(n, target.spec, B)
    rng = np.random.default_rng(seed)
    core_n, core_a = n.neuron_core(), n.axon_core()
    p = program.placed
    hops = grid_hops(p.gx(), p.gy(), p.chip_cols, p.chip_rows, *n.core_traffic_edges())
    hops = [np.bincount(n.edge_src, weights=h, minlength=n.n_neurons) for h in hops]
    counts = {k: np.zeros(n.n_cores) for k in COUNTERS}
    spikes = np.zeros((B, T, n.n_neurons), dtype=np.uint8)
    potential = np.zeros((B, T, n.n_neurons))
    merges = 0
    syn_per_axon = S_any.sum(axis=0)
    per_core = lambda w: np.bincount(core_n, weights=w, minlength=n.n_cores)  # noqa: E731
    for t in range(T):
        arrived = ring[t % depth].copy()
        ring[t % depth] = 0
        merges += int(np.maximum(arrived - 1, 0).sum())
        act = (arrived > 0).astype(np.int64)
        events = S_any @ act
        fired = hooks.neuron_step(n.params, state, S @ act, rng)
        spikes[:, t] = fired.T
        potential[:, t] = hooks.potential(state).T
        np.add.at(ring, ((t + n.edge_delay) % depth, n.edge_axon), fired[n.edge_src].astype(np.int64))
        np.add.at(ring, ((t + n.in_delay) % depth, n.in_axon), x[:, t, n.in_channel].T.astype(np.int64))
        counts["synaptic_events"] += np.bincount(core_a, weights=syn_per_axon * act.sum(1), minlength=n.n_cores)
        counts["neuron_active"] += per_core((events > 0).sum(1))
        counts["neuron_idle"] += per_core((events == 0).sum(1))
        counts["spikes"] += per_core(fired.sum(1))
        for key, h in zip(("hops_ew", "hops_ns", "interchip"), hops):
            counts[key] += per_core(fired.sum(1) * h)
    return {"spikes": spikes, "potential": potential, "counts": counts, "merges": merges}


def assert_same(result: emulator.RunResult, ref: dict, program) -> None:
    B, T = result.batch, result.ticks
    for lm in program.netlist.expanded().layers:
        if lm.kind == "spiking":
            np.testing.assert_array_equal(result.spikes[lm.name].reshape(B, T, -1), ref["spikes"][:, :, lm.neurons], lm.name)
        else:
            np.testing.assert_array_equal(result.potentials[lm.name].reshape(B, T, -1),
                                          ref["potential"][:, :, lm.neurons] * lm.scale, lm.name)
    for key in COUNTERS:
        np.testing.assert_array_equal(result.core_counts[key], ref["counts"][key], key)
    assert result.merges == ref["merges"]


def mlp(rng: np.random.Generator, n_in: int, hidden: int, out: int, readout: bool, zeros: bool = True) -> Graph:
    """Input -> Affine -> IF -> Affine -> IF or Readout; small integer weights (<= 4 levels), with
    zeros (sparse crossbars) or without (every neuron reads every input)."""
    w1 = rng.choice([-2.0, -1.0, 0.0, 1.0, 2.0] if zeros else [-1.0, 1.0, 2.0], size=(hidden, n_in))
    w2 = rng.choice([-1.0, 0.0, 1.0, 3.0] if zeros else [-1.0, 3.0], size=(out, hidden))
    last = Readout("o", bias=rng.integers(-1, 2, out).astype(float)) if readout else \
        IF("o", threshold=rng.integers(1, 4, out).astype(float))
    nodes = [Input("x", (n_in,)), Affine("a", w1), IF("h", threshold=rng.integers(1, 5, hidden).astype(float),
                                                      bias=rng.integers(-1, 2, hidden).astype(float)),
             Affine("b", w2), last, Output("out")]
    return Graph(nodes, [("x", "a"), ("a", "h"), ("h", "b"), ("b", "o"), ("o", "out")])


def convnet(rng: np.random.Generator) -> Graph:
    """A small conv net: Conv2d -> IF -> Flatten -> Affine -> IF (the conv crossbar is sparse)."""
    nodes = [Input("x", (2, 10, 10)), Conv2d("conv", rng.choice([-1.0, 1.0, 2.0], size=(3, 2, 3, 3)), padding=1),
             IF("n1", threshold=3.0), Flatten("flat"), Affine("fc", rng.choice([-1.0, 1.0], size=(4, 300))),
             IF("n2", threshold=4.0), Output("out")]
    return Graph(nodes, [("x", "conv"), ("conv", "n1"), ("n1", "flat"), ("flat", "fc"), ("fc", "n2"), ("n2", "out")])


def with_delays(program, rng: np.random.Generator, max_delay: int):
    """The same program with random edge and input delays 1..max_delay."""
    n = program.netlist
    n = dataclasses.replace(n, edge_delay=rng.integers(1, max_delay + 1, n.edge_src.size),
                            in_delay=rng.integers(1, max_delay + 1, n.in_axon.size))
    return dataclasses.replace(program, netlist=n)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(TARGETS), seed=st.integers(0, 2 ** 16), conv=st.booleans(), readout=st.booleans(),
       zeros=st.booleans(), max_delay=st.sampled_from([1, 3, 15]), batch=st.sampled_from([1, 3]))
def test_equals_reference_loop_on_random_programs(name, seed, conv, readout, zeros, max_delay, batch):
    rng = np.random.default_rng(seed)
    target = TARGET[name]
    graph = convnet(rng) if conv else mlp(rng, int(rng.integers(3, 40)), int(rng.integers(2, 300)), 4, readout, zeros)
    program = with_delays(compile_graph(graph, target, CompileOptions()).program, rng, max_delay)
    shape = dict(program.netlist.inputs)["x"]
    x = random_spikes(shape, batch=batch, ticks=30, rate=0.3, seed=seed)
    result = emulator.run(program, target, {"x": x})
    assert_same(result, reference_run(program, target, x.reshape(batch, 30, -1)), program)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(TARGETS), seed=st.integers(0, 2 ** 16), conv=st.booleans(), device=st.sampled_from([None, "cpu"]),
       max_delay=st.sampled_from([1, 4]))
def test_int8_products_equal_the_reference_loop(name, seed, conv, device, max_delay, monkeypatch):
    """Every dense product of 0/1 rows through the int8 kernel (as batch-256 runs take it), on numpy and torch:
    every spike, potential and counter equals the reference loop."""
    rng = np.random.default_rng(seed)
    graph = convnet(rng) if conv else mlp(rng, int(rng.integers(3, 40)), int(rng.integers(2, 300)), 4, True)
    assert int8_run(graph, TARGET[name], rng, max_delay, device, monkeypatch)


def int8_run(graph: Graph, target, rng: np.random.Generator, max_delay: int, device: str | None, monkeypatch) -> set[int]:
    """Runs graph with every dense product int8 where exact, checks it against the reference loop and returns how
    many parts the int8 products had (1: plain or packed in int8; 2: a packed block as weights and counts)."""
    monkeypatch.setattr(loop, "INT8_MIN_MACS", 0)
    monkeypatch.setattr(loop, "DENSE_MIN", {True: 0.0, False: 0.0})
    parts = set()
    product = loop._Product.__init__

    def spy(self, *args, **kwargs):
        product(self, *args, **kwargs)
        parts.update([len(self.int8[1])] if self.int8 is not None else [])

    monkeypatch.setattr(loop._Product, "__init__", spy)
    program = with_delays(compile_graph(graph, target, CompileOptions()).program, rng, max_delay)
    x = random_spikes(dict(program.netlist.inputs)["x"], batch=3, ticks=20, rate=0.3, seed=int(rng.integers(1 << 16)))
    result = emulator.run(program, target, {"x": x}, device=device)
    assert_same(result, reference_run(program, target, x.reshape(3, 20, -1)), program)
    return parts


@pytest.mark.parametrize("device", [None, "cpu"])
def test_int8_packed_blocks_in_one_part_and_in_two(device, monkeypatch):
    """Loihi packs weights and synapse counts into one matrix: where that leaves int8 (a sparse crossbar, packing
    scale 2**13) the product runs as two parts, where it fits (scale 2**5 over weights of 2**6) as one."""
    rng = np.random.default_rng(0)
    assert int8_run(mlp(rng, 34, 191, 4, True), TARGET["loihi"], rng, 1, device, monkeypatch) == {2}
    rng = np.random.default_rng(0)
    graph = Graph([Input("x", (1, 16, 16)), Conv2d("conv", rng.choice([-3.0, -1.0, 1.0, 3.0], size=(4, 1, 3, 3)), padding=1),
                   IF("c", threshold=6.0), Flatten("flat"), Affine("fc", rng.choice([-1.0, 1.0], size=(10, 1024))),
                   IF("o", threshold=30.0), Output("out")],
                  [("x", "conv"), ("conv", "c"), ("c", "flat"), ("flat", "fc"), ("fc", "o"), ("o", "out")])
    assert 1 in int8_run(graph, TARGET["loihi"], rng, 1, device, monkeypatch)


def test_int8_of_keeps_a_power_of_two_and_refuses_what_int8_cannot_hold():
    q, scale = int8_of(np.array([[64.0, -192.0], [0.0, 2176.0 - 2048.0]]))
    assert scale == 64 and q.dtype == np.int8 and q.tolist() == [[1, -3], [0, 2]]
    q, scale = int8_of(np.array([[1952.0, 2176.0]]))          # a packed block: W + 2048 * A
    assert scale == 32 and q.tolist() == [[61, 68]]
    assert int8_of(np.zeros((2, 2)))[1] == 1
    assert int8_of(np.array([[0.5]])) is None                  # not integers
    assert int8_of(np.array([[1.0, 129.0]])) is None           # 129 needs 9 bits
    assert int8_of(np.array([[-128.0, 127.0]]))[0].tolist() == [[-128, 127]]
    assert int8_of(np.array([[np.nan, 1.0]])) is None and int8_of(np.array([[np.inf]])) is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-300, 300), min_size=1, max_size=12), st.integers(0, 20), st.booleans(), st.booleans())
def test_int8_of_is_exact_and_its_scale_the_largest_power_of_two(values, shift, single, half):
    m = (np.array(values, np.int64) << shift).astype(np.float32 if single else np.float64).reshape(1, -1)
    if half:
        m[0, 0] = 0.5
    got = int8_of(m)
    if half:   # not an integer
        assert got is None
        return
    ints = [int(v) for v in m[0]]
    nonzero = [v for v in ints if v]
    scale = max((2 ** k for k in range(64) if all(v % 2 ** k == 0 for v in nonzero)), default=1) if nonzero else 1
    fits = all(-128 <= v // scale <= 127 for v in ints)
    assert (got is not None) == fits
    if fits:
        assert got[1] == scale and got[0].dtype == np.int8 and [int(q) * scale for q in got[0][0]] == ints


@pytest.mark.parametrize("name", TARGETS)
@pytest.mark.parametrize("chunk_bytes", [1, 40_000])
@pytest.mark.parametrize("share", [False, True])
def test_chunk_boundaries_with_long_delays(name, chunk_bytes, share, monkeypatch):
    """Chunks of 1 tick and of a few ticks, shorter than the delays (up to 15), their input products in pieces of
    1 tick or a few: buffered history, inputs read ahead across chunk starts and shared axons must all line up."""
    monkeypatch.setattr(loop, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(loop, "CHUNK_TICKS", 1)
    monkeypatch.setattr(loop, "AHEAD_BYTES", chunk_bytes // 4)
    rng = np.random.default_rng(11)
    target = TARGET[name]
    program = with_delays(compile_graph(mlp(rng, 12, 40, 4, True), target, CompileOptions()).program, rng, 15)
    n = program.netlist
    if share:                                                                  # some inputs share an axon
        shared = np.where(np.arange(n.in_axon.size) % 5 == 0, n.in_axon[0], n.in_axon)
        program = dataclasses.replace(program, netlist=dataclasses.replace(n, in_axon=shared))
    x = random_spikes((12,), batch=2, ticks=40, rate=0.4, seed=5)
    result = emulator.run(program, target, {"x": x})
    assert (result.merges > 0) == share
    assert_same(result, reference_run(program, target, x), program)


@pytest.mark.parametrize("name", TARGETS)
def test_layer_counts_sum_to_core_counts(name):
    target = TARGET[name]
    program = compile_graph(mlp(np.random.default_rng(3), 30, 280, 6, False), target, CompileOptions()).program
    result = emulator.run(program, target, {"x": random_spikes((30,), batch=2, ticks=20, rate=0.4)})
    n = program.netlist
    assert set(result.layer_counts) == {lm.name for lm in n.layers}
    for key in COUNTERS:
        for lm in n.layers:
            assert result.layer_counts[lm.name][key] == result.core_counts[key][list(lm.cores)].sum()
        assert sum(c[key] for c in result.layer_counts.values()) == result.core_counts[key].sum()
    assert result.layer_counts["h"]["synaptic_events"] > 0 and result.layer_counts["o"]["spikes"] > 0


@pytest.mark.parametrize("name", TARGETS)
@pytest.mark.parametrize("delay", [2, 7, 15])
def test_input_and_edge_delays_set_the_arrival_tick(name, delay):
    """One input spike at tick 0; input delay d1 and edge delay d2: h fires at d1, o at d1 + d2."""
    target = TARGET[name]
    g = Graph([Input("x", (1,)), Affine("a", np.ones((1, 1))), IF("h", threshold=1.0), Affine("b", np.ones((1, 1))),
               IF("o", threshold=1.0), Output("out")], [("x", "a"), ("a", "h"), ("h", "b"), ("b", "o"), ("o", "out")])
    program = compile_graph(g, target, CompileOptions()).program
    n = program.netlist
    n = dataclasses.replace(n, in_delay=np.full(n.in_axon.size, delay), edge_delay=np.full(n.edge_src.size, delay + 1))
    program = dataclasses.replace(program, netlist=n)
    x = np.zeros((1, 3 * delay + 4, 1), dtype=np.uint8)
    x[0, 0, 0] = 1
    result = emulator.run(program, target, {"x": x})
    assert np.flatnonzero(result.spikes["h"][0, :, 0]).tolist() == [delay]
    assert np.flatnonzero(result.spikes["o"][0, :, 0]).tolist() == [2 * delay + 1]
    assert_same(result, reference_run(program, target, x), program)


def test_truenorth_merges_two_spikes_on_one_axon():
    """Both inputs aimed at one axon: two spikes in one tick become one (threshold 2 is missed)."""
    target = TARGET["truenorth"]
    program = compile_graph(tiny(), target, CompileOptions()).program
    n = program.netlist
    program = dataclasses.replace(program, netlist=dataclasses.replace(n, in_axon=np.full_like(n.in_axon, n.in_axon[0])))
    x = np.array([[[1, 1], [1, 0], [1, 1], [0, 0]]], dtype=np.uint8)
    result = emulator.run(program, target, {"x": x})
    assert result.merges == 2
    assert result.spikes["n"][0, :, 0].tolist() == [0, 0, 1, 0]      # 1 + 1 reaches 2 only at tick 2
    assert result.core_counts["synaptic_events"].sum() == 3          # one active axon per tick, 1 synapse each
    assert_same(result, reference_run(program, target, x), program)


def test_merges_with_delays_mixed():
    """Shared axons fed through different delays still merge only when their spikes coincide."""
    target = TARGET["truenorth"]
    program = compile_graph(tiny(threshold=1.0), target, CompileOptions()).program
    n = program.netlist
    n = dataclasses.replace(n, in_axon=np.full_like(n.in_axon, n.in_axon[0]), in_delay=np.array([1, 3]))
    program = dataclasses.replace(program, netlist=n)
    x = np.zeros((2, 8, 2), dtype=np.uint8)
    x[0, 2, 0] = x[0, 0, 1] = 1          # both arrive at tick 3: merge
    x[1, 2, 0] = x[1, 1, 1] = 1          # tick 3 and tick 4: no merge
    result = emulator.run(program, target, {"x": x})
    assert result.merges == 1
    assert_same(result, reference_run(program, target, x), program)


@pytest.mark.parametrize("name", TARGETS)
@pytest.mark.parametrize("conv", [False, True])
def test_torch_path_gives_the_same_integers(name, conv):
    target = TARGET[name]
    rng = np.random.default_rng(4)
    graph = convnet(rng) if conv else mlp(rng, 20, 50, 5, True)
    program = with_delays(compile_graph(graph, target, CompileOptions()).program, rng, 4)
    x = {"x": random_spikes(dict(program.netlist.inputs)["x"], batch=3, ticks=25, rate=0.3)}
    a, b = emulator.run(program, target, x), emulator.run(program, target, x, device="cpu")
    for key in a.spikes:
        np.testing.assert_array_equal(a.spikes[key], b.spikes[key])
    for key in a.potentials:
        np.testing.assert_array_equal(a.potentials[key], b.potentials[key])
    for key in COUNTERS:
        np.testing.assert_array_equal(a.core_counts[key], b.core_counts[key])
    np.testing.assert_array_equal(a.tick_s, b.tick_s)
    assert a.timing == b.timing and a.merges == b.merges


def test_loihi_timing_worst_mean_and_slack():
    target = TARGET["loihi"]
    program = compile_graph(mlp(np.random.default_rng(5), 30, 60, 5, False), target, CompileOptions()).program
    x = random_spikes((30,), batch=2, ticks=20, rate=0.5)
    result = emulator.run(program, target, {"x": x})
    t = result.timing
    assert result.tick_s.shape == (2, 20) and 0 < t["tick_mean_s"] <= t["tick_worst_s"] == result.tick_s.max()
    assert t["slack"] == pytest.approx(1 - t["tick_worst_s"] / 1e-3)
    assert t["slack_mean"] == pytest.approx(1 - t["tick_mean_s"] / 1e-3)
    busiest = result.tick_s.argmax()            # the quietest tick (tick 0, nothing arrived) is the fastest
    assert result.tick_s.ravel()[busiest] > result.tick_s[:, 0].min()


def test_tick_seconds_multichip_barrier_and_truenorth_fixed_tick():
    loihi, tn = TARGET["loihi"].spec, TARGET["truenorth"].spec
    counts = {k: np.array([100.0, 10.0]) for k in ("synaptic_events", "neuron_active", "neuron_idle", "spikes")}
    one, _ = TARGET["loihi"].hooks.tick_seconds(counts, loihi, 32)
    two, slack = TARGET["loihi"].hooks.tick_seconds(counts, loihi, 32, n_chips=2)
    assert two - one == pytest.approx(loihi["timing.interchip_barrier_s"] - loihi["timing.barrier_max_s"])
    assert slack == pytest.approx(1 - two / 1e-3)
    assert TARGET["truenorth"].hooks.tick_seconds(counts, tn, 32, n_chips=4) == (1e-3, None)
    result = emulator.run(compile_graph(tiny(), TARGET["truenorth"], CompileOptions()).program, TARGET["truenorth"],
                          {"x": np.ones((1, 3, 2), dtype=np.uint8)})
    assert result.timing["tick_worst_s"] == 1e-3 and result.timing["slack"] is None


def stochastic_program(weight: float, flags: tuple[int, ...] = (1, 1, 1, 1)):
    """One input -> one TrueNorth readout neuron through `weight`, with stochastic-synapse flags;
    also returns the neuron's integer weight s."""
    target = TARGET["truenorth"]
    g = Graph([Input("x", (1,)), Affine("a", np.array([[weight]])), Readout("r"), Output("out")],
              [("x", "a"), ("a", "r"), ("r", "out")])
    program = compile_graph(g, target, CompileOptions()).program
    n = program.netlist
    params = {**n.params, "stoch_syn": np.tile(np.array(flags), (n.n_neurons, 1))}
    s = int(n.params["w"][n.syn_neuron[0], n.syn_tables["axon_type"][n.syn_axon[0]]])
    return dataclasses.replace(program, netlist=dataclasses.replace(n, params=params)), target, s


@pytest.mark.parametrize("weight", [64.0, -200.0, 3.0])
def test_stochastic_synapses_add_sign_with_probability(weight):
    """Each active stochastic synapse adds sgn(s) with probability (|s| + 1) / 256 (8-bit PRN, >= compare)."""
    program, target, s = stochastic_program(weight)
    batch, ticks = 64, 200
    result = emulator.run(program, target, {"x": np.ones((batch, ticks, 1), dtype=np.uint8)}, seed=7)
    v = result.potentials["r"][:, -1, 0] / program.netlist.layer("r").scale   # integer potential at the end
    trials = batch * (ticks - 1)                                               # input arrives from tick 1
    p = (abs(s) + 1) / 256
    assert np.sign(s) == np.sign(weight) and np.all(np.sign(s) * v >= 0)
    assert abs(np.sign(s) * v.sum() - trials * p) < 5 * np.sqrt(trials * p * (1 - p))
    again = emulator.run(program, target, {"x": np.ones((batch, ticks, 1), dtype=np.uint8)}, seed=7)
    np.testing.assert_array_equal(again.potentials["r"], result.potentials["r"])


def test_stochastic_flags_off_change_nothing():
    program, target, _ = stochastic_program(5.0, flags=(0, 0, 0, 0))
    plain = dataclasses.replace(program, netlist=dataclasses.replace(
        program.netlist, params={k: v for k, v in program.netlist.params.items() if k != "stoch_syn"}))
    x = {"x": random_spikes((1,), batch=2, ticks=20, rate=0.5)}
    a, b = emulator.run(program, target, x), emulator.run(plain, target, x)
    np.testing.assert_array_equal(a.potentials["r"], b.potentials["r"])
    assert_same(a, reference_run(plain, target, x["x"]), plain)


def test_stochastic_synapses_same_on_torch():
    program, target, _ = stochastic_program(100.0)
    x = {"x": random_spikes((1,), batch=4, ticks=40, rate=0.7)}
    a, b = emulator.run(program, target, x, seed=3), emulator.run(program, target, x, seed=3, device="cpu")
    np.testing.assert_array_equal(a.potentials["r"], b.potentials["r"])


def test_products_covering_rows_partly_still_sum_exactly():
    """Input y drives only the first Loihi core of L, input x all of L: the second product covers rows
    the first did not write, so the loop zeroes and adds every tick instead of assigning."""
    rng = np.random.default_rng(6)
    wy = np.zeros((1100, 40))
    wy[:500] = rng.choice([-1.0, 1.0, 2.0], size=(500, 40))
    g = Graph([Input("y", (40,)), Input("x", (6,)), Affine("ay", wy), Affine("ax", rng.choice([1.0, 2.0], size=(1100, 6))),
               IF("L", threshold=3.0), Output("out")], [("y", "ay"), ("x", "ax"), ("ay", "L"), ("ax", "L"), ("L", "out")])
    target = TARGET["loihi"]
    program = compile_graph(g, target, CompileOptions()).program
    rows = [(b.rows.start, b.rows.stop) for b in build(program, target).blocks]
    assert len(rows) == 2 and rows[0] != rows[1] and rows[0][0] == rows[1][0]
    inputs = {"y": random_spikes((40,), batch=2, ticks=12, rate=0.3, seed=1),
              "x": random_spikes((6,), batch=2, ticks=12, rate=0.3, seed=2)}
    result = emulator.run(program, target, inputs)
    assert_same(result, reference_run(program, target, np.concatenate([inputs["y"], inputs["x"]], axis=2)), program)


XPS = {"numpy": Numpy(), "torch": Torch("cpu")}


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), bound=st.sampled_from([100, 10 ** 5, 10 ** 7, 2 ** 40]),
       if_like=st.booleans(), xp=st.sampled_from(sorted(XPS)))
def test_loihi_stepper_equals_the_lava_model(seed, bound, if_like, xp):
    """Fast LifStepper (int32 where bounds allow, else int64) == dense_output + step, over the
    whole register domain: decays, biases, exponents, |acc| up to 2**40 (int32 wraps)."""
    rng, xp = np.random.default_rng(seed), XPS[xp]
    n, b = 9, 3
    p = {"du": rng.integers(0, 4096, n), "dv": rng.integers(0, 4096, n), "vth": rng.integers(0, 2 ** 17, n),
         "bias_mant": rng.integers(-4096, 4096, n), "bias_exp": rng.integers(-8, 8, n),
         "weight_exp": rng.integers(-8, 8, n), "v_init": rng.integers(-2 ** 23, 2 ** 23, n),
         "u_init": rng.integers(-2 ** 23, 2 ** 23, n)}
    if if_like:   # what the quantiser emits for IF: u cleared every step, no leak, one exponent
        p |= {"du": np.full(n, 4095), "dv": np.zeros(n, int), "weight_exp": np.full(n, -1), "v_init": np.zeros(n, int)}
    fast, ref = lif.LifStepper(p, b, bound, xp), lif.init_state(p, b)
    assert fast.dtype == (xp.int32 if if_like and bound <= 10 ** 5 else fast.dtype)   # the narrow path is taken
    assert fast.dtype == (xp.int64 if bound == 2 ** 40 else fast.dtype)              # and left when it must
    for _ in range(15):
        acc = rng.integers(-bound, bound + 1, (n, b))
        ref, spikes = lif.step(p, ref, lif.dense_output(acc, p["weight_exp"]))
        got = xp.numpy(fast(xp.cast(xp.asarray(acc.T.copy()), fast.dtype)))
        np.testing.assert_array_equal(got.T, spikes)
        np.testing.assert_array_equal(xp.numpy(fast.v).T, ref["v"])
        np.testing.assert_array_equal(xp.numpy(fast.u).T, ref["u"])


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), stochastic=st.booleans(), xp=st.sampled_from(sorted(XPS)))
def test_truenorth_stepper_equals_the_reference_step(seed, stochastic, xp):
    """Fast Stepper == neuron.step for every leak, threshold and reset mode and overflow option,
    stochastic leak and threshold included (the same rng draws in the same order)."""
    rng, xp = np.random.default_rng(seed), XPS[xp]
    n, b = 9, 3
    opts = tn.NeuronOptions(v_bits=int(rng.integers(4, 24)), v_overflow=str(rng.choice(["saturate", "wrap", "none"])),
                            leak_no_ringing=bool(rng.integers(2)), neg_threshold_cmp=str(rng.choice(["<", "<="])),
                            stoch_compare=str(rng.choice([">=", ">"])))
    lo, hi = max(opts.v_range[0], -1000), min(opts.v_range[1], 1000)
    p = {"leak": rng.integers(-20, 21, n), "epsilon": rng.integers(0, 2, n), "c_lambda": rng.integers(0, 2, n) * stochastic,
         "alpha": rng.integers(0, 60, n), "beta": rng.integers(0, 60, n), "tm": rng.integers(0, 4, n) * stochastic,
         "gamma": rng.integers(0, 3, n), "kappa": rng.integers(0, 2, n), "reset": rng.integers(lo, hi + 1, n) // 8,
         "v_init": rng.integers(lo, hi + 1, n)}
    draws, ref_draws = np.random.default_rng(seed), np.random.default_rng(seed)
    fast, v = tn.Stepper(p, opts, b, xp), tn.init_v(p, b)
    for _ in range(15):
        acc = rng.integers(-80, 81, (n, b))
        v, spikes = tn.step(p, v, acc, opts, ref_draws)
        got = xp.numpy(fast(xp.asarray(acc.T.copy()), draws))
        np.testing.assert_array_equal(got.T, spikes)
        np.testing.assert_array_equal(xp.numpy(fast.v).T, v)


def test_span_names_a_layer_order_in_order_transposed_or_permuted():
    """Recording gathers a layer's spikes from its neuron range: in order, as a transpose (a conv's cores keep a
    position's channels together, the layer is channel-major), or through the permutation."""
    assert loop._span(np.arange(5, 11))[1] is None and loop._span(np.arange(5, 11))[0] == slice(5, 11)
    conv = 7 + np.arange(12).reshape(4, 3).T.ravel()   # 3 channels x 4 positions, neuron = 7 + position * 3 + channel
    assert loop._span(conv) == (slice(7, 19), (3, 4))
    other = np.array([2, 0, 1, 3])
    span, order = loop._span(other + 1)
    assert span == slice(1, 5) and order.tolist() == [2, 0, 1, 3]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(TARGETS), seed=st.integers(0, 2 ** 16), conv=st.booleans(), threads=st.sampled_from([2, 3]),
       batch=st.sampled_from([3, 7]))
def test_a_batch_split_over_threads_gives_the_whole_batchs_run(name, seed, conv, threads, batch, monkeypatch):
    """Large batches run as parts on the BLAS threads side by side (forced here for small ones): every spike,
    potential, counter, tick time and merge equals the reference loop and the unsplit run."""
    rng = np.random.default_rng(seed)
    target = TARGET[name]
    graph = convnet(rng) if conv else mlp(rng, int(rng.integers(3, 40)), int(rng.integers(2, 300)), 4, True)
    program = with_delays(compile_graph(graph, target, CompileOptions()).program, rng, 3)
    x = random_spikes(dict(program.netlist.inputs)["x"], batch=batch, ticks=20, rate=0.3, seed=seed)
    whole = emulator.run(program, target, {"x": x})
    monkeypatch.setattr(loop, "_blas_budget", lambda: threads)
    monkeypatch.setattr(loop, "SPLIT_MIN_CELLS", 0)
    assert len(loop._batch_parts(emulator.prepare(program, target), target, batch, None, threads)) == threads
    split = emulator.run(program, target, {"x": x})
    assert_same(split, reference_run(program, target, x.reshape(batch, 20, -1)), program)
    np.testing.assert_array_equal(split.tick_s, whole.tick_s)
    assert split.timing == whole.timing and split.layer_counts == whole.layer_counts


def test_runs_that_draw_random_numbers_never_split(monkeypatch):
    """A stochastic program's draws depend on the batch's shape: its batch stays whole, so a seed gives one run."""
    program, target, _ = stochastic_program(100.0)
    monkeypatch.setattr(loop, "SPLIT_MIN_CELLS", 0)
    assert len(loop._batch_parts(emulator.prepare(program, target), target, 8, None, 2)) == 1
    deterministic = emulator.prepare(stochastic_program(100.0, (0, 0, 0, 0))[0], target)
    assert len(loop._batch_parts(deterministic, target, 8, None, 2)) == 2
    assert len(loop._batch_parts(deterministic, target, 8, "cpu", 2)) == 1


def test_the_thread_budget_is_the_one_set_when_a_run_starts():
    """An enclosing limit (a sweep point, Ray's one thread per worker) holds for the run: its batch stays whole."""
    with threadpool_limits(1, user_api="blas"):
        assert loop._blas_budget() == 1
    with threadpool_limits(3, user_api="blas"):
        assert loop._blas_budget() == 3


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5), st.integers(1, 40), st.integers(1, 3000), st.integers(0, 400), st.integers(0, 10_000))
def test_the_plans_triples_come_sorted_as_a_lexsort_orders_them(groups, cores, cols, n, seed):
    """_sorted_triples (one int64 key, decoded in place) gives the (group, core, col) triples np.lexsort orders."""
    rng = np.random.default_rng(seed)
    group, core, col = rng.integers(0, groups, n), rng.integers(0, cores, n), rng.integers(0, cols, n).astype(np.int32)
    order = np.lexsort((col, core, group))
    want = np.stack([group[order], core[order], col[order]])
    assert np.array_equal(_sorted_triples(group, core, col, cores, cols), want)
