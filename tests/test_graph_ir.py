import dataclasses
import mmap
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from neurocomp.errors import GraphError
from neurocomp.ir import ops
from neurocomp.ir.graph import IF, Affine, Conv2d, Flatten, Graph, Input, Output, SumPool2d
from neurocomp.ir.layers import lower
from netlib import integer_cnn


def test_shapes_inferred():
    g = integer_cnn()
    assert g.shape("conv") == (3, 6, 6)
    assert g.shape("pool") == (3, 3, 3)
    assert g.shape("flat") == (27,)
    assert g.shape("n2") == (4,)


def test_lowering_groups_linear_chains():
    net = lower(integer_cnn())
    assert [l.name for l in net.layers] == ["n1", "n2"]
    assert [op.name for op in net.layer("n2").projections[0].chain] == ["pool", "flat", "fc"]
    assert net.layer("n2").projections[0].source == "n1"
    assert net.outputs == ("n2",)


@pytest.mark.parametrize("bad, msg", [
    (lambda: Graph([Input("x", (3,)), Affine("a", np.ones((2, 4))), IF("n")], [("x", "a"), ("a", "n")]), "Affine expects input"),
    (lambda: Graph([Input("x", (2,)), Affine("a", np.array([[1.0, np.nan]])), IF("n")], [("x", "a"), ("a", "n")]), "NaN"),
    (lambda: Graph([Input("x", (1, 4, 4)), Conv2d("c", np.ones((2, 2, 3, 3))), IF("n")], [("x", "c"), ("c", "n")]), "input channels"),
    (lambda: Graph([Input("x", (2,)), Affine("a", np.eye(2)), Affine("b", np.eye(2)), IF("n")],
                   [("x", "n"), ("a", "b"), ("b", "a"), ("b", "n")]), r"cycle through \['a', 'b'\] with no neuron"),
    (lambda: Graph([Input("x", (2,)), IF("n", threshold=np.ones(3))], [("x", "n")]), "does not broadcast"),
    (lambda: Graph([Input("x", (2,))], [("x", "y")]), "unknown node"),
])
def test_bad_graphs_name_the_problem(bad, msg):
    with pytest.raises(GraphError, match=msg):
        bad()


@settings(max_examples=25, deadline=None)
@given(c=st.integers(1, 3), h=st.integers(3, 9), w=st.integers(3, 9), k=st.integers(1, 3), s=st.integers(1, 2),
       p=st.integers(0, 1), groups=st.sampled_from([1, 2]), seed=st.integers(0, 10**6))
def test_conv_rows_equal_torch(c, h, w, k, s, p, groups, seed):
    """The sparse rows a core materialises equal torch's convolution on every output."""
    rng = np.random.default_rng(seed)
    cin, cout = c * groups, 2 * groups
    node = Conv2d("c", rng.integers(-3, 4, size=(cout, c, k, k)).astype(float), stride=s, padding=p, groups=groups)
    x = rng.integers(0, 2, size=(cin, h, w)).astype(float)
    y = ops.forward(node, torch.from_numpy(x[None])).numpy().ravel()
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    m = ops.rows(node, (cin, h, w), (cout, oh, ow), np.arange(cout * oh * ow))
    assert np.array_equal(m @ x.ravel(), y)


def test_integer_conv_rows_are_int32_and_a_chain_of_them_composes_without_overflow():
    """A conv of small integer weights (a quantised layer's) gives int32 rows with the float conv's values; two of
    them chained compose in float64: 30000 x 30000 x 9 taps passes int32's range, and the matrix still equals torch."""
    rng = np.random.default_rng(0)
    w = rng.integers(-3, 4, size=(2, 2, 3, 3)).astype(float)
    ints = ops.rows(Conv2d("c", w), (2, 5, 5), (2, 3, 3), np.arange(18))
    floats = ops.rows(Conv2d("c", w + 0.5), (2, 5, 5), (2, 3, 3), np.arange(18))
    assert ints.dtype == np.int32 and floats.dtype == np.float64
    assert np.array_equal(ints.toarray(), floats.toarray() - 0.5 * (floats.toarray() != 0))
    big = np.full((1, 1, 3, 3), 30000.0)
    g = Graph([Input("x", (1, 5, 5)), Conv2d("c1", big), Conv2d("c2", big), IF("n"), Output("o")],
              [("x", "c1"), ("c1", "c2"), ("c2", "n"), ("n", "o")])
    proj = lower(g).layer("n").projections[0]
    t = torch.ones((1, 1, 5, 5), dtype=torch.float64)
    for op in proj.chain:
        t = ops.forward(op, t)
    m = proj.matrix(np.arange(1))
    assert m.dtype == np.float64 and m.sum() == t.item() == 30000.0 ** 2 * 81


