"""The Correlation node through the pipeline, run-time binding, and two-status coding."""
import dataclasses

import numpy as np
import pytest

from neurocomp.backends import emulator, reference
from neurocomp.bind import bind, bound_layers
from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.errors import GraphError
from neurocomp.ir.graph import IF, Affine, Conv2d, Correlation, Crop, Graph, Input, Output, Readout
from neurocomp.ir.layers import lower
from neurocomp.ir.twostatus import two_status
from neurocomp.target import load_target
from lavalib import needs_lava
from netlib import random_spikes

TARGETS = ["truenorth", "loihi", "loihi2"]


def siamese(kernel: np.ndarray, seed: int = 0) -> Graph:
    """Integer mini-SiamFC: conv -> IF -> (crop -> embedding read-out, correlation -> score read-out)."""
    rng = np.random.default_rng(seed)
    w = rng.choice([-1.0, 1.0, 2.0], size=(2, 2, 3, 3))
    nodes = [Input("x", (2, 9, 9)), Conv2d("conv", w), IF("n1", threshold=2.0),
             Conv2d("emb.conv", np.ones((2, 2, 1, 1))), Crop("crop", 0, 0, 3, 3), Readout("embedding"),
             Correlation("corr", kernel[None]), Readout("score"), Output("o1"), Output("o2")]
    edges = [("x", "conv"), ("conv", "n1"), ("n1", "emb.conv"), ("emb.conv", "crop"), ("crop", "embedding"),
             ("n1", "corr"), ("corr", "score"), ("embedding", "o1"), ("score", "o2")]
    return Graph(nodes, edges)


def _bound(g: Graph, kernel: np.ndarray) -> Graph:
    return Graph(tuple(dataclasses.replace(n, weight=kernel[None]) if isinstance(n, Correlation) else n
                       for n in g.nodes), g.edges)


def test_correlation_and_crop_shapes_and_errors():
    g = siamese(np.ones((2, 3, 3)))
    assert g.shape("score") == (1, 5, 5) and g.shape("embedding") == (2, 3, 3)
    with pytest.raises(GraphError, match="one output channel"):
        Correlation("c", np.ones((2, 2, 3, 3)))
    with pytest.raises(GraphError, match="does not fit"):
        Graph([Input("x", (1, 4, 4)), Crop("c", 2, 0, 3, 3), Readout("r")], [("x", "c"), ("c", "r")])


@pytest.mark.parametrize("name", TARGETS)
def test_correlation_emulator_equals_reference_and_binding_rewrites_only_its_cores(name):
    target = load_target(name)
    rng = np.random.default_rng(1)
    k0 = rng.choice([-2.0, -1.0, 1.0, 2.0], size=(2, 3, 3))
    g = siamese(k0)
    compiled = compile_graph(g, target, CompileOptions())
    x = random_spikes((2, 9, 9), batch=2, ticks=12, rate=0.4, seed=3)
    ref = reference.run(lower(g), {"x": x})
    emu = emulator.run(compiled.program, target, {"x": x})
    assert np.abs(ref.potentials["score"]).max() > 5
    np.testing.assert_array_equal(emu.potentials["score"], ref.potentials["score"])
    np.testing.assert_array_equal(emu.potentials["embedding"], ref.potentials["embedding"])

    k1 = -np.roll(k0, 1, axis=2)
    g1 = _bound(g, k1)
    out = bind(compiled.program, g1, target)
    assert bound_layers(g1) == ("score",)
    assert out.layers and all(l == "score" or l.startswith("score.") for l in out.layers)
    assert set(out.changed_cores) <= set(np.flatnonzero(np.isin(out.program.netlist.core_layer,
                                                                 [i for i, lm in enumerate(out.program.netlist.layers)
                                                                  if lm.name in out.layers])))
    emu1 = emulator.run(out.program, target, {"x": x})
    ref1 = reference.run(lower(g1), {"x": x})
    np.testing.assert_array_equal(emu1.potentials["score"], ref1.potentials["score"])
    np.testing.assert_array_equal(emu1.potentials["embedding"], emu.potentials["embedding"])
    assert not np.array_equal(emu1.potentials["score"], emu.potentials["score"])


