"""Binding an exemplar never fails: any kernel of the compiled shape fits the cores planned for it.

The cores of a bound layer are planned from the kernel's shape (its structural reach through the
folded chain and fan-in splits), never from its values, so zero, tiny, huge, sparse or dense kernels,
and the compiled placeholder itself, bind into the same structure and score exactly like a fresh
compile of the graph with that kernel.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, strategies as st
import torch
import torch.nn.functional as F

from neurocomp.backends import emulator
from neurocomp.bind import bind
from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.ir.fold import fold_linear
from neurocomp.ir.graph import IF, Conv2d, Correlation, Crop, Flatten, Graph, Input, Output, Readout, SumPool2d
from neurocomp.ir.layers import lower
from neurocomp.ir.netlist import spans
from neurocomp.ir.twostatus import two_status
from neurocomp.models.siamsnn import GATES, SCORE, SCORE_SPIKES, with_kernel
from neurocomp.partition.rows import support
from neurocomp.program import Program
from neurocomp.target import load_target
from netlib import random_spikes

TARGETS = ["truenorth", "loihi"]
TICKS, TAU0 = 10, 2
FAST = CompileOptions(place_effort=1, place_anneal=0, congestion=0.0)   # placement does not change the outputs
SHAPE = (3, 3, 3)   # the exemplar kernel (C, e, e)


def siamsnn_like(reset: str) -> Graph:
    """A SiamSNN in miniature: conv -> IF, then the embedding window, the hybrid score read-out and the
    two-status spiking score, each through its own copy of conv5 (with a bias) folded into the
    correlation. One conv5 input channel is 1e-4 times the others: at the placeholder's scale its
    folded weights round to 0. Its fan-in (4 x 5 x 5) splits the score layers on TrueNorth."""
    rng = np.random.default_rng(0)
    w5 = rng.normal(size=(3, 4, 3, 3))
    w5[:, 3] *= 1e-4
    b5 = rng.normal(size=3) * 0.1
    corr = lambda name: Correlation(name, np.ones((1,) + SHAPE))  # noqa: E731
    nodes = [Input("x", (2, 9, 9)), Conv2d("conv1", rng.normal(size=(4, 2, 3, 3))),
             IF("n1", threshold=1.0, reset=reset), Conv2d("emb", w5, b5), Crop("crop", 0, 0, 3, 3), Readout("embedding"),
             Conv2d("conv5.score", w5, b5), corr("corr.score"), Readout(SCORE),
             Conv2d("conv5.spikes", w5, b5), corr("corr.spikes"), Flatten("flat"),
             IF(SCORE_SPIKES, threshold=1.0, reset=reset), Output("o1"), Output("o2"), Output("o3")]
    edges = [("x", "conv1"), ("conv1", "n1"), ("n1", "emb"), ("emb", "crop"), ("crop", "embedding"),
             ("embedding", "o1"),
             ("n1", "conv5.score"), ("conv5.score", "corr.score"), ("corr.score", SCORE), (SCORE, "o2"),
             ("n1", "conv5.spikes"), ("conv5.spikes", "corr.spikes"), ("corr.spikes", "flat"), ("flat", SCORE_SPIKES),
             (SCORE_SPIKES, "o3")]
    return two_status(Graph(nodes, edges), SCORE_SPIKES, TAU0, kick=16.0, pairs=4)


def kernels() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    sparse = rng.normal(size=SHAPE) * (rng.random(SHAPE) < 0.2)
    sparse[0, 0, 0] = 1.0
    return {"ones": np.ones(SHAPE), "random": rng.normal(size=SHAPE), "sparse": sparse, "zeros": np.zeros(SHAPE),
            "tiny": np.full(SHAPE, 1e-6), "huge": np.full(SHAPE, 1e6),
            "nonzero": rng.choice([-3.0, -1.0, 0.5, 2.0], size=SHAPE)}


@pytest.fixture(scope="module", params=TARGETS)
def compiled(request) -> tuple[str, Graph, Program]:
    """The graph compiled with its placeholder kernel (ones, not yet scaled as with_kernel scales it)."""
    g = siamsnn_like("subtract" if request.param == "truenorth" else "zero")
    return request.param, g, compile_graph(g, load_target(request.param), FAST).program


def _structure(p: Program) -> tuple[list[int], list[int], list[tuple[str, int]]]:
    n = p.netlist
    return np.diff(n.axon_ptr).tolist(), np.diff(n.neuron_ptr).tolist(), [(lm.name, len(lm.cores)) for lm in n.layers]


def _run(p: Program, name: str) -> emulator.RunResult:
    x = random_spikes((2, 9, 9), batch=2, ticks=TICKS, rate=0.4, seed=3)
    return emulator.run(p, load_target(name), {"x": x})


@pytest.mark.parametrize("label", list(kernels()))
def test_any_kernel_binds_into_the_same_cores_and_scores_like_a_fresh_compile(compiled, label):
    name, g, program = compiled
    target = load_target(name)
    bound_graph = with_kernel(g, kernels()[label], TICKS, TAU0)
    bound = bind(program, bound_graph, target, also=(GATES,)).program
    assert _structure(bound) == _structure(program)
    fresh = compile_graph(bound_graph, target, FAST).program
    got, want = _run(bound, name), _run(fresh, name)
    np.testing.assert_array_equal(got.potentials[SCORE], want.potentials[SCORE])
    np.testing.assert_array_equal(got.spikes[SCORE_SPIKES], want.spikes[SCORE_SPIKES])
    np.testing.assert_array_equal(got.potentials["embedding"], _run(program, name).potentials["embedding"])
    if label in ("zeros",):
        assert np.all(got.potentials[SCORE] == 0)
    elif label not in ("tiny",):   # 1e-6 folds to scores of ~1e-3, quantised at their own scale
        assert np.abs(got.potentials[SCORE]).max() > 1


@pytest.mark.parametrize("label", ["random", "zeros", "huge", "nonzero"])
def test_a_bound_programs_plan_rebuilt_from_the_programs_runs_as_a_fresh_plan(compiled, label):
    """emulator.prepare(bound, base=, changed=) keeps the unbound program's blocks for the cores the binding left
    alone: every spike, potential and counter equals a plan built from scratch, and only blocks that read the
    changed cores were composed again."""
    name, g, program = compiled
    target = load_target(name)
    base = emulator.prepare(program, target)
    bound = bind(program, with_kernel(g, kernels()[label], TICKS, TAU0), target, also=(GATES,))
    fresh = emulator.prepare(bound.program, target)
    kept = emulator.prepare(bound.program, target, base=base, changed=bound.changed_cores)
    reused = sum(any(b is c for c in base.plan.blocks) for b in kept.plan.blocks)
    assert 0 < reused < len(base.plan.blocks)
    x = random_spikes((2, 9, 9), batch=2, ticks=TICKS, rate=0.4, seed=3)
    got, want = emulator.run(kept, target, {"x": x}), emulator.run(fresh, target, {"x": x})
    for field in ("spikes", "potentials", "core_counts"):
        for key, value in getattr(want, field).items():
            np.testing.assert_array_equal(getattr(got, field)[key], value, err_msg=f"{field} {key}")


@pytest.mark.parametrize("mode", ["levels", "trinary"])
def test_every_truenorth_weight_mode_binds_every_kernel(mode):
    """The default (bits) is above; levels and trinary plan bound layers on all 4 axon types too
    (trinary did not compile a bound layer before: its parts were planned for 2 types)."""
    target = load_target("truenorth")
    g = siamsnn_like("subtract")
    opts = dataclasses.replace(FAST, weights=mode)
    program = compile_graph(g, target, opts).program
    for label, kernel in kernels().items():
        bound = bind(program, with_kernel(g, kernel, TICKS, TAU0), target, also=(GATES,)).program
        assert _structure(bound) == _structure(program), label
    random_graph = with_kernel(g, kernels()["random"], TICKS, TAU0)
    got = _run(bind(program, random_graph, target, also=(GATES,)).program, "truenorth")
    want = _run(compile_graph(random_graph, target, opts).program, "truenorth")
    np.testing.assert_array_equal(got.potentials[SCORE], want.potentials[SCORE])
    np.testing.assert_array_equal(got.spikes[SCORE_SPIKES], want.spikes[SCORE_SPIKES])


def test_the_compiled_placeholder_binds_as_it_is(compiled):
    """Binding the very graph the program was compiled from changes no core."""
    name, g, program = compiled
    out = bind(program, g, load_target(name), also=(GATES,))
    assert out.changed_cores.size == 0 and _structure(out.program) == _structure(program)


def test_a_binding_rebuilds_only_the_layers_it_reads(compiled):
    """The hybrid score alone: score_spikes (and its gates and partial layers) keep their tables."""
    name, g, program = compiled
    target = load_target(name)
    bound_graph = with_kernel(g, kernels()["random"], TICKS, TAU0)
    hybrid = bind(program, bound_graph, target, read=(SCORE,))
    assert hybrid.layers and all(lm == SCORE or lm.startswith(SCORE + ".") for lm in hybrid.layers)
    spiking = bind(program, bound_graph, target, also=(GATES,), read=(SCORE_SPIKES,))
    assert spiking.layers and all(lm.startswith(SCORE_SPIKES) for lm in spiking.layers)
    both = bind(program, bound_graph, target, also=(GATES,))
    assert bind(program, bound_graph, target, read=("embedding",)).changed_cores.size == 0
    assert set(both.changed_cores) == set(hybrid.changed_cores) | set(spiking.changed_cores)
    got, old, want = _run(hybrid.program, name), _run(program, name), _run(both.program, name)
    np.testing.assert_array_equal(got.potentials[SCORE], want.potentials[SCORE])
    np.testing.assert_array_equal(got.spikes[SCORE_SPIKES], old.spikes[SCORE_SPIKES])


def test_chip_tracker_binds_only_the_score_it_reads():
    """ChipSiamese (models/chip_tracker.py) rewrites the hybrid score's cores or the two-status ones,
    whichever ChipOptions.score reads; the other score keeps the placeholder's tables."""
    from neurocomp.models.chip_tracker import ChipOptions, ChipSiamese

    name = "loihi"
    target = load_target(name)
    g = siamsnn_like("zero")
    program = compile_graph(g, target, FAST).program
    kernel = kernels()["random"]
    old = _run(program, name)
    want = _run(bind(program, with_kernel(g, kernel, TICKS, TAU0), target, also=(GATES,)).program, name)
    for score, read, kept in (("potential", SCORE, SCORE_SPIKES), ("spikes", SCORE_SPIKES, SCORE)):
        chip = ChipSiamese(g, program, target, ChipOptions(timesteps=TICKS, tau0=TAU0, score=score))
        got = _run(chip.bind(kernel).program, name)
        np.testing.assert_array_equal(_score(got, read), _score(want, read))
        np.testing.assert_array_equal(_score(got, kept), _score(old, kept))
        assert not np.array_equal(_score(got, read), _score(old, read))


