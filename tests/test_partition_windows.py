"""The partitioner builds a layer's rows a window at a time; the netlist must not depend on the window."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neurocomp.targets.loihi.mapping as loihi_mapping
import neurocomp.targets.truenorth.census as tn_census
import neurocomp.targets.truenorth.mapping as tn_mapping
from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.errors import ResourceError
from neurocomp.ir.graph import IF, Conv2d, Graph, Input, Output, Scale
from neurocomp.partition.rows import GROWTH, WHOLE_ROWS, Windows
from neurocomp.target import load_target


def _conv_net(side: int = 12) -> Graph:
    rng = np.random.default_rng(3)
    nodes, edges, prev, cin = [Input("x", (2, side, side))], [], "x", 2
    for i in range(2):
        nodes += [Conv2d(f"c{i}", rng.integers(-2, 3, size=(6, cin, 3, 3)).astype(float), padding=1),
                  IF(f"n{i}", threshold=3.0)]
        edges += [(prev, f"c{i}"), (f"c{i}", f"n{i}")]
        prev, cin = f"n{i}", 6
    return Graph(nodes + [Output("out")], edges + [(prev, "out")])


def _arrays(netlist) -> dict[str, object]:
    out = {}
    for f in dataclasses.fields(netlist):
        v = getattr(netlist, f.name)
        out[f.name] = {k: np.asarray(x) for k, x in v.items()} if f.name in ("params", "core_tables") else v
    del out["synapses"]   # compared as the chip's global lists: windows may share them differently
    out.update(syn_axon=netlist.syn_axon, syn_neuron=netlist.syn_neuron, syn_tables=netlist.syn_tables)
    return out


@pytest.mark.parametrize("target,module,side", [("truenorth", tn_mapping, 12), ("loihi", loihi_mapping, 40)])
def test_small_windows_give_the_same_netlist(monkeypatch, target, module, side):
    """(Loihi's maps are larger: several of its 1,024-neuron cores a layer, each span probed at its reach first.)"""
    graph, spec = _conv_net(side), load_target(target)
    whole = compile_graph(graph, spec, CompileOptions()).program.netlist
    builds = []

    class Counted(Windows):
        def get(self, lo, hi):
            before = self.data
            got = super().get(lo, hi)
            builds.append(got[0] is not before)
            return got

    monkeypatch.setattr(module, "window_width", lambda layer, order, core: 5)
    monkeypatch.setattr(module, "Windows", Counted)
    windowed = compile_graph(graph, spec, CompileOptions()).program.netlist
    assert sum(builds) > 2 * len(whole.layers)   # several windows per layer were built
    a, b = _arrays(whole), _arrays(windowed)
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            assert a[key].keys() == b[key].keys()
            for k in a[key]:
                np.testing.assert_array_equal(a[key][k], b[key][k], err_msg=f"{key}[{k}]")
        elif isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        elif key == "layers":
            for la, lb in zip(a[key], b[key]):
                assert (la.name, la.cores, la.binding, la.used) == (lb.name, lb.cores, lb.binding, lb.used)
                np.testing.assert_array_equal(la.neurons, lb.neurons)
        else:
            assert a[key] == b[key], key


def test_window_is_rebuilt_only_when_a_span_leaves_it():
    built = []
    n = 10 * WHOLE_ROWS
    w = Windows(n, lambda lo, hi: built.append((lo, hi)) or (lo, hi), width=10 * WHOLE_ROWS // 20 * GROWTH)
    assert w.get(0, 3) == ((0, 512), 0)
    assert w.get(2, 512) == ((0, 512), 0)
    assert w.get(508, 1530) == ((508, 2552), 508)         # a span longer than the window: twice its length
    assert w.get(n - 5, n) == ((n - 5, n), n - 5)    # clipped at the layer's end
    assert built == [(0, 512), (508, 2552), (n - 5, n)]


def test_a_small_layer_one_window_holds_is_built_whole_once():
    built = []
    w = Windows(WHOLE_ROWS, lambda lo, hi: built.append((lo, hi)) or (lo, hi), width=WHOLE_ROWS)
    assert [w.get(lo, lo + 2) for lo in (0, 500, WHOLE_ROWS - 2)] == [((0, WHOLE_ROWS), 0)] * 3
    assert built == [(0, WHOLE_ROWS)]
    wide = Windows(WHOLE_ROWS, lambda lo, hi: (lo, hi), width=10 * GROWTH)   # rows of a wide fan-in: windows as usual
    assert wide.get(0, 3) == ((0, 10), 0)


def test_a_window_doubles_while_spans_run_on_and_starts_small_after_a_jump():
    built = []
    w = Windows(2 * WHOLE_ROWS, lambda lo, hi: built.append((lo, hi)) or (lo, hi), width=4 * 64)
    for lo, hi in [(0, 3), (2, 6), (5, 9), (12, 20), (27, 30), (58, 60), (121, 123), (190, 191), (248, 250), (503, 505),
                   (900, 902)]:
        w.get(lo, hi)
    start = 4 * 64 // GROWTH   # 4, doubled while spans run on, up to the width (256), then 4 again after the jump
    assert start == 4 and built == [(0, 6), (5, 13), (12, 28), (27, 59), (58, 122), (121, 249), (248, 504), (503, 759),
                                    (900, 904)]


@pytest.mark.parametrize("name", ["loihi", "loihi2", "truenorth"])
def test_core_census_matches_the_netlist(name):
    from neurocomp.ir.fold import fold_linear
    from neurocomp.ir.layers import lower
    from neurocomp.partition import count_cores, partition
    from neurocomp.quantize import quantize

    target = load_target(name)
    qnet = quantize(lower(fold_linear(_conv_net(side=28))), target)
    netlist = partition(qnet, target)
    census = count_cores(qnet, target)
    assert netlist.n_cores > 2 * len(census)
    assert [c.layer for c in census] == [lm.name for lm in netlist.layers]
    assert [c.cores for c in census] == [len(lm.cores) for lm in netlist.layers]
    assert [(c.binding, c.used, c.allowed) for c in census] == [(lm.binding, lm.used, lm.allowed) for lm in netlist.layers]
    assert sum(c.neurons for c in census) == netlist.n_neurons


def test_census_names_a_layer_no_core_holds_and_sizes_the_rest():
    from neurocomp.ir.graph import Affine
    from neurocomp.ir.layers import lower
    from neurocomp.partition import count_cores
    from neurocomp.quantize import quantize

    g = Graph([Input("x", (5000,)), Affine("a", np.ones((3, 5000))), IF("wide", threshold=64.0),
               Affine("b", np.ones((2, 3))), IF("narrow", threshold=2.0), Output("out")],
              [("x", "a"), ("a", "wide"), ("wide", "b"), ("b", "narrow"), ("narrow", "out")])
    target = load_target("loihi")
    wide, narrow = count_cores(quantize(lower(g), target), target)
    assert (wide.cores, wide.used, wide.allowed) == (0, 5000, 4096) and "wide" in wide.error
    assert (narrow.cores, narrow.error) == (1, "")


def test_neuron_order_by_hand_in_bands_of_rows():
    """(2 channels, 3 rows, 2 columns), one group: band 2 takes rows 0-1 column by column (positions 0, 2, 1, 3),
    then row 2 (4, 5); each position's channels together (neuron = channel * 6 + position)."""
    from neurocomp.ir.layers import lower
    from neurocomp.partition import neuron_order

    g = Graph((Input("x", (1, 3, 2)), Conv2d("c", np.ones((2, 1, 1, 1))), IF("n"), Output("o")),
              (("x", "c"), ("c", "n"), ("n", "o")))
    layer = lower(g).layers[0]
    assert neuron_order(layer, 2).tolist() == [0, 6, 2, 8, 1, 7, 3, 9, 4, 10, 5, 11]
    assert neuron_order(layer).tolist() == [0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11]   # band 1: raster rows
    assert neuron_order(layer, 3).tolist() == [0, 6, 2, 8, 4, 10, 1, 7, 3, 9, 5, 11]


def test_a_depthwise_conv_is_tiled_by_position_where_the_target_asks():
    """(2 channels, 2 rows, 3 columns), one channel per group: channel by channel, or each position's channels
    together as a dense conv's (Loihi)."""
    from neurocomp.ir.layers import lower
    from neurocomp.partition import neuron_order
    from neurocomp.partition.split import conv_groups

    g = Graph((Input("x", (2, 2, 3)), Conv2d("c", np.ones((2, 1, 1, 1)), groups=2), IF("n"), Output("o")),
              (("x", "c"), ("c", "n"), ("n", "o")))
    layer = lower(g).layers[0]
    assert (conv_groups(layer), conv_groups(layer, by_channel=False)) == (2, 1)
    assert neuron_order(layer).tolist() == list(range(12))
    assert neuron_order(layer, 1, by_channel=False).tolist() == [0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11]
    assert loihi_mapping.BY_CHANNEL is False


@pytest.mark.parametrize("groups, band", [(1, 2), (2, 3), (3, 4), (2, 7)])
def test_neuron_order_is_a_group_major_permutation(groups, band):
    from neurocomp.ir.layers import lower
    from neurocomp.partition import neuron_order

    c, h, w = 6, 5, 4
    g = Graph((Input("x", (6, h, w)), Conv2d("c", np.ones((c, 6 // groups, 1, 1)), groups=groups), IF("n"),
               Output("o")), (("x", "c"), ("c", "n"), ("n", "o")))
    order = neuron_order(lower(g).layers[0], band)
    assert sorted(order.tolist()) == list(range(c * h * w))
    group = order // (c // groups * h * w)
    assert np.all(np.diff(group) >= 0)                                     # one group after another
    pos = order % (h * w)
    assert np.all(pos.reshape(-1, c // groups) == pos.reshape(-1, c // groups)[:, :1])   # a position's channels together


def _two_split_convs() -> Graph:
    """Two dense 3x3 convs of fan-in 144, each split by the TrueNorth legalizer into 3 channel groups of partial sums."""
    rng = np.random.default_rng(5)
    return Graph([Input("x", (16, 10, 10)), Conv2d("c0", rng.normal(size=(16, 16, 3, 3)), padding=1),
                  IF("n0", threshold=2.0), Conv2d("c1", rng.normal(size=(8, 16, 3, 3)), padding=1),
                  IF("n1", threshold=2.0), Output("out")],
                 [("x", "c0"), ("c0", "n0"), ("n0", "c1"), ("c1", "n1"), ("n1", "out")])


def test_census_of_partial_sums_counts_their_sum_from_running_totals(monkeypatch):
    """A fan-in split's sum reads one partial neuron per projection: the census counts it from running sums of
    keys and copies (census._greedy, no search), and must give the netlist's cores and binding resource."""
    from neurocomp.compiler import census

    summed = []
    additive = tn_census._Count._additive
    monkeypatch.setattr(tn_census._Count, "_additive",
                        lambda self, *a: (done := additive(self, *a)) and summed.append(self.layer.name) or done)
    g = _two_split_convs()
    target = load_target("truenorth")
    netlist = compile_graph(g, target, CompileOptions()).program.netlist
    counted = census(g, target, CompileOptions()).layers
    assert [(c.layer, c.cores, c.binding, c.used) for c in counted] == \
        [(lm.name, len(lm.cores), lm.binding, lm.used) for lm in netlist.layers]
    assert sum(c.neurons for c in counted) == netlist.n_neurons
    assert ("n0", 269) in [(c.layer, c.cores) for c in counted] and sorted(summed) == ["n0"] * 3 + ["n1"] * 3


def _scaled_sum(scales: list) -> Graph:
    """IF layers over one input, each read through a Scale (`scales`: 0-d or per channel) by one layer `sum`."""
    rng = np.random.default_rng(7)
    nodes, edges = [Input("x", (3, 8, 8))], []
    for i, s in enumerate(scales):
        nodes += [Conv2d(f"c{i}", rng.integers(-3, 4, size=(4, 3, 3, 3)).astype(float), padding=1),
                  IF(f"n{i}", threshold=4.0), Scale(f"s{i}", np.asarray(s, dtype=float))]
        edges += [("x", f"c{i}"), (f"c{i}", f"n{i}"), (f"n{i}", f"s{i}"), (f"s{i}", "sum")]
    return Graph(nodes + [IF("sum", threshold=3.0), Output("out")], edges + [("sum", "out")])


@pytest.mark.parametrize("scales, sum_cores", [([1.0, -1.0, 2.0], 4),
                                               ([np.array([1.0, 0.0, 2.0, 1.0])[:, None, None], -1.0,
                                                 np.array([2.0, 2.0, 0.0, 3.0])[:, None, None]], 3),
                                               ([2.0] * 5, 6)])
def test_a_sum_of_scaled_layers_is_counted_from_its_scales(scales, sum_cores, monkeypatch):
    """A layer whose projections are one Scale each (a fan-in split's sum) is counted from its scales' levels,
    worked out on their own shape with no rows built (census._scaled_rows): the netlist's cores and binding
    resource, per-channel scales and zeros (no synapse) included."""
    from neurocomp.compiler import census

    def unbuilt(*_):
        raise AssertionError("rows built for a sum of Scales")
    monkeypatch.setattr(tn_census, "_read_rows", unbuilt)
    g, target = _scaled_sum(scales), load_target("truenorth")
    netlist = compile_graph(g, target, CompileOptions()).program.netlist
    counted = census(g, target, CompileOptions()).layers
    assert [(c.layer, c.cores, c.binding, c.used) for c in counted] == \
        [(lm.name, len(lm.cores), lm.binding, lm.used) for lm in netlist.layers]
    assert counted[-1].cores == sum_cores


def _read_twice() -> Graph:
    """One IF layer read by a sum through two Scales: two projections from one source."""
    conv = Conv2d("c0", np.random.default_rng(7).integers(-3, 4, size=(4, 3, 3, 3)).astype(float), padding=1)
    return Graph([Input("x", (3, 8, 8)), conv, IF("n0", threshold=4.0), Scale("s0", np.asarray(1.0)),
                  Scale("s1", np.asarray(2.0)), IF("sum", threshold=3.0), Output("out")],
                 [("x", "c0"), ("c0", "n0"), ("n0", "s0"), ("n0", "s1"), ("s0", "sum"), ("s1", "sum"), ("sum", "out")])


def _read_by_two_sums() -> Graph:
    """One IF layer read by two sums, a Scale each: each sum's reads of it are booleans, and they add up to 2."""
    conv = Conv2d("c0", np.random.default_rng(8).integers(-3, 4, size=(4, 3, 3, 3)).astype(float), padding=1)
    return Graph([Input("x", (3, 8, 8)), conv, IF("n0", threshold=4.0), Scale("s0", np.asarray(1.0)),
                  Scale("s1", np.asarray(2.0)), IF("sum", threshold=3.0), IF("sum2", threshold=3.0), Output("out"),
                  Output("out2")],
                 [("x", "c0"), ("c0", "n0"), ("n0", "s0"), ("n0", "s1"), ("s0", "sum"), ("s1", "sum2"), ("sum", "out"),
                  ("sum2", "out2")])


@pytest.mark.parametrize("graph", [lambda: _scaled_sum([1.0, -1.0, 2.0]), _read_twice, _read_by_two_sums,
                                   lambda: _scaled_sum([np.array([1.0, 0.0, 2.0, 1.0])[:, None, None], -1.0])])
@pytest.mark.parametrize("zeros", [False, True], ids=["none-yet", "zeros"])
def test_the_census_reads_of_a_sums_sources_are_the_netlists_copies(graph, zeros):
    """What the census adds to each source per neuron while counting a sum of Scales (the axons that read it)
    is the copies the netlist gives that neuron: one per scale that is not 0, none where it is, two where it reads
    the source twice or two sums read it. count_cores starts from no reads at all (a layer's first reads are taken
    as they come, booleans for a sum's); the compile's refusal path from arrays, zeros where none are known."""
    g, target = graph(), load_target("truenorth")
    compiled = compile_graph(g, target, CompileOptions())
    layers = compiled.qnet.network.layers
    reads = {layer.name: np.zeros(layer.size, np.int64) for layer in layers} if zeros else {}
    tn_census.count_from(compiled.qnet, target.spec, len(layers) - 1, reads)
    netlist = compiled.program.netlist
    for layer in layers:
        if layer.name not in ("sum", "sum2"):
            copies = np.maximum(reads.get(layer.name, np.zeros(layer.size, np.int64)), 1)
            assert np.array_equal(copies, netlist.n_copies()[netlist.layer(layer.name).neurons])
    assert not any(reads[name].any() for name in ("sum", "sum2") if name in reads)


def test_a_sum_of_more_levels_than_types_is_refused_by_the_census_as_by_the_compile():
    """Five distinct scales that no bit-plane ladder holds: _scaled_rows leaves the layer to the rows, which name
    the resource the compile refuses with."""
    from neurocomp.compiler import census

    g, target = _scaled_sum([1.0, 2.0, 3.0, -1.0, -2.0]), load_target("truenorth")
    with pytest.raises(ResourceError) as refused:
        compile_graph(g, target, CompileOptions())
    (wide,) = census(g, target, CompileOptions()).unmapped
    assert (wide.layer, wide.binding, wide.used, wide.allowed, wide.error) == \
        ("sum", refused.value.resource, refused.value.used, refused.value.allowed, str(refused.value))


@pytest.mark.parametrize("sampled_layer", [None, 100])
def test_parts_of_one_split_take_the_tile_height_of_the_first(sampled_layer, monkeypatch):
    """The first layer of a geometry tries every tile height (above SAMPLED_LAYER neurons on a sample, then the
    winner in full), and the layers of its geometry (the other parts of its fan-in split) take the winner untried;
    the census chooses as the compile does and equals the netlist."""
    from neurocomp.compiler import census

    if sampled_layer is not None:
        monkeypatch.setattr(tn_mapping, "SAMPLED_LAYER", sampled_layer)
    heights: dict[str, tuple[int, ...]] = {}
    sampled: list[str] = []
    of = tn_mapping.TileHeights.of

    def spy(self, layer, cost):
        heights[layer.name] = of(self, layer, lambda band: sampled.append(layer.name) or cost(band))
        return heights[layer.name]
    monkeypatch.setattr(tn_mapping.TileHeights, "of", spy)
    g = _two_split_convs()
    target = load_target("truenorth")
    netlist = compile_graph(g, target, CompileOptions()).program.netlist
    built_heights, built_sampled = dict(heights), list(sampled)
    heights.clear(), sampled.clear()
    counted = census(g, target, CompileOptions()).layers
    assert [(c.layer, c.cores) for c in counted] == [(lm.name, len(lm.cores)) for lm in netlist.layers]
    assert heights == built_heights and sampled == built_sampled
    tried = [name for name, h in heights.items() if len(h) > 1]
    assert tried == ([] if sampled_layer else ["n1", "n1.part2-", "n0", "n0.part2-"])
    assert sampled == (["n1"] * 3 + ["n1.part2-"] * 3 + ["n0"] * 3 + ["n0.part2-"] * 3 if sampled_layer else [])
    for split in ("n0", "n1"):
        parts = [h for name, h in heights.items() if name.startswith(f"{split}.part") and name != f"{split}.part2-"]
        assert len(parts) == 5 and all(len(h) == 1 for h in parts) and len(set(parts)) == 1


_greedy = tn_census._greedy


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(0, 12), st.integers(1, 4)), min_size=1, max_size=60),
       st.one_of(st.none(), st.integers(1, 60)))
def test_running_sum_spans_equal_split(rows, stop):
    """_greedy and _binding give split's spans and binding resource wherever a span's neurons and axons are sums
    over its rows (8 neurons, 20 axons a core here)."""
    from types import SimpleNamespace

    from neurocomp.partition import split

    copies, keys, levels = (np.array(c, dtype=np.int64) for c in zip(*rows))
    neurons, axons = tn_census._running(copies), tn_census._running(keys)

    def fits(lo, hi):
        usage = [("neurons (incl. fan-out copies)", int(neurons[hi] - neurons[lo]), 8),
                 ("axons", int(axons[hi] - axons[lo]), 20), ("weight levels per neuron", int(levels[lo:hi].max()), 4)]
        worst = max(usage, key=lambda u: u[1] / u[2])
        return all(u[1] <= u[2] for u in usage), *worst

    layer = SimpleNamespace(name="sum", size=len(rows))
    spans, bind = split(layer, fits, stop=stop)
    end = len(rows) if stop is None else min(len(rows), stop)
    lo, hi = _greedy(neurons, axons, 8, 20, end)
    assert list(zip(lo.tolist(), hi.tolist())) == spans
    assert tn_census._binding(lo, hi, neurons, axons, levels, 8, 20) == bind


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 9), st.integers(0, 12), st.integers(1, 5)), min_size=1, max_size=60),
       st.booleans())
