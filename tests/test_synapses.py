"""Shared synapse lists (neurocomp.ir.synapses): global ids, counts and checks by hand, and round trips."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neurocomp.ir.synapses as synapses_module
import neurocomp.memory as memory
from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.errors import MemoryLimitError
from neurocomp.ir.footprint import layer_sizes
from neurocomp.ir.graph import IF, Affine, Conv2d, Flatten, Graph, Input, Output
from neurocomp.ir.synapses import Synapses
from neurocomp.target import load_target
from neurocomp.targets.loihi.mapping import _core_bits, _destination_cores, axon_bits

# cores 0 and 2 share list 0 (2 axons, 2 neurons each); core 1 has list 1 (3 axons, 1 neuron)
AXON_PTR = np.array([0, 2, 5, 7])
NEURON_PTR = np.array([0, 2, 3, 5])


def _shared() -> Synapses:
    return Synapses(np.array([0, 1, 0]), np.array([0, 3, 5]), np.array([0, 1, 1, 0, 2], np.int16),
                    np.array([0, 0, 1, 0, 0], np.int16), {"weight": np.array([5, -3, 7, 1, 2], np.int16)})


@pytest.mark.parametrize("chunk", [1 << 24, 2, 1])
def test_shared_list_gives_each_core_its_own_global_ids(monkeypatch, chunk):
    """Per-axon counts come the same over list runs of any length."""
    monkeypatch.setattr(synapses_module, "CHUNK", chunk)
    s = _shared()
    np.testing.assert_array_equal(s.per_core(), [3, 2, 3])
    assert s.size == 8
    np.testing.assert_array_equal(s.global_axon(AXON_PTR), [0, 1, 1, 2, 4, 5, 6, 6])
    np.testing.assert_array_equal(s.global_neuron(NEURON_PTR), [0, 0, 1, 2, 2, 3, 3, 4])
    np.testing.assert_array_equal(s.expanded_tables()["weight"], [5, -3, 7, 1, 2, 5, -3, 7])
    np.testing.assert_array_equal(s.axon_counts(AXON_PTR), [1, 2, 1, 0, 1, 1, 2])


def test_problems_are_named():
    s = _shared()
    assert s.problem(AXON_PTR, NEURON_PTR) is None
    assert "axon counts" in s.problem(np.array([0, 2, 5, 8]), NEURON_PTR)
    assert "outside its core" in Synapses(s.core_template, s.ptr, np.array([0, 1, 2, 0, 2]), s.neuron,
                                          s.tables).problem(AXON_PTR, NEURON_PTR)
    assert "outside [0, 2)" in Synapses(np.array([0, 2, 0]), s.ptr, s.axon, s.neuron, s.tables).problem(
        AXON_PTR, NEURON_PTR)
    assert "template_ptr" in Synapses(s.core_template, np.array([0, 4, 3]), s.axon, s.neuron, s.tables).problem(
        AXON_PTR, NEURON_PTR)
    assert "one value per synapse table" in Synapses(s.core_template, s.ptr, s.axon, s.neuron,
                                                     {"weight": np.zeros(4)}).problem(AXON_PTR, NEURON_PTR)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 4), st.integers(0, 12)), min_size=1, max_size=6),
       st.integers(0, 2 ** 16))
def test_flat_lists_give_back_the_global_ids(cores, seed):
    """Random cores (axons, neurons, synapses), synapses sorted by core: flat() and back is the identity."""
    rng = np.random.default_rng(seed)
    axon_ptr = np.concatenate([[0], np.cumsum([a for a, _, _ in cores])])
    neuron_ptr = np.concatenate([[0], np.cumsum([n for _, n, _ in cores])])
    axon = np.concatenate([axon_ptr[c] + rng.integers(0, a, s) for c, (a, _, s) in enumerate(cores)]).astype(np.int64)
    neuron = np.concatenate([neuron_ptr[c] + rng.integers(0, n, s) for c, (_, n, s) in enumerate(cores)]).astype(np.int64)
    weight = rng.integers(-9, 10, axon.size)
    s = Synapses.flat(axon, neuron, {"weight": weight}, axon_ptr, neuron_ptr)
    assert s.problem(axon_ptr, neuron_ptr) is None
    np.testing.assert_array_equal(s.global_axon(axon_ptr), axon)
    np.testing.assert_array_equal(s.global_neuron(neuron_ptr), neuron)
    np.testing.assert_array_equal(s.expanded_tables()["weight"], weight)
    np.testing.assert_array_equal(s.axon_counts(axon_ptr), np.bincount(axon, minlength=axon_ptr[-1]))


def _conv_net() -> Graph:
    rng = np.random.default_rng(0)
    return Graph([Input("x", (2, 12, 12)), Conv2d("c", rng.choice([-2.0, -1.0, 1.0, 2.0], (6, 2, 3, 3)), padding=1),
                  IF("n", threshold=3.0), Flatten("f"), Affine("a", rng.integers(-2, 3, (10, 864)).astype(float)),
                  IF("o", threshold=3.0), Output("out")],
                 [("x", "c"), ("c", "n"), ("n", "f"), ("f", "a"), ("a", "o"), ("o", "out")])


def test_the_up_front_estimate_leaves_convs_to_a_builder_that_shares_lists():
    """864 neurons reading 2 x 3 x 3 taps (18 per position); the dense layer 10 x 864 (and the flatten's 864)."""
    assert layer_sizes(_conv_net()) == {"n": (864, 864 * 18), "o": (10, 8640 + 864)}
    assert layer_sizes(_conv_net(), dense_only=True) == {"n": (864, 0), "o": (10, 8640)}
    assert load_target("loihi").hooks.SHARED_LISTS and not load_target("truenorth").hooks.SHARED_LISTS


def test_loihi_checks_each_new_list_against_the_memory(monkeypatch):
    """Room for the up-front estimate (neurons, the dense layer) but not for conv layer n's one list: 6 x 2 x 34^2
    = 13,872 synapses inside the padding (no weight is zero)."""
    up_front = 200 * (864 + 10) + 40 * 8640
    monkeypatch.setattr(memory, "available_bytes", lambda: up_front + 1000)
    with pytest.raises(MemoryLimitError, match=r"layer n, core 0 \(13,872 synapses\)"):
        compile_graph(_conv_net(), load_target("loihi"), CompileOptions())


def test_loihi_synapse_memory_per_list_equals_the_per_axon_sum():
    """A wide map (a row is 12,800 neurons): Loihi's cores repeat along each row and share lists; each core's
    synapse memory, computed once per list, equals the sum over its own axons; its destination cores, counted
    from one key per edge, equal a per-core set."""
    rng = np.random.default_rng(1)
    graph = Graph([Input("x", (4, 6, 200)), Conv2d("c", rng.choice([-1.0, 1.0], (64, 4, 3, 3)), padding=1),
                   IF("n", threshold=3.0), Conv2d("d", rng.choice([-1.0, 1.0], (8, 64, 3, 3)), padding=1),
                   IF("m", threshold=3.0), Output("out")],
                  [("x", "c"), ("c", "n"), ("n", "d"), ("d", "m"), ("m", "out")])
    spec = load_target("loihi").spec
    n = compile_graph(graph, load_target("loihi"), CompileOptions()).program.netlist
    assert n.synapses.n_templates < n.n_cores
    axon_core = n.axon_core()
    per_axon = np.bincount(n.syn_axon, minlength=n.n_axons)
    expected = np.bincount(axon_core, weights=axon_bits(per_axon, np.diff(n.neuron_ptr)[axon_core], spec),
                           minlength=n.n_cores)
    np.testing.assert_array_equal(_core_bits(n, spec), expected)
    np.testing.assert_array_equal(n.axon_synapses(), per_axon)
    destinations = [len(set(axon_core[n.edge_axon[n.neuron_core()[n.edge_src] == c]])) for c in range(n.n_cores)]
    assert max(destinations) > 1
    np.testing.assert_array_equal(_destination_cores(n), destinations)


def test_fed_synapses_count_only_the_axons_an_edge_or_input_feeds():
    """Per-axon counts [1, 2 | 1, 0, 1 | 1, 2] (cores 0 | 1 | 2); edges feed axons 1, 2 and 6, an input axon 4:
    core 0 keeps axon 1's 2, core 1 axons 2 and 4 (1 + 1), core 2 axon 6's 2. All fed: the list sizes 3, 2, 3."""
    from neurocomp.ir.netlist import Netlist

    def netlist(edge_axon: list[int], in_axon: list[int]) -> Netlist:
        return Netlist(target="loihi", neuron_ptr=NEURON_PTR, axon_ptr=AXON_PTR, core_layer=np.zeros(3, np.int64),
                       params={}, synapses=_shared(), core_tables={}, edge_src=np.zeros(len(edge_axon), np.int64),
                       edge_axon=np.array(edge_axon, np.int64), edge_delay=np.zeros(len(edge_axon), np.int64),
                       in_channel=np.zeros(len(in_axon), np.int64), in_axon=np.array(in_axon, np.int64),
                       in_delay=np.zeros(len(in_axon), np.int64), inputs=(("x", (1,)),), layers=(), outputs=())

    np.testing.assert_array_equal(netlist([1, 2, 6], [4]).fed_synapses(), [2, 2, 2])
    np.testing.assert_array_equal(netlist([0, 1, 2, 3, 5], [4, 6]).fed_synapses(), [3, 2, 3])
    np.testing.assert_array_equal(netlist([], []).fed_synapses(), [0, 0, 0])