def test_chain_matrix_and_bias_equal_forward():
    rng = np.random.default_rng(3)
    g = Graph([Input("x", (2, 6, 6)), Conv2d("c", rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3), padding=1), IF("n1"),
               SumPool2d("p", 3, stride=2), Flatten("f"), Affine("a", rng.normal(size=(5, 12)), rng.normal(size=5)), IF("n2"),
               Output("o")],
              [("x", "c"), ("c", "n1"), ("n1", "p"), ("p", "f"), ("f", "a"), ("a", "n2"), ("n2", "o")])
    proj = lower(g).layer("n2").projections[0]
    x = rng.random(3 * 36)
    t = torch.from_numpy(x.reshape(1, 3, 6, 6))
    for op in proj.chain:
        t = ops.forward(op, t)
    assert np.allclose(proj.matrix(np.arange(5)) @ x + proj.bias(), t.numpy().ravel(), rtol=0, atol=1e-12)
    sub = proj.matrix(np.array([4, 1]))
    assert np.allclose(sub.toarray(), proj.matrix(np.arange(5)).toarray()[[4, 1]])


def test_linear_op_into_output_becomes_readout():
    g = Graph([Input("x", (3,)), Affine("a", np.ones((2, 3))), Output("o")], [("x", "a"), ("a", "o")])
    net = lower(g)
    assert net.outputs == ("a.readout",)
    assert type(net.layers[0].neuron).__name__ == "Readout"


def test_a_nodes_arrays_are_its_own_and_read_only_and_shared_only_when_frozen():
    w = np.arange(18, dtype=np.float64).reshape(2, 1, 3, 3)
    conv = Conv2d("c", w)
    w[0, 0, 0, 0] = 99.0   # the caller's array stays the caller's
    assert conv.weight[0, 0, 0, 0] == 0.0 and not conv.weight.flags.writeable
    with pytest.raises(ValueError):
        conv.weight[0, 0, 0, 0] = 1.0
    again = dataclasses.replace(conv, name="d")   # a frozen array is passed on, not copied
    assert again.weight is conv.weight
    view = conv.weight[:1]   # read-only but not its own data: copied
    assert Conv2d("e", view).weight is not view
    turned = conv.weight.transpose(1, 0, 2, 3).transpose(1, 0, 2, 3)   # a view of all of a frozen array: kept
    assert turned.base is not None and Conv2d("g", turned).weight is turned
    ints = np.ones((2, 1, 3, 3), np.int64)
    ints.setflags(write=False)
    assert Conv2d("f", ints).weight.dtype == np.float64
    mapped = np.ndarray((2, 1, 3, 3), np.float64, buffer=mmap.mmap(-1, 144, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS))
    loose = mapped.transpose(1, 0, 2, 3).transpose(1, 0, 2, 3)
    loose.setflags(write=False)
    assert Conv2d("h", loose).weight is not loose   # a read-only view of a writeable mapping: copied
    mapped.setflags(write=False)
    seen = mapped.transpose(1, 0, 2, 3).transpose(1, 0, 2, 3)   # all of a read-only mapping of its own: kept
    assert Conv2d("i", seen).weight is seen


def test_a_large_part_kernel_lies_in_a_mapping_of_its_own_holding_its_taps_alone():
    """on_taps writes a fan-in part's kernel (its layer's shape, a few channels live) into zeros mapped apart, so the
    pages of the channels it does not hold are never allocated, whatever state the allocator's heap is in; the node
    keeps that array as it is, and its values are the taps written and zeros."""
    from neurocomp.ir.graph import APART_BYTES, on_taps
    rng = np.random.default_rng(3)
    cout, cin = 128, APART_BYTES // (128 * 9 * 8) + 1
    op = Conv2d("c", np.ones((cout, cin, 3, 3)))
    taps = np.arange(5 * 9, 7 * 9)   # input channels 5 and 6
    values = rng.integers(-4, 5, size=(cout, taps.size)).astype(np.float64)
    part = on_taps(op, taps, values)
    root = part.weight
    while isinstance(root.base, np.ndarray):
        root = root.base
    assert isinstance(root.base, mmap.mmap) and not root.flags.writeable
    dense = np.zeros((cout, cin * 9))
    dense[:, taps] = values
    assert np.array_equal(part.weight, dense.reshape(cout, cin, 3, 3))
    assert dataclasses.replace(part, name="d").weight is part.weight
    if sys.platform.startswith("linux"):   # not charged against memory: a fork cannot fail on its unwritten zeros
        assert "nr" in _area_flags(root.__array_interface__["data"][0])


def _area_flags(address: int) -> list[str]:
    """The VmFlags of the memory area holding `address` (/proc/self/smaps)."""
    inside = False
    for line in open("/proc/self/smaps"):
        head = line.split()[0]
        if "-" in head and ":" not in head:
            lo, hi = (int(x, 16) for x in head.split("-"))
            inside = lo <= address < hi
        elif inside and head == "VmFlags:":
            return line.split()[1:]
    raise AssertionError(f"no memory area holds {address:#x}")