def _score(result: emulator.RunResult, layer: str) -> np.ndarray:
    return result.potentials[layer] if layer == SCORE else result.spikes[layer]


# --- the structural support itself ----------------------------------------------------------------

def _folded_correlation(first: Conv2d | SumPool2d, shape: tuple[int, ...], kernel: np.ndarray) -> Correlation:
    g = Graph([Input("x", shape), first, Correlation("corr", kernel), Readout("r"), Output("o")],
              [("x", first.name), (first.name, "corr"), ("corr", "r"), ("r", "o")])
    return next(n for n in fold_linear(g).nodes if isinstance(n, Correlation))


@pytest.mark.parametrize("first,shape", [
    (Conv2d("c", np.ones((4, 1, 1, 1)), stride=2, groups=2), (2, 12, 12)),   # taps spread by the stride: holes
    (Conv2d("c", np.ones((4, 2, 2, 2)), stride=3, groups=2), (4, 14, 14)),   # grouped, 2 x 2 taps, stride 3
    (SumPool2d("c", 2), (2, 8, 8)),                                        # a pool spreads the kernel
])
def test_a_folded_correlation_reaches_exactly_where_a_positive_kernel_composes(first, shape):
    """reach equals the non-zeros of the fold with strictly positive weights (nothing can cancel),
    and is independent of the kernel the graph carries (here all zeros)."""
    c_in = shape[0] if isinstance(first, SumPool2d) else first.weight.shape[0]
    zero = _folded_correlation(first, shape, np.zeros((1, c_in, 2, 2)))
    positive = first if isinstance(first, SumPool2d) else \
        dataclasses.replace(first, weight=np.arange(1.0, first.weight.size + 1).reshape(first.weight.shape))
    dense = _folded_correlation(positive, shape, np.arange(1.0, 4 * c_in + 1).reshape(1, c_in, 2, 2))
    assert zero.reach is not None and zero.reach.shape == zero.weight.shape
    np.testing.assert_array_equal(zero.reach, dense.weight > 0)
    assert 0 < zero.reach.sum() <= zero.reach.size
    if not isinstance(first, SumPool2d) and first.stride[0] > first.weight.shape[-1]:
        assert zero.reach.sum() < zero.reach.size