def test_binding_keeps_the_programs_weight_mode():
    """Compiled with --tn-weights bits (kernels of 6 distinct values: bit planes, not 4 levels), a bound
    kernel is quantised the same way: the bound program scores exactly like a fresh compile of that kernel."""
    target = load_target("truenorth")
    rng = np.random.default_rng(2)
    k0, k1 = (rng.choice([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0], size=(2, 3, 3)) for _ in range(2))
    opts = CompileOptions(weights="bits")
    g1 = _bound(siamese(k0), k1)
    bound = bind(compile_graph(siamese(k0), target, opts).program, g1, target).program
    fresh = compile_graph(g1, target, opts).program
    x = random_spikes((2, 9, 9), batch=2, ticks=12, rate=0.4, seed=3)
    emu, want = emulator.run(bound, target, {"x": x}), emulator.run(fresh, target, {"x": x})
    assert np.abs(want.potentials["score"]).max() > 5
    np.testing.assert_array_equal(emu.potentials["score"], want.potentials["score"])


def test_binding_refuses_a_kernel_of_another_shape():
    target = load_target("loihi")
    g = siamese(np.ones((2, 3, 3)))
    compiled = compile_graph(g, target, CompileOptions())
    from neurocomp.errors import UserError
    with pytest.raises(UserError, match="recompile"):
        bind(compiled.program, _bound(g, np.ones((2, 2, 2))), target)


def _gated(tau0: int, weights=(0.25, 0.5, 1.0), reset: str = "subtract", pairs: int = 1) -> Graph:
    nodes = [Input("x", (1,)), Affine("fc", np.array(weights)[:, None]), IF("out", threshold=1.0, reset=reset),
             Output("o")]
    return two_status(Graph(nodes, [("x", "fc"), ("fc", "out"), ("out", "o")]), "out", tau0, kick=50.0, pairs=pairs)


def test_two_status_spike_timing_by_hand():
    # input spikes every tick; the layer sees them from tick 1 on (one-tick edge latency).
    x = np.ones((1, 12, 1), dtype=np.uint8)
    spikes = reference.run(lower(_gated(5)), {"x": x}).spikes["out"][0]
    assert spikes[:5].sum() == 0, "status 1 integrates only"
    # Charge w per tick arrives from tick 1 on; the +B kick lands at tick 5, releasing 5w:
    # w=1: v=5 -> fires every tick; w=0.5: 2.5, 1.5+.5, 1+.5, .5+.5 fire, 0+.5 no, 1 fires, .5 no;
    # w=0.25: 1.25 fires (0.25 left), then +0.25 per tick reaches 1 at tick 8.
    np.testing.assert_array_equal(spikes[5:, 2], np.ones(7))
    np.testing.assert_array_equal(spikes[5:, 1], [1, 1, 1, 1, 0, 1, 0])
    np.testing.assert_array_equal(np.flatnonzero(spikes[:, 0]), [5, 8])
    plain = reference.run(lower(_gated(0)), {"x": x}).spikes["out"][0]
    assert plain[:5].sum() > 0 and plain[:, 0].sum() == spikes[:, 0].sum()


@pytest.mark.parametrize("name,reset", [("truenorth", "subtract"), ("loihi2", "zero")])
def test_two_status_runs_on_chip_like_the_reference(name, reset):
    target = load_target(name)
    g = _gated(4, weights=(1.0, 2.0, 3.0), reset=reset, pairs=2)
    x = random_spikes((1,), batch=2, ticks=16, rate=0.6, seed=2)
    ref = reference.run(lower(g), {"x": x})
    emu = emulator.run(compile_graph(g, target, CompileOptions()).program, target, {"x": x})
    assert ref.spikes["out"][:, :4].sum() == 0 and ref.spikes["out"].sum() > 10
    np.testing.assert_array_equal(emu.spikes["out"], ref.spikes["out"])


@pytest.mark.lava
@needs_lava
@pytest.mark.parametrize("name", ["loihi", "truenorth"])
def test_bound_program_runs_on_lava_like_the_emulator(name):
    """The rewritten tables are a plain program: Lava's fixed-point processes give the emulator's numbers."""
    from neurocomp.backends import lava

    target = load_target(name)
    k0 = np.random.default_rng(2).choice([-2.0, -1.0, 1.0, 2.0], size=(2, 3, 3))
    g = siamese(k0)
    bound = bind(compile_graph(g, target, CompileOptions()).program, _bound(g, -k0[:, ::-1]), target).program
    x = random_spikes((2, 9, 9), batch=1, ticks=10, rate=0.4, seed=4)
    emu, got = emulator.run(bound, target, {"x": x}), lava.run(bound, target, {"x": x})
    for key in ("score", "embedding"):
        np.testing.assert_array_equal(got.potentials[key], emu.potentials[key])
    np.testing.assert_array_equal(got.spikes["n1"], emu.spikes["n1"])
