"""fold_linear keeps the function and hands the quantiser the weights the cores store."""
import numpy as np
import torch
from hypothesis import given, settings, strategies as st

from neurocomp.ir import ops
from neurocomp.ir.fold import fold_linear
from neurocomp.ir.graph import IF, Conv2d, Graph, Input, Output, SumPool2d


def _net(kp: int, sp: int, k: int, s: int, groups: int, seed: int) -> Graph:
    rng = np.random.default_rng(seed)
    w = rng.integers(-3, 4, (4, 4 // groups, k, k)).astype(float)
    nodes = (Input("x", (4, 17, 17)), SumPool2d("pool", kp, sp), Conv2d("conv", w, rng.normal(size=4), s, 0, groups),
             IF("n"), Output("y"))
    return Graph(nodes, (("x", "pool"), ("pool", "conv"), ("conv", "n"), ("n", "y")))


def _apply(g: Graph, x: torch.Tensor) -> torch.Tensor:
    for name in g.topological():
        node = g.node(name)
        if isinstance(node, (SumPool2d, Conv2d)):
            x = ops.forward(node, x)
    return x


@settings(max_examples=25, deadline=None)
@given(kp=st.integers(1, 3), sp=st.integers(1, 3), k=st.integers(1, 3), s=st.integers(1, 2),
       groups=st.sampled_from([1, 2]), seed=st.integers(0, 99))
def test_folded_conv_equals_pool_then_conv(kp, sp, k, s, groups, seed):
    g = _net(kp, sp, k, s, groups, seed)
    f = fold_linear(g)
    assert [type(n).__name__ for n in f.nodes] == ["Input", "Conv2d", "IF", "Output"]
    assert f.shape("n") == g.shape("n")
    x = torch.from_numpy(np.random.default_rng(seed).integers(0, 2, (2, 4, 17, 17)).astype(float))
    assert torch.allclose(_apply(f, x), _apply(g, x))


def test_fold_spreads_kernel_by_the_pool():
    g = _net(3, 2, 3, 1, 1, 0)
    conv = fold_linear(g).node("conv")
    assert conv.weight.shape == (4, 4, 7, 7) and conv.stride == (2, 2)
    w = g.node("conv").weight
    # input pixel (2, 2) lies in pooled windows 0 and 1 along each axis: four kernel taps add up.
    assert conv.weight[0, 0, 2, 2] == w[0, 0, 0, 0] + w[0, 0, 0, 1] + w[0, 0, 1, 0] + w[0, 0, 1, 1]


def test_padded_conv_is_left_alone():
    g = _net(2, 2, 3, 1, 1, 0)
    nodes = tuple(Conv2d("conv", n.weight, n.bias, 1, 1) if n.name == "conv" else n for n in g.nodes)
    g = Graph(nodes, g.edges)
    assert fold_linear(g) is g


def test_conv_then_correlation_fuses_into_one_correlation():
    from neurocomp.ir.graph import Correlation, Readout
    rng = np.random.default_rng(3)
    a = Conv2d("a", rng.normal(size=(4, 2, 3, 3)), rng.normal(size=4), stride=2, groups=2)
    b = Correlation("corr", rng.normal(size=(1, 4, 2, 2)))
    g = Graph((Input("x", (4, 15, 15)), a, b, Readout("r")), (("x", "a"), ("a", "corr"), ("corr", "r")))
    f = fold_linear(g)
    fused = f.node("corr")
    assert isinstance(fused, Correlation) and fused.weight.shape == (1, 4, 5, 5) and fused.stride == (2, 2)
    x = torch.from_numpy(rng.normal(size=(2, 4, 15, 15)))
    want = ops.forward(b, ops.forward(a, x))
    assert torch.allclose(ops.forward(fused, x), want)


@settings(max_examples=25, deadline=None)
@given(ka=st.integers(1, 3), sa=st.integers(1, 2), kb=st.integers(1, 3), sb=st.integers(1, 2),
       ga=st.sampled_from([1, 2]), gb=st.sampled_from([1, 2]), seed=st.integers(0, 99))
def test_folded_conv_equals_conv_then_conv(ka, sa, kb, sb, ga, gb, seed):
    """Grouped convs in either place, strides and biases: the fused conv computes the pair's function."""
    rng = np.random.default_rng(seed)
    a = Conv2d("a", rng.normal(size=(4, 4 // ga, ka, ka)), rng.normal(size=4), sa, 0, ga)
    b = Conv2d("b", rng.normal(size=(6, 4 // gb, kb, kb)), rng.normal(size=6), sb, 0, gb)
    g = Graph((Input("x", (4, 13, 13)), a, b, IF("n"), Output("y")), (("x", "a"), ("a", "b"), ("b", "n"), ("n", "y")))
    f = fold_linear(g)
    assert [type(n).__name__ for n in f.nodes] == ["Input", "Conv2d", "IF", "Output"] and f.shape("n") == g.shape("n")
    x = torch.from_numpy(rng.normal(size=(2, 4, 13, 13)))
    assert torch.allclose(_apply(f, x), _apply(g, x))