def test_support_of_a_bound_layer_ignores_the_kernel_values():
    """A Correlation's support is its whole reach whatever the kernel (all zeros, one non-zero channel)."""
    def proj(kernel: np.ndarray):
        g = Graph([Input("x", (2, 5, 5)), Correlation("corr", kernel), Readout("r"), Output("o")],
                  [("x", "corr"), ("corr", "r"), ("r", "o")])
        return lower(g).layers[0].projections[0]
    rows = np.arange(9)
    one_channel = np.zeros((1, 2, 3, 3))
    one_channel[0, 0, 1, 1] = 5.0
    full = support(proj(np.ones((1, 2, 3, 3))), rows)
    for k in (np.zeros((1, 2, 3, 3)), one_channel):
        s = support(proj(k), rows)
        assert s.nnz == full.nnz == 9 * 18
        np.testing.assert_array_equal(s.indices, full.indices)
    expected = F.conv2d(torch.ones(1, 2, 5, 5), torch.ones(1, 2, 3, 3)).numpy().ravel()
    np.testing.assert_array_equal(np.diff(full.indptr), expected)


@given(st.lists(st.integers(0, 5), min_size=1, max_size=12), st.data())
def test_spans_are_the_concatenated_ranges_of_the_ids(sizes: list[int], data) -> None:
    """bind splices cores by their neuron and axon ranges, taken for all cores at once."""
    ptr = np.concatenate([[0], np.cumsum(sizes)])
    ids = data.draw(st.lists(st.integers(0, len(sizes) - 1), max_size=8))
    expected = [i for c in ids for i in range(ptr[c], ptr[c + 1])]
    assert spans(ptr, np.array(ids, dtype=np.int64)).tolist() == expected
