"""Loihi holds a bound kernel in two host-summed parts (targets/loihi/legalize.py): its 8-bit grid and the rest."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neurocomp.backends import emulator, reference
from neurocomp.bind import bind
from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.ir import sums
from neurocomp.ir.graph import Correlation, Graph, Input, Output, Readout
from neurocomp.ir.layers import lower
from neurocomp.target import load_target
from lavalib import needs_lava
from netlib import random_spikes

TICKS = 8


def _score(kernel: np.ndarray, bias: float) -> Graph:
    return Graph([Input("x", (4, 9, 9), "spikes"), Correlation("corr", kernel[None]), Readout("score", bias=bias),
                  Output("o")], [("x", "corr"), ("corr", "score"), ("score", "o")])


def _kernel(seed: int) -> np.ndarray:
    """An exemplar-like kernel: both signs, on a 1/64 grid over +-70 (13 bits; Loihi's weights have 8)."""
    return np.random.default_rng(seed).integers(-70 * 64, 70 * 64, size=(4, 3, 3)) / 64.0


def _with(g: Graph, kernel: np.ndarray) -> Graph:
    return Graph(tuple(dataclasses.replace(n, weight=kernel[None]) if isinstance(n, Correlation) else n
                       for n in g.nodes), g.edges)


def _error(g: Graph, program, x: np.ndarray) -> float:
    target = load_target("loihi")
    ref = reference.run(lower(g), {"x": x}, ticks=TICKS).potentials["score"]
    return float(np.abs(emulator.run(program, target, {"x": x}, ticks=TICKS).potentials["score"] - ref).max())


def test_a_bound_kernel_is_held_to_far_below_one_weight_step() -> None:
    """One 8-bit part rounds each weight by up to step / 2 (step = peak / 127 ~ 0.55 here). The fine part holds
    what is left (at most step / 2) on a grid of (step / 2) / 127, so each weight and the bias is off by at most
    half of that: the potential by at most ticks * (36 inputs + the bias) * fine_step / 2 ~ 0.32 unit, where one
    part alone is off by several units."""
    target = load_target("loihi")
    g = _score(_kernel(0), bias=3.3)
    c = compile_graph(g, target, CompileOptions())
    assert c.report["host_summed_readouts"] == {"score": ["score.coarse", "score.fine"]}
    x = random_spikes((4, 9, 9), batch=2, ticks=TICKS, rate=0.5, seed=1)
    step = np.abs(_kernel(0)).max() / 127
    coarse = np.rint(_kernel(0) / step) * step
    one_part = float(np.abs(reference.run(lower(_with(g, coarse)), {"x": x}, ticks=TICKS).potentials["score"]
                            - reference.run(lower(g), {"x": x}, ticks=TICKS).potentials["score"]).max())
    error = _error(g, c.program, x)
    assert error <= TICKS * 37 * (step / 2 / 127) / 2 and one_part > 20 * error


def test_binding_a_new_kernel_keeps_the_cores_and_the_precision() -> None:
    target = load_target("loihi")
    g = _score(_kernel(0), bias=0.0)
    c = compile_graph(g, target, CompileOptions())
    g1 = _with(g, _kernel(1))
    out = bind(c.program, g1, target)
    assert out.program.netlist.n_cores == c.program.netlist.n_cores and set(out.layers) == {"score.coarse", "score.fine"}
    x = random_spikes((4, 9, 9), batch=1, ticks=TICKS, rate=0.5, seed=2)
    step = np.abs(_kernel(1)).max() / 127
    assert _error(g1, out.program, x) <= TICKS * 37 * (step / 2 / 127) / 2


def test_coarse_part_is_on_the_grid_and_an_exact_kernel_leaves_the_fine_part_zero() -> None:
    target = load_target("loihi")
    net = target.hooks.legalize(lower(_score(_kernel(3), 0.0)), target.spec)
    assert sums.decode(net.graph.metadata) == {"score": ("score.coarse", "score.fine")}
    w = {layer.name: layer.projections[0].chain[0].weight for layer in net.layers}
    units = w["score.coarse"] / (np.abs(_kernel(3)).max() / 127)
    assert np.allclose(units, np.rint(units)) and np.abs(units).max() == 127
    np.testing.assert_allclose(w["score.coarse"] + w["score.fine"], _kernel(3)[None], rtol=0, atol=1e-12)
    exact = target.hooks.legalize(lower(_score(np.arange(-18.0, 18.0).reshape(4, 3, 3), 0.0)), target.spec)
    assert not np.any([layer.projections[0].chain[0].weight for layer in exact.layers if layer.name == "score.fine"])


def test_the_coarse_mode_keeps_one_part_and_its_rounding() -> None:
    """`--loihi-weights coarse`: one 8-bit part (half the read-out's cores here), off by up to step / 2 per weight."""
    target = load_target("loihi")
    g = _score(_kernel(0), bias=0.0)
    fine, coarse = (compile_graph(g, target, CompileOptions(weights=w)) for w in ("levels", "coarse"))
    assert coarse.report["host_summed_readouts"] == {}
    assert coarse.program.netlist.n_cores == fine.program.netlist.n_cores - 1
    x = random_spikes((4, 9, 9), batch=2, ticks=TICKS, rate=0.5, seed=1)
    assert _error(g, coarse.program, x) > 20 * _error(g, fine.program, x)


@pytest.mark.lava
@needs_lava
def test_the_two_parts_run_on_lava_like_the_emulator() -> None:
    """The fine part is a plain read-out of its own scale: Lava's fixed-point Dense gives the emulator's integers."""
    from neurocomp.backends import lava

    target = load_target("loihi")
    program = compile_graph(_score(_kernel(5), bias=1.7), target, CompileOptions()).program
    x = random_spikes((4, 9, 9), batch=1, ticks=TICKS, rate=0.5, seed=6)
    emu, got = emulator.run(program, target, {"x": x}, ticks=TICKS), lava.run(program, target, {"x": x}, TICKS)
    assert np.abs(emu.potentials["score.fine"]).max() > 0
    for key in ("score", "score.coarse", "score.fine"):
        np.testing.assert_array_equal(got.potentials[key], emu.potentials[key])