def test_a_reach_from_the_neurons_gives_the_same_spans_in_fewer_probes(rows, neuron_bound):
    """split with core_reach (a span's neurons, copies included, within a core) gives the spans and binding resource
    of the unbounded search, never probes a span beyond the reach (but one neuron, whose error it reports), and
    where the neurons bind every core (no axons) finds each core in one probe (8 neurons, 20 axons a core here)."""
    from types import SimpleNamespace

    from neurocomp.partition import split

    copies, keys, levels = (np.array(c, dtype=np.int64) for c in zip(*rows))
    keys *= not neuron_bound
    neurons, axons = tn_census._running(copies), tn_census._running(keys)
    reach = tn_mapping.core_reach(tn_mapping.held_slots(np.arange(len(rows)), copies), {"core.neurons": 8})
    probes: list[list[tuple[int, int]]] = [[], []]

    def fits_logged(log):
        def fits(lo, hi):
            log.append((lo, hi))
            usage = [("neurons (incl. fan-out copies)", int(neurons[hi] - neurons[lo]), 8),
                     ("axons", int(axons[hi] - axons[lo]), 20), ("weight levels per neuron", int(levels[lo:hi].max()), 4)]
            worst = max(usage, key=lambda u: u[1] / u[2])
            return all(u[1] <= u[2] for u in usage), *worst
        return fits

    layer = SimpleNamespace(name="sum", size=len(rows))
    outcomes = []
    for log, bound in zip(probes, (None, reach)):
        try:
            outcomes.append(split(layer, fits_logged(log), reach=bound))
        except ResourceError as err:
            outcomes.append((err.resource, err.used, err.allowed))
    assert outcomes[0] == outcomes[1]
    assert all(hi <= max(reach(lo), lo + 1) for lo, hi in probes[1])
    if neuron_bound and isinstance(outcomes[1][0], list) and levels.max() <= 4:
        assert len(probes[1]) == len(outcomes[1][0]) <= len(probes[0])


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 200_000), st.sampled_from([3, 1_000, 150_000, 10 ** 12]), st.integers(0, 10_000))
def test_previous_occurrence_by_radix_passes_equals_a_stable_sort(n, spread, seed):
    """_previous orders narrow ids by 16-bit radix passes over their ranks (two where there are more than 2^16 of
    them) and wide ones by a comparison sort: each entry's last earlier equal entry either way."""
    ids = np.random.default_rng(seed).integers(0, spread, n) + spread // 3
    order = np.argsort(ids, kind="stable")
    want = np.full(n, -1)
    same = ids[order[1:]] == ids[order[:-1]]
    want[order[1:][same]] = order[:-1][same]
    assert np.array_equal(tn_mapping._previous(ids), want)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(3, 7))
