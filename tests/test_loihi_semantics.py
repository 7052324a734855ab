"""Loihi programs mean what the source means (issue 16 §4): each case a differential check found, where the
emulator and Lava agreed with each other but not with the float Graph, now equals the Graph or is refused or
reported as inexact. Random graphs: tests/test_loihi_differential.py."""
from __future__ import annotations

import numpy as np
import pytest

from neurocomp.backends import emulator, lava, reference
from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.errors import QuantizeError
from neurocomp.ir.graph import IF, LIF, Affine, Conv2d, Graph, Input, Output, Readout, SumPool2d
from neurocomp.ir.layers import lower
from neurocomp.report.tables import layer_rows
from neurocomp.target import load_target
from lavalib import needs_lava
from netlib import random_spikes

LOIHI = load_target("loihi")
FAST = dict(place_effort=1, place_anneal=0, congestion=0.0)


def compiled(g: Graph, ticks: int = 32):
    return compile_graph(g, LOIHI, CompileOptions(timesteps=ticks, **FAST))


def two_into_one(a: np.ndarray, b: np.ndarray, neuron) -> Graph:
    """x -> a -> n and x -> b -> n: two parallel projections from one source into one layer."""
    n_in = a.shape[1]
    return Graph([Input("x", (n_in,)), Affine("a", a), Affine("b", b), neuron, Output("o")],
                 [("x", "a"), ("x", "b"), ("a", neuron.name), ("b", neuron.name), (neuron.name, "o")])


def assert_equals_source(g: Graph, x: np.ndarray, ticks: int | None = None):
    """Every spike and read-out potential of the emulator equals the float Graph's."""
    c = compiled(g, x.shape[1])
    emu, ref = emulator.run(c.program, LOIHI, {"x": x}, ticks), reference.run(lower(g), {"x": x}, ticks)
    for name in ref.spikes:
        np.testing.assert_array_equal(emu.spikes[name], ref.spikes[name], err_msg=name)
    for name in ref.potentials:
        np.testing.assert_array_equal(emu.potentials[name], ref.potentials[name], err_msg=name)
    return c, emu


def test_excitatory_and_inhibitory_projections_into_one_layer_keep_both():
    """Sign mode per op kept a, dropped b's negative weights (the core was 'excitatory'); now per layer: mixed."""
    g = two_into_one(np.full((3, 4), 2.0), np.full((3, 4), -1.0), IF("n", threshold=3.0))
    x = random_spikes((4,), batch=2, ticks=20, rate=0.5, seed=3)
    c, emu = assert_equals_source(g, x)
    assert c.report["layers"][0]["exact"] and emu.spikes["n"].sum() == 57
    assert c.program.netlist.syn_tables["sign_mode"].tolist() == [2]                      # mixed
    assert sorted(set(c.program.netlist.syn_tables["weight"].tolist())) == [-64, 128]     # 2 and -1 at 1/32, doubled


def test_readout_range_is_reported_and_exact_within_it():
    """50 inputs x 200 per tick: the read-out passes vth_max (131071 units) at tick 14 and Lava's LIF fires and
    restarts from 0. The report no longer says exact for a 32-tick inference; it names the 13 ticks that are."""
    g = Graph([Input("x", (50,)), Affine("a", np.full((2, 50), 200.0)), Readout("r"), Output("o")],
              [("x", "a"), ("a", "r"), ("r", "o")])
    c = compiled(g)
    row = c.report["layers"][0]
    assert row["exact"] is False and row["exact_ticks"] == 13 and row["limit"].startswith("the read-out potential may pass vth_max")
    assert layer_rows(c.report)[0][6] == "range 13 ticks"
    x = np.ones((1, 20, 50), dtype=np.uint8)
    emu, ref = emulator.run(c.program, LOIHI, {"x": x}), reference.run(lower(g), {"x": x})
    np.testing.assert_array_equal(emu.potentials["r"][:, :14], ref.potentials["r"][:, :14])   # input lags a tick
    assert emu.potentials["r"][0, 14, 0] != ref.potentials["r"][0, 14, 0] == 140_000
    profiled = compile_graph(g, LOIHI, CompileOptions(**FAST), profile={"x": np.ones((2, 32, 50), dtype=np.uint8)})
    assert profiled.report["layers"][0]["measured"]["max_abs_potential_error"] == 280_000     # 320,000 vs 40,000
    assert layer_rows(profiled.report)[0][6] == "range 13 ticks, measured |Δv| ≤ 280,000"


