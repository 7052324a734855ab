"""targets/loihi/cores.py: a window's cores built at once equal the same cores built one by one (each core's
distinct inputs per projection, ascending, projection after projection), and the axon blocks it keeps per
projection answer what a flat list would."""
import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from neurocomp.ir.graph import IF, Conv2d, Graph, Input, Output
from neurocomp.ir.layers import lower
from neurocomp.partition import neuron_order
from neurocomp.partition.rows import OrderedRows
from neurocomp.targets.loihi.cores import SIGN_CODES, _Reads, _signs, _window_tables

SETTINGS = dict(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def layer_of(seed: int, same_source: bool):
    """An IF layer fed by a strided 3x3 conv and a 1x1 conv, from one input or two."""
    rng = np.random.default_rng(seed)
    w1 = rng.integers(-3, 4, (5, 2, 3, 3)).astype(float)
    w2 = rng.integers(-3, 4, (5, 2, 1, 1)).astype(float)
    second = "x" if same_source else "y"
    nodes = [Input("x", (2, 9, 9)), Conv2d("a", w1, stride=2, padding=1), Conv2d("b", w2, stride=2), IF("n", threshold=3.0),
             Output("o")]
    if not same_source:
        nodes.insert(1, Input("y", (2, 9, 9)))
    return lower(Graph(nodes, [("x", "a"), (second, "b"), ("a", "n"), ("b", "n"), ("n", "o")])).layers[0]


def one_by_one(rows: OrderedRows, lo: int, hi: int, mixed: bool):
    syn_a, syn_n, syn_w, opened, offset = [], [], [], [], 0
    for _, m in rows.rows:
        inputs = m.indices[m.indptr[lo]:m.indptr[hi]]
        used = np.unique(inputs)
        syn_a.append(offset + np.searchsorted(used, inputs))
        syn_n.append(np.repeat(np.arange(hi - lo), np.diff(m.indptr[lo:hi + 1])))
        syn_w.append(m.data[m.indptr[lo]:m.indptr[hi]].astype(np.int64) * (2 if mixed else 1))
        opened.append((used, offset + np.arange(used.size)))
        offset += used.size
    return offset, np.concatenate(syn_a), np.concatenate(syn_n), np.concatenate(syn_w), opened


@settings(**SETTINGS)
@given(seed=st.integers(0, 10_000), same_source=st.booleans(), mixed=st.booleans())
def test_a_windows_cores_built_at_once_equal_them_built_one_by_one(seed, same_source, mixed):
    layer = layer_of(seed, same_source)
    rows = OrderedRows(layer, neuron_order(layer, 1, False), keep_support=True)
    rng = np.random.default_rng(seed)
    cuts = np.unique(np.concatenate([[0, layer.size], rng.integers(0, layer.size, 8)]))
    a, b = cuts[:-1], cuts[1:]
    keep = (rng.random(a.size) < 0.8) | (np.arange(a.size) == 0)   # spans need not touch
    a, b = a[keep], b[keep]
    axons, synapses, syn_a, syn_n, syn_w, opened = _window_tables(rows, a, b, mixed)
    want = [one_by_one(rows, lo, hi, mixed) for lo, hi in zip(a, b)]
    assert axons.tolist() == [w[0] for w in want] and synapses.tolist() == [w[1].size for w in want]
    for got, k in ((syn_a, 1), (syn_n, 2), (syn_w, 3)):
        assert np.array_equal(got, np.concatenate([w[k] for w in want]))
    for k, (count, inputs, local) in enumerate(opened):
        assert count.tolist() == [w[4][k][0].size for w in want]
        assert np.array_equal(inputs, np.concatenate([w[4][k][0] for w in want]))
        assert np.array_equal(local, np.concatenate([w[4][k][1] for w in want]))


@settings(**SETTINGS)
@given(blocks=st.lists(st.lists(st.integers(0, 4), min_size=1, max_size=5), min_size=1, max_size=6),
       start=st.integers(0, 30), seed=st.integers(0, 99))
def test_axons_since_a_core_equal_the_flat_lists_tail(blocks, start, seed):
    rng = np.random.default_rng(seed)
    reads, first = _Reads([], [], [], []), 0
    for counts in blocks:
        counts = np.array(counts)
        reads.add(first, counts, rng.integers(0, 99, counts.sum()), rng.integers(0, 9, counts.sum()))
        first += counts.size
    counts, src, axon = reads.flat()
    cut = int(counts[:start].sum())
    got = reads.since(start)
    for mine, theirs in zip(got, (counts[start:], src[cut:], axon[cut:])):
        assert np.array_equal(mine, theirs)


def test_sign_modes_per_core():
    """Every weight <= 0 with one < 0: inhibitory; a core without synapses, or with a positive weight: excitatory;
    a layer mixed in sign: mixed everywhere."""
    weights = np.array([-1, 0, -2, 3, -1, 0, 0])
    synapses = np.array([3, 0, 2, 2])
    want = [SIGN_CODES[k] for k in ("inhibitory", "excitatory", "excitatory", "excitatory")]
    assert _signs(weights, synapses, False).tolist() == want
    assert _signs(weights, synapses, True).tolist() == [SIGN_CODES["mixed"]] * 4