def test_typed_keys_per_synapse_rank_or_bit_planes(seed, spread):
    """Typing.expand: a neuron with <= 4 distinct weights types each synapse by its weight's rank; one with more, by
    the set bits of its ladder's digit -- computed here synapse by synapse, for rows of both kinds in one matrix."""
    import scipy.sparse as sp
    from hypothesis import assume

    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 13, 40)
    cols = [np.sort(rng.choice(30, k, replace=False)) for k in sizes]
    data = rng.integers(-spread, spread + 1, sizes.sum()).astype(np.float64) * rng.choice([1, 2])
    m = sp.csr_matrix((data, np.concatenate(cols), np.concatenate([[0], np.cumsum(sizes)])), shape=(40, 30))
    m.eliminate_zeros()
    typing = tn_mapping.Typing.of(*tn_mapping.row_levels([("x", m)], 40), 255)
    ptr, keys = typing.expand(m)
    fitting = [row for row in range(40) if typing.plane[row] or typing.need[row] <= 4]   # the others fit no core
    assume(typing.plane.any() and not typing.plane[fitting].all())
    for row in fitting:
        want = []
        for col, w in zip(m.indices[m.indptr[row]:m.indptr[row + 1]], m.data[m.indptr[row]:m.indptr[row + 1]]):
            if typing.plane[row]:
                q = int(w) // int(typing.a[row])
                bits = q & ((1 << int(typing.p[row])) - 1) if typing.mixed[row] else abs(q)
            else:
                bits = 1 << int(np.flatnonzero(typing.table[row, :4] == w)[0])
            want += [col * 4 + t for t in range(4) if bits >> t & 1]
        assert keys[ptr[row]:ptr[row + 1]].tolist() == want
