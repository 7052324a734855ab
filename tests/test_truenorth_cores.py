"""targets/truenorth/cores.py: a window's cores built at once equal the same cores built one by one from their
definition (mapping.TypedRows.axon_keys), and the entry blocks it keeps answer what a flat list would."""
import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from neurocomp.ir.graph import IF, Conv2d, Graph, Input, Output
from neurocomp.ir.layers import lower
from neurocomp.partition import neuron_order
from neurocomp.partition.blocks import ranges
from neurocomp.targets.truenorth.cores import _Reads, _window_tables
from neurocomp.targets.truenorth.mapping import LEVELS, TypedRows

SETTINGS = dict(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def layer_of(seed: int, spread: int, same_source: bool):
    """An IF layer fed by two convs (from one input, or from two), weights in [-spread, spread]: up to 4 levels per
    neuron types by rank, more by bit planes."""
    rng = np.random.default_rng(seed)
    w1 = rng.integers(-spread, spread + 1, (4, 2, 3, 3)).astype(float)
    w2 = rng.integers(-spread, spread + 1, (4, 2, 1, 1)).astype(float)
    second = "x" if same_source else "y"
    nodes = [Input("x", (2, 7, 7)), Conv2d("a", w1, padding=1), Conv2d("b", w2), IF("n", threshold=3.0), Output("o")]
    if not same_source:
        nodes.insert(1, Input("y", (2, 7, 7)))
    edges = [("x", "a"), (second, "b"), ("a", "n"), ("b", "n"), ("n", "o")]
    return lower(Graph(nodes, edges)).layers[0]


def one_by_one(typed: TypedRows, lo: int, hi: int):
    """One core's tables from the definition: per projection its distinct (input, type) keys, ascending, after the
    projections before it; each synapse at its key's axon."""
    types, syn_a, syn_n, opened, offset = [], [], [], [], 0
    for ptr, keys, used in zip(typed.ptr, typed.keys, typed.axon_keys(lo, hi)):
        part = keys[ptr[lo]:ptr[hi]]
        syn_a.append(offset + np.searchsorted(used, part))
        syn_n.append(np.repeat(np.arange(hi - lo), np.diff(ptr[lo:hi + 1])))
        types.append(used % LEVELS)
        opened.append((used // LEVELS, offset + np.arange(used.size)))
        offset += used.size
    return offset, np.concatenate(types), np.concatenate(syn_a), np.concatenate(syn_n), opened


@settings(**SETTINGS)
@given(seed=st.integers(0, 10_000), spread=st.sampled_from([1, 3, 12]), same_source=st.booleans(), keep=st.booleans(),
       band=st.integers(1, 3))
def test_a_windows_cores_built_at_once_equal_them_built_one_by_one(seed, spread, same_source, keep, band):
    layer = layer_of(seed, spread, same_source)
    typed = TypedRows(layer, neuron_order(layer, band), 255, keep)
    rng = np.random.default_rng(seed)
    cuts = np.unique(np.concatenate([[0, layer.size], rng.integers(0, layer.size, 12)]))
    a, b = cuts[:-1], cuts[1:]
    drop = rng.random(a.size) < 0.2   # spans need not touch: repeated cores sit between searched ones
    a, b = a[~drop | (np.arange(a.size) == 0)], b[~drop | (np.arange(a.size) == 0)]
    tables, opened = _window_tables(typed, a, b)
    want = [one_by_one(typed, lo, hi) for lo, hi in zip(a, b)]
    assert tables.neurons.tolist() == (b - a).tolist()
    assert tables.axons.tolist() == [w[0] for w in want]
    assert np.array_equal(tables.axon_type, np.concatenate([w[1] for w in want]))
    assert np.array_equal(tables.syn_axon, np.concatenate([w[2] for w in want]))
    assert np.array_equal(tables.syn_neuron, np.concatenate([w[3] for w in want]))
    assert tables.synapses.tolist() == [w[2].size for w in want]
    assert np.array_equal(tables.weights, typed.typing.weights[ranges(a, b - a)])
    for k, (core, src, axon) in enumerate(opened):
        assert np.array_equal(core, np.repeat(np.arange(a.size), [w[4][k][0].size for w in want]))
        assert np.array_equal(src, np.concatenate([w[4][k][0] for w in want]))
        assert np.array_equal(axon, np.concatenate([w[4][k][1] for w in want]))


@settings(**SETTINGS)
@given(sizes=st.lists(st.integers(0, 6), min_size=1, max_size=8), first=st.integers(0, 12), seed=st.integers(0, 99))
def test_entries_since_a_core_equal_the_flat_lists_filter(sizes, first, seed):
    """_Reads.since reads only the last blocks, and cuts the first of them: the same as filtering all entries."""
    rng = np.random.default_rng(seed)
    reads, core = _Reads(), 0
    for n in sizes:
        cores = core + np.sort(rng.integers(0, 3, n))
        core = int(cores[-1]) if n else core
        reads.add(rng.integers(0, 50, n), 0, cores, rng.integers(0, 9, n))
    src, _, cores, axon = reads.flat()
    keep = cores >= first
    got = reads.since(first)
    for mine, theirs in zip(got, (src[keep], cores[keep], axon[keep])):
        assert np.array_equal(mine, theirs)
    lengths = rng.integers(0, 5, len(sizes))
    starts = rng.integers(0, 20, len(sizes))
    assert ranges(starts, lengths).tolist() == [i for s, n in zip(starts, lengths) for i in range(s, s + n)]
