"""Differential tests on random graphs compiled for Loihi: the emulator and Lava against the source's float meaning
(neurocomp.backends.reference on the Graph before quantisation).

Graphs mix sign modes, parallel and converging projections, overlapping pools before padded convs, extreme
thresholds and biases, with integer weights at a power-of-two step, so most are exactly representable: where the
report says every layer is exact, every spike and read-out potential equals the float Graph's; where it does not
but no register can overflow in the run, the program still equals its quantised Graph; graphs the chip cannot hold
are refused with neurocomp's own errors. Long runs and decays near 1 drive the accumulators to their limits.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

from neurocomp.backends import emulator, lava, reference
from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.errors import UserError
from neurocomp.ir.graph import IF, Affine, Conv2d, Flatten, Graph, Input, Output, Readout, SumPool2d
from neurocomp.ir.layers import lower
from neurocomp.target import load_target
from lavalib import needs_lava
from netlib import random_spikes

LOIHI = load_target("loihi")
FAST = dict(place_effort=1, place_anneal=0, congestion=0.0)
SIGNS = ("excitatory", "inhibitory", "mixed")
QUICK = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _weights(rng: np.random.Generator, shape: tuple[int, ...], sign: str, amp: int) -> np.ndarray:
    if sign == "mixed":
        return rng.integers(-amp, amp + 1, size=shape).astype(float)
    return rng.integers(0, amp + 1, size=shape).astype(float) * (1.0 if sign == "excitatory" else -1.0)


@st.composite
def source_graphs(draw, thresholds=(1, 2, 5, 40, 1000)) -> tuple[Graph, tuple[int, ...], int, float, int]:
    """(graph, input shape, ticks, input rate, input seed): x -> [pool -> padded conv | one or two parallel
    Affines] -> IF h -> Affine -> (IF | Readout) o, with an optional skip x -> o converging on o."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31 - 1)))
    step = 2.0 ** draw(st.integers(-3, 3))
    amp = draw(st.sampled_from([1, 2, 3, 7]))
    sign = lambda: draw(st.sampled_from(SIGNS))  # noqa: E731
    if draw(st.booleans()):
        c, hw = draw(st.integers(1, 2)), draw(st.integers(3, 6))
        kp, sp = draw(st.integers(1, min(3, hw))), draw(st.integers(1, 2))
        pad = draw(st.integers(0, 1))
        k = draw(st.integers(1, min(3, (hw - kp) // sp + 1 + 2 * pad)))
        shape = (c, hw, hw)
        front = [SumPool2d("pool", kp, sp), Conv2d("conv", _weights(rng, (draw(st.integers(1, 3)), c, k, k), sign(), amp) * step,
                                                   padding=pad)]
        edges = [("x", "pool"), ("pool", "conv"), ("conv", "h")]
    else:
        n, nh = draw(st.integers(2, 16)), draw(st.integers(1, 10))
        shape = (n,)
        front = [Affine(f"a{j}", _weights(rng, (nh, n), sign(), amp) * step) for j in range(draw(st.integers(1, 2)))]
        edges = [e for op in front for e in (("x", op.name), (op.name, "h"))]
    theta = float(draw(st.sampled_from(thresholds))) * step
    h = IF("h", threshold=theta, bias=float(draw(st.integers(-2, 2))) * step)
    h_size = int(np.prod(Graph([Input("x", shape), *front, h], edges).shape("h")))
    n_out = draw(st.integers(1, 6))
    out = Readout("o") if draw(st.booleans()) else IF("o", threshold=float(draw(st.sampled_from(thresholds))) * step)
    nodes = [Input("x", shape), *front, h, Flatten("fh"), Affine("b", _weights(rng, (n_out, h_size), sign(), amp) * step),
             out, Output("out")]
    edges += [("h", "fh"), ("fh", "b"), ("b", "o"), ("o", "out")]
    if draw(st.booleans()):
        nodes += [Flatten("fx"), Affine("s", _weights(rng, (n_out, int(np.prod(shape))), sign(), amp) * step)]
        edges += [("x", "fx"), ("fx", "s"), ("s", "o")]
    return Graph(nodes, edges), shape, draw(st.integers(4, 24)), draw(st.sampled_from([0.1, 0.3, 0.7, 1.0])), \
        draw(st.integers(0, 1000))


def assert_same(got, want, upto: int | None = None, qnet=None) -> None:
    """Spikes and read-out potentials equal for the first `upto` ticks; `qnet`: `want` ran on its quantised Graph,
    whose potentials are in integer units of each layer's scale."""
    for name in want.spikes:
        np.testing.assert_array_equal(got.spikes[name][:, :upto], want.spikes[name][:, :upto], err_msg=f"spikes of {name}")
    for name in want.potentials:
        scale = 1.0 if qnet is None else qnet.qlayer(name).scale
        np.testing.assert_array_equal(got.potentials[name][:, :upto], want.potentials[name][:, :upto] * scale,
                                      err_msg=f"potential of {name}")


def compile_or_refuse(g: Graph, ticks: int):
    """The compiled program, or None where the chip cannot hold the graph: then only a neurocomp error."""
    try:
        return compile_graph(g, LOIHI, CompileOptions(timesteps=ticks, **FAST))
    except UserError as err:
        event(f"refused: {type(err).__name__}")
        return None


def check_against_source(case, run=emulator.run, batch: int = 2) -> None:
    """Exact report: equal to the float Graph. Otherwise, if no layer's range ends within the run: equal to the
    quantised Graph (which carries the rounded weights, not the registers' limits)."""
    g, shape, ticks, rate, seed = case
    c = compile_or_refuse(g, ticks)
    if c is None:
        return
    x = {"x": random_spikes(shape, batch, ticks, rate, seed)}
    got = run(c.program, LOIHI, x)
    if all(row["exact"] for row in c.report["layers"]):
        event("exact")
        assert_same(got, reference.run(lower(g), x))
    elif all(q.exact_ticks >= ticks for q in c.qnet.layers):
        event("approximate weights")
        assert_same(got, reference.run(c.qnet.network, x), qnet=c.qnet)
    else:
        event("range ends within the run")


@QUICK
@given(source_graphs())
def test_emulator_equals_the_source_on_random_graphs(case) -> None:
    check_against_source(case)


@pytest.mark.slow
@MANY
@given(source_graphs())
def test_emulator_equals_the_source_on_many_random_graphs(case) -> None:
    check_against_source(case)


@pytest.mark.lava
@needs_lava
@settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(source_graphs())
def test_lava_equals_the_source_on_random_graphs(case) -> None:
    check_against_source(case, lava.run, batch=1)


@QUICK
@given(source_graphs(thresholds=(0, -1, 1, 100_000, 10 ** 7)), st.sampled_from([7, 60, 255]))
def test_unrepresentable_graphs_are_refused_or_reported(case, amp: int) -> None:
    """Non-positive and huge thresholds, wide weights: a neurocomp error, or a program that is what its report
    says (compile_or_refuse lets only UserError through)."""
    g, shape, ticks, rate, seed = case
    wide = Graph(tuple(_scaled(node, amp) for node in g.nodes), g.edges)
    check_against_source((wide, shape, ticks, rate, seed))


def _scaled(node, amp: int):
    """Weights times amp / 7 rounded: 255 mixed odd weights have no exact 8-bit mixed mantissa."""
    if isinstance(node, (Affine, Conv2d)):
        return dataclasses.replace(node, weight=np.rint(np.asarray(node.weight) * amp / 7))
    return node


@st.composite
def accumulators(draw) -> tuple[Graph, int]:
    """A read-out fed by n inputs all firing every tick, weights of one sign and up to 255: it passes its range
    within the run."""
    n, amp = draw(st.integers(1, 600)), draw(st.sampled_from([1, 17, 200, 255]))
    sign = 1.0 if draw(st.booleans()) else -1.0
    w = np.random.default_rng(draw(st.integers(0, 1000))).integers(0, amp + 1, size=(2, n)) * sign
    g = Graph([Input("x", (n,)), Affine("a", w.astype(float)), Readout("o", bias=float(draw(st.integers(-3, 3)))), Output("out")],
              [("x", "a"), ("a", "o"), ("o", "out")])
    return g, draw(st.integers(4, 400))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(accumulators())
def test_long_runs_are_exact_up_to_the_reported_range(case) -> None:
    """Every input firing every tick is the worst case the range bound assumes: up to the bound the chip equals the
    source, and the report calls the layer exact exactly when the bound covers the inference."""
    g, ticks = case
    c = compile_or_refuse(g, ticks)
    if c is None:
        return
    x = {"x": np.ones((1, ticks) + g.inputs[0].shape, dtype=np.uint8)}
    q, row = c.qnet.layers[0], c.report["layers"][0]
    assert row["exact"] == (q.exact and q.exact_ticks >= ticks + c.report["latency_ticks"])
    good = int(min(q.exact_ticks, ticks))
    assert_same(emulator.run(c.program, LOIHI, x), reference.run(c.qnet.network, x), good, c.qnet)
    if q.exact:
        assert_same(emulator.run(c.program, LOIHI, x), reference.run(lower(g), x), good)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.floats(0.99, 0.99999), st.sampled_from([1.0, 0.999, 0.9]), st.integers(1, 64), st.sampled_from([1, 100, 255]))
def test_currents_near_one_never_wrap(decay_u: float, decay: float, n: int, amp: int) -> None:
    """A current decaying by 1/4096 per tick sums up to 4096 ticks of input: the quantiser widens the step so it
    cannot wrap, so with every excitatory input firing the read-out only ever rises, and follows its quantised
    Graph to within Lava's truncating decays."""
    g = Graph([Input("x", (n,)), Affine("a", np.full((1, n), float(amp))), Readout("o", decay=decay, decay_u=decay_u),
               Output("out")], [("x", "a"), ("a", "o"), ("o", "out")])
    c = compile_or_refuse(g, 300)
    if c is None:
        return
    x = {"x": np.ones((1, 300, n), dtype=np.uint8)}
    q = c.qnet.layers[0]
    got = emulator.run(c.program, LOIHI, x).potentials["o"][0, :, 0]
    want = reference.run(c.qnet.network, x).potentials["o"][0, :, 0] * q.scale
    upto = int(min(q.exact_ticks, 300))
    assert np.all(np.diff(got[:upto]) >= 0)
    np.testing.assert_allclose(got[:upto], want[:upto], rtol=0.02, atol=2 * q.scale)
