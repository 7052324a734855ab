"""The census's conv counter (targets/truenorth/convcount.py) against the typed rows build_netlist reads: for random
convs (groups, strides, padding, a crop after, weights of 2, 4 or many levels, bit planes) and random spans of
their partition order, the same levels, axon count and axon keys."""
import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from neurocomp.ir.graph import IF, Conv2d, Crop
from neurocomp.ir.layers import Layer, Projection
from neurocomp.partition import neuron_order
from neurocomp.target import load_target
from neurocomp.targets.truenorth.convcount import MIN_RUN, ConvCounts, conv_counts
from neurocomp.targets.truenorth.mapping import TypedRows

WEIGHT_MAX = 255


@st.composite
def conv_layer(draw) -> Layer:
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    groups, cin_g, cout_g = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 6))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pad = (draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1)))
    h, w = draw(st.integers(kh, 8)), draw(st.integers(kw, 8))
    shape = (cout_g * groups, cin_g, kh, kw)
    weights = draw(st.sampled_from(["trinary", "four", "wide", "planes"]))
    if weights == "trinary":
        wt = rng.integers(-1, 2, shape) * 3
    elif weights == "four":
        wt = rng.choice([-6, -3, 0, 3, 9], shape)
    elif weights == "wide":   # more than 4 levels: a bit-plane ladder where one fits, else too many levels
        wt = rng.integers(-100, 101, shape)
    else:
        wt = rng.integers(-7, 8, shape) * int(rng.choice([1, 2, 4]))
        wt[:, rng.integers(cin_g)] = 0   # a fan-in part's kernel: some input channels all zero
    op = Conv2d("c", wt.astype(float), stride=stride, padding=pad, groups=groups)
    out = (shape[0], (h + 2 * pad[0] - kh) // stride[0] + 1, (w + 2 * pad[1] - kw) // stride[1] + 1)
    chain, shapes = (op,), ((cin_g * groups, h, w), out)
    if draw(st.booleans()):
        top, left = draw(st.integers(0, out[1] - 1)), draw(st.integers(0, out[2] - 1))
        cropped = (out[0], draw(st.integers(1, out[1] - top)), draw(st.integers(1, out[2] - left)))
        chain, shapes = (op, Crop("k", top, left, cropped[1], cropped[2])), shapes + (cropped,)
    return Layer("L", IF("L"), shapes[-1], (Projection("src", chain, shapes),))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=conv_layer(), band=st.integers(1, 3), spans=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)),
                                                                    min_size=1, max_size=12))
def test_a_convs_spans_count_as_its_typed_rows_do(layer, band, spans):
    order = neuron_order(layer, band)
    typed, counted = TypedRows(layer, order, WEIGHT_MAX), ConvCounts(layer, order, WEIGHT_MAX)
    for a, b in spans:
        lo, hi = sorted((int(a * layer.size), int(b * layer.size)))
        assert counted.most_levels(lo, hi) == typed.most_levels(lo, hi)
        assert counted.axon_count(lo, hi) == typed.axon_count(lo, hi)
        assert np.array_equal(counted.axon_keys(lo, hi)[0], typed.axon_keys(lo, hi)[0])


def test_the_census_counts_wide_plain_convs_from_the_kernel_and_the_rest_from_rows():
    spec = load_target("truenorth").spec
    wide = Conv2d("c", np.ones((MIN_RUN, 2, 3, 3)), padding=1)
    depthwise = Conv2d("d", np.ones((MIN_RUN, 1, 3, 3)), padding=1, groups=MIN_RUN)
    for op, counted in ((wide, True), (depthwise, False)):
        layer = Layer("L", IF("L"), (MIN_RUN, 5, 5),
                      (Projection("src", (op,), ((op.weight.shape[1] * op.groups, 5, 5), (MIN_RUN, 5, 5))),))
        order = neuron_order(layer, 1)
        assert isinstance(conv_counts(layer, order, False, spec), ConvCounts) == counted
        assert conv_counts(layer, order, True, spec) is None   # a bound kernel's layer opens all types: its rows