def test_overlapping_pool_before_a_padded_conv_is_sized_on_the_composed_weights():
    """A 3x3/1 pool cannot fold into the padded conv after it, so the quantiser sizes the conv by the pool's
    overlap (up to 9 taps per stored weight): integer weights stay exact, float ones fit (was 'Dense weight 512')."""
    rng = np.random.default_rng(0)
    w = rng.integers(-3, 4, size=(2, 1, 3, 3)).astype(float)
    g = Graph([Input("x", (1, 8, 8)), SumPool2d("p", 3, 1), Conv2d("c", w, padding=1), IF("n", threshold=4.0), Output("o")],
              [("x", "p"), ("p", "c"), ("c", "n"), ("n", "o")])
    x = random_spikes((1, 8, 8), batch=2, ticks=12, rate=0.3, seed=1)
    c, emu = assert_equals_source(g, x)
    assert c.report["layers"][0]["exact"] and 0 < emu.spikes["n"].mean() < 0.9
    floats = Graph([Input("x", (1, 8, 8)), SumPool2d("p", 3, 1), Conv2d("c", rng.normal(size=(2, 1, 3, 3)), padding=1),
                    IF("n", threshold=1.0), Output("o")], [("x", "p"), ("p", "c"), ("c", "n"), ("n", "o")])
    c = compiled(floats)
    assert np.abs(c.program.netlist.syn_tables["weight"]).max() <= 256 and c.report["layers"][0]["weight_snr_db"] > 30


@pytest.mark.lava
@needs_lava
def test_parallel_projections_run_in_lava_as_on_the_emulator():
    """One source into one layer twice: one axon per projection; Lava gets one Dense per axon copy."""
    g = two_into_one(np.full((3, 4), 2.0), np.array([[1.0, -1.0, 2.0, 0.0]] * 3), IF("n", threshold=3.0))
    x = random_spikes((4,), batch=1, ticks=10, rate=0.5, seed=3)
    c, emu = assert_equals_source(g, x)
    got = lava.run(c.program, LOIHI, {"x": x})
    np.testing.assert_array_equal(got.spikes["n"], emu.spikes["n"])
    assert emu.spikes["n"].sum() == 27


def test_current_near_one_decay_cannot_wrap_u():
    """decay_u 0.9995 multiplies one tick's input by up to 4096 in u: the quantiser widens the step until
    4 x 100 inputs cannot wrap u's 24 bits, so the chip follows its quantised Graph (it wrapped after 6 ticks)."""
    g = Graph([Input("x", (4,)), Affine("a", np.full((2, 4), 100.0)), LIF("n", threshold=3e3, decay_u=0.9995), Output("o")],
              [("x", "a"), ("a", "n"), ("n", "o")])
    c = compiled(g, 100)
    x = np.ones((1, 100, 4), dtype=np.uint8)
    emu, ref = emulator.run(c.program, LOIHI, {"x": x}), reference.run(c.qnet.network, {"x": x})
    assert c.qnet.layers[0].scale == 8.0 and emu.spikes["n"].sum() == 188
    np.testing.assert_array_equal(emu.spikes["n"], ref.spikes["n"])


@pytest.mark.parametrize("theta", [0.0, -1.0])
@pytest.mark.parametrize("per_neuron", [True, False])
def test_non_positive_threshold_is_refused(theta: float, per_neuron: bool):
    """The source fires at v >= theta <= 0 without input; Lava fires at v > vth << 6, vth >= 0 (was clamped to 1).
    A threshold per neuron names the first such neuron; one for the whole layer, neuron 0."""
    field = np.array([2.0, theta]) if per_neuron else theta
    g = Graph([Input("x", (4,)), Affine("a", np.ones((2, 4))), IF("n", threshold=field), Output("o")],
              [("x", "a"), ("a", "n"), ("n", "o")])
    with pytest.raises(QuantizeError, match=rf"^n: neuron {int(per_neuron)} has threshold {theta:g}; loihi fires only"):
        compiled(g)


def test_fan_in_that_can_wrap_u_in_one_tick_is_widened():
    """600 inputs x 240 = 144,000 units > 2**23 / 64 in one tick: the step doubles (240 -> 120, still exact)."""
    g = Graph([Input("x", (600,)), Affine("a", np.full((2, 600), 240.0)), IF("n", threshold=1e5), Output("o")],
              [("x", "a"), ("a", "n"), ("n", "o")])
    x = np.ones((1, 6, 600), dtype=np.uint8)
    c, emu = assert_equals_source(g, x)
    assert c.qnet.layers[0].scale == 2.0 and c.report["layers"][0]["exact"]
    assert emu.spikes["n"][0, :, 0].tolist() == [0, 1, 1, 1, 1, 1]


def test_float_mixed_and_excitatory_projections_are_sized_for_the_layers_sign_mode():
    """The mixed op and the excitatory one share the layer's mixed mode (weights doubled, 7 bits + sign), so both
    are quantised to 127 and fit (was 'netlist: Dense weight 384 exceeds the allowed 255')."""
    rng = np.random.default_rng(0)
    g = two_into_one(rng.normal(size=(3, 4)), np.abs(rng.normal(size=(3, 4))) * 3, IF("n", threshold=1.0))
    c = compiled(g)
    w = c.program.netlist.syn_tables["weight"]
    assert w.max() == 252 and w.min() >= -256
    x = random_spikes((4,), batch=2, ticks=20, rate=0.5, seed=3)
    emu, ref = emulator.run(c.program, LOIHI, {"x": x}), reference.run(c.qnet.network, {"x": x})
    np.testing.assert_array_equal(emu.spikes["n"], ref.spikes["n"])
    assert c.report["layers"][0]["weight_snr_db"] > 35 and not c.report["layers"][0]["exact"]
