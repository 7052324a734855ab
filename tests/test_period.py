"""Repeating spans (neurocomp.partition.period, split's cycles): the runs' rows really repeat, and a partition that
repeats cycles builds the same netlist as a full search, on both families, with the TrueNorth census equal to it."""
from __future__ import annotations

import dataclasses
import importlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from neurocomp.compiler import CompileOptions, census, compile_graph
from neurocomp.errors import ResourceError
from neurocomp.ir.graph import IF, Affine, Conv2d, Crop, Flatten, Graph, Input, Output, Scale, SumPool2d
from neurocomp.ir.layers import lower
from neurocomp.partition import neuron_order
from neurocomp.partition.period import runs
from neurocomp.target import load_target

split_module = importlib.import_module("neurocomp.partition.split")


def _net(seed: int, side: int, kernel: int, stride: int, padding: int, groups: int, pool: bool, crop: bool,
         scale: bool = False, channels: int = 8) -> Graph:
    """input -> conv (+ sum pool, crop, channel scale) -> IF -> grouped 3x3 conv -> IF."""
    rng = np.random.default_rng(seed)
    out = (side + 2 * padding - kernel) // stride + 1 + int(pool)
    chain = [Conv2d("c1", rng.integers(-1, 2, (channels, 2, kernel, kernel)).astype(float), stride=stride,
                    padding=padding)]
    chain += [SumPool2d("p1", 2, stride=1, padding=1)] if pool else []
    chain += [Crop("k1", 1, 1, out - 2, out - 2)] if crop and out > 3 else []
    chain += [Scale("s1", rng.integers(1, 3, (channels, 1, 1)).astype(float))] if scale else []
    chain += [IF("n1", threshold=3.0),
              Conv2d("c2", rng.integers(-2, 3, (16, channels // groups, 3, 3)).astype(float), padding=1, groups=groups),
              IF("n2", threshold=2.0)]
    nodes = [Input("x", (2, side, side))] + chain
    names = [n.name for n in nodes]
    return Graph(nodes + [Output("o")], list(zip(names, names[1:])) + [(names[-1], "o")])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), side=st.integers(6, 20), kernel=st.sampled_from([1, 3, 5]),
       stride=st.integers(1, 2), padding=st.integers(0, 2), pool=st.booleans(), crop=st.booleans(),
       band=st.integers(1, 3))
def test_every_run_moves_each_row_by_its_shift(seed, side, kernel, stride, padding, pool, crop, band):
    net = lower(_net(seed, side, kernel, stride, padding, 2, pool, crop, scale=True))
    for layer in net.layers:
        order = neuron_order(layer, band)
        for run in (r for family in runs(layer, band) for r in family):
            here = order[run.lo:run.hi - run.step]
            for p, shift in zip(layer.projections, run.shifts):
                a, b = p.matrix(here), p.matrix(order[run.lo + run.step:run.hi])
                assert np.array_equal(np.diff(a.indptr), np.diff(b.indptr))
                assert np.array_equal(a.indices + shift, b.indices) and np.array_equal(a.data, b.data)


def test_a_dense_layer_and_a_row_varying_scale_have_no_runs():
    g = Graph([Input("x", (2, 6, 6)), Flatten("f"), Affine("d", np.ones((5, 72))), IF("n", threshold=1.0), Output("o")],
              [("x", "f"), ("f", "d"), ("d", "n"), ("n", "o")])
    assert runs(lower(g).layer("n"), 1) == ()
    g = Graph([Input("x", (2, 6, 6)), Scale("s", np.arange(6.0)), IF("n", threshold=1.0), Output("o")],
              [("x", "s"), ("s", "n"), ("n", "o")])
    assert runs(lower(g).layer("n"), 1) == ()


def _compiled(graph: Graph, target: str, monkeypatch, cycles: bool, weights: str | None = None):
    """The netlist with cycles repeated, or searched core by core (no runs), and how many cycles recurred."""
    recurred = []
    recur = split_module._recur

    def counted(*args):
        out = recur(*args)
        recurred.append(out is not None)
        return out

    monkeypatch.setattr(split_module, "_recur", counted if cycles else lambda *a: None)
    netlist = compile_graph(graph, load_target(target), CompileOptions(weights=weights)).program.netlist
    monkeypatch.undo()
    return netlist, sum(recurred)


CASES = [(3, 40, 3, 1, 1, 2, False, False), (5, 36, 5, 2, 2, 1, True, False), (7, 44, 3, 1, 0, 4, False, True)]


@pytest.mark.parametrize("target, case, recurs", [(t, c, t == "truenorth" or c is not CASES[1])
                                                  for t in ("truenorth", "loihi") for c in CASES])
def test_repeated_cycles_build_the_netlist_a_full_search_builds(target, case, recurs, monkeypatch):
    """Loihi's 1,024-neuron cores span several rows of the second net's 19 x 19 maps: no cycle there."""
    graph = _net(*case)
    fast, recurred = _compiled(graph, target, monkeypatch, True)
    slow, _ = _compiled(graph, target, monkeypatch, False)
    assert (recurred > 0) == recurs
    assert _same(_chip(slow), _chip(fast))
    assert slow.synapses.n_templates == slow.n_cores
    if recurs:   # a repeated core names its original's synapse list
        assert fast.synapses.n_templates < fast.n_cores


def _depthwise_net() -> Graph:
    """A 3x3 average pool as a depthwise conv (8 channels, 40 x 40), then a conv reading every channel."""
    rng = np.random.default_rng(4)
    nodes = [Input("x", (8, 40, 40)), Conv2d("pool", np.ones((8, 1, 3, 3)), padding=1, groups=8), IF("n1", threshold=4.0),
             Conv2d("c2", rng.integers(-2, 3, (16, 8, 3, 3)).astype(float), padding=1), IF("n2", threshold=2.0)]
    names = [n.name for n in nodes]
    return Graph(nodes + [Output("o")], list(zip(names, names[1:])) + [(names[-1], "o")])


def test_loihi_tiles_a_depthwise_layer_by_position_so_its_cores_feed_few_cores(monkeypatch):
    """Channel by channel, a pool core holds 1,024 positions of one channel (25.6 rows) and feeds the 18-20
    consumer cores over those rows; position-major (128 positions x 8 channels) it feeds the 3-5 over its tile.
    Cycles repeat in the new order as a full search cuts it."""
    import neurocomp.targets.loihi.mapping as loihi_mapping

    fast, recurred = _compiled(_depthwise_net(), "loihi", monkeypatch, True)
    slow, _ = _compiled(_depthwise_net(), "loihi", monkeypatch, False)
    assert recurred > 0 and _same(_chip(slow), _chip(fast))
    monkeypatch.setattr(loihi_mapping, "BY_CHANNEL", True)
    by_channel = compile_graph(_depthwise_net(), load_target("loihi"), CompileOptions()).program.netlist
    pool = [fast.layer("n1").cores, by_channel.layer("n1").cores]
    feeds = [loihi_mapping._destination_cores(n)[list(c)].max() for n, c in zip((fast, by_channel), pool)]
    assert feeds == [5, 20]


def _chip(n) -> dict:
    """The netlist's fields with its synapses as the chip's global lists (how they are shared is not compared)."""
    out = {k: v for k, v in vars(n).items() if k in {f.name for f in dataclasses.fields(n)} - {"synapses"}}
    return out | {"syn_axon": n.syn_axon, "syn_neuron": n.syn_neuron, "syn_tables": n.syn_tables}


def _same(a, b) -> bool:
    """Deep equality over dicts, sequences, dataclasses and arrays."""
    if dataclasses.is_dataclass(a):
        return type(a) is type(b) and _same(vars(a), vars(b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    return a == b


def _splitter_net() -> Graph:
    """A 16-neuron layer read whole by 70,000 neurons: 274 cores read each of its neurons (> 256: splitters)."""
    rng = np.random.default_rng(1)
    return Graph([Input("x", (16,)), Affine("a", rng.integers(-2, 3, (16, 16)).astype(float)), IF("narrow", threshold=2.0),
                  Affine("b", rng.integers(-1, 2, (70_000, 16)).astype(float)), IF("wide", threshold=2.0), Output("o")],
                 [("x", "a"), ("a", "narrow"), ("narrow", "b"), ("b", "wide"), ("wide", "o")])


@pytest.mark.parametrize("graph, weights", [(_net(*CASES[0]), None), (_net(*CASES[1]), "trinary"), (_splitter_net(), None)],
                         ids=["conv", "trinary", "splitters"])
def test_truenorth_census_counts_the_cores_compile_builds(graph, weights):
    target = load_target("truenorth")
    counted = census(graph, target, CompileOptions(weights=weights))
    built = compile_graph(graph, target, CompileOptions(weights=weights)).program.netlist
    per_layer = {c.layer: c.cores for c in counted.layers}
    splitters = sum(n for name, n in per_layer.items() if name.endswith(".splitters"))
    assert {m.name: len(m.cores) for m in built.layers} == {k: v for k, v in per_layer.items() if not k.endswith(".splitters")}
    assert splitters == built.notes["splitter_cores"] and counted.cores == built.n_cores


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), side=st.integers(10, 30), kernel=st.sampled_from([1, 3, 5]), stride=st.integers(1, 2),
       padding=st.integers(0, 2), groups=st.sampled_from([1, 2, 4]), pool=st.booleans(), crop=st.booleans(),
       weights=st.sampled_from([None, "levels", "trinary"]))
def test_truenorth_census_equals_the_compile_on_random_conv_nets(seed, side, kernel, stride, padding, groups, pool, crop,
                                                                 weights):
    graph, target = _net(seed, side, kernel, stride, padding, groups, pool, crop), load_target("truenorth")
    counted = census(graph, target, CompileOptions(weights=weights))
    try:
        built = compile_graph(graph, target, CompileOptions(weights=weights)).program.netlist
    except ResourceError as err:   # a neuron no core holds: the census names the same layer, the last one built
        assert str(err) == counted.unmapped[-1].error
        return
    assert {c.layer: (c.cores, c.binding, c.used) for c in counted.layers} == \
        {m.name: (len(m.cores), m.binding, m.used) for m in built.layers}
