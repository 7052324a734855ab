"""Placer: mesh sizing, baselines, cost, lower bound, invariants and measured gains."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from neurocomp.cli import main
from neurocomp.compiler import CompileOptions, compile_graph, mesh_for
from neurocomp.profile import profiled_traffic
from neurocomp.errors import ResourceError, TargetError, UserError, VerifyError
from neurocomp.frontend.ptfile import save_graph
from neurocomp.ir.graph import IF, Affine, Graph, Input, Output
from neurocomp.place import Mesh, Placement, cost, place, sequential, verify_placement
from neurocomp.place.anneal import Schedule, anneal
from neurocomp.place.assign import Search
from neurocomp.place.baselines import hilbert_slots
from neurocomp.place.bound import min_hops
from neurocomp.place.mesh import slots
from netlib import integer_cnn
from neurocomp.place.traffic import measured_rates, traffic_from_rates
from neurocomp.route import route
from neurocomp.target import load_target

TRUENORTH = dict(chip_cols=64, chip_rows=64, cores_per_router=1, max_chips=16, chips_x_max=4, interchip_weight=10.0)


def layered(n: int, layers: int, fanout: int, seed: int) -> sp.csr_array:
    """Chain-like layered traffic: each core sends to `fanout` random cores of the next layer (1..99 spikes)."""
    rng = np.random.default_rng(seed)
    bounds = np.linspace(0, n, layers + 1).astype(int)
    layer = np.searchsorted(bounds, np.arange(n), side="right") - 1
    src = np.repeat(np.flatnonzero(layer < layers - 1), fanout)
    lo, hi = bounds[layer[src] + 1], bounds[layer[src] + 2]
    dst = lo + (rng.random(len(src)) * (hi - lo)).astype(int)
    return sp.coo_array((rng.integers(1, 100, len(src)).astype(float), (src, dst)), shape=(n, n)).tocsr()


def walked_cost(dense: np.ndarray, p: Placement, mesh: Mesh) -> float:
    """Spike-hop cost by walking every XY path hop by hop: independent of the vectorised formula."""
    gx, gy = p.gx(mesh), p.gy(mesh)
    total = 0.0
    for i, j in zip(*np.nonzero(dense)):
        if i == j:
            continue
        hops, x, y = 0.0, int(gx[i]), int(gy[i])
        while x != gx[j]:
            nx = x + (1 if gx[j] > x else -1)
            hops += mesh.interchip_weight if nx // mesh.chip_cols != x // mesh.chip_cols else 1.0
            x = nx
        while y != gy[j]:
            ny = y + (1 if gy[j] > y else -1)
            hops += mesh.interchip_weight if ny // mesh.chip_rows != y // mesh.chip_rows else 1.0
            y = ny
        total += dense[i, j] * hops
    return total


def from_slots(mesh: Mesh, pos: list[int] | np.ndarray) -> Placement:
    geo = slots(mesh)
    pos = np.asarray(pos)
    return Placement(geo.chip[pos], geo.x[pos], geo.y[pos], geo.k[pos], "manual", 0.0, {}, None, 0.0)


# --- mesh -------------------------------------------------------------------------------------

def test_for_cores_picks_the_smallest_chip_grid() -> None:
    assert Mesh.for_cores(1, **TRUENORTH) == Mesh(64, 64, 1, 1, 1, 10.0)
    two = Mesh.for_cores(5000, **TRUENORTH)
    assert (two.chips_x, two.chips_y, two.n_slots) == (2, 1, 8192)
    six = Mesh.for_cores(5 * 4096 + 1, **TRUENORTH)
    assert (six.chips_x, six.chips_y) == (4, 2)


def test_for_cores_raises_when_too_many_chips_are_needed() -> None:
    with pytest.raises(ResourceError) as err:
        Mesh.for_cores(16 * 4096 + 1, **TRUENORTH)
    assert (err.value.where, err.value.resource, err.value.used, err.value.allowed) == ("network", "chips", 17, 16)


def test_mesh_rejects_bad_dimensions() -> None:
    with pytest.raises(TargetError, match="chip_cols"):
        Mesh(0, 4, 1, 1, 1, 1.0)
    with pytest.raises(TargetError, match="interchip_weight"):
        Mesh(4, 4, 1, 1, 1, -1.0)


def test_sequential_fills_routers_row_major_chip_by_chip() -> None:
    mesh = Mesh(8, 4, 4, 2, 1, 10.0)  # Loihi-like: 4 cores per router
    p = sequential(160, mesh)
    assert (p.chip[3], p.x[3], p.y[3], p.slot[3]) == (0, 0, 0, 3)
    assert (p.chip[5], p.x[5], p.y[5], p.slot[5]) == (0, 1, 0, 1)
    assert (p.chip[32], p.x[32], p.y[32], p.slot[32]) == (0, 0, 1, 0)
    assert (p.chip[128], p.x[128], p.gx(mesh)[128], p.gy(mesh)[128]) == (1, 0, 8, 0)
    np.testing.assert_array_equal(p.slot_index(mesh), np.arange(160))
    verify_placement(p, mesh)


def test_hilbert_order_steps_between_neighbouring_routers() -> None:
    mesh = Mesh(8, 8, 1, 2, 1, 10.0)
    order = hilbert_slots(mesh)
    np.testing.assert_array_equal(np.sort(order), np.arange(mesh.n_slots))
    geo = slots(mesh)
    steps = np.abs(np.diff(geo.gx[order])) + np.abs(np.diff(geo.gy[order]))
    assert (steps == 1).all()  # including the jump from chip 0 to chip 1
    loihi = Mesh(8, 4, 4, 3, 2, 10.0)
    np.testing.assert_array_equal(np.sort(hilbert_slots(loihi)), np.arange(loihi.n_slots))


# --- cost, verification, bound ----------------------------------------------------------------

def test_cost_by_hand_on_two_chips() -> None:
    mesh = Mesh(2, 2, 2, 2, 1, 10.0)
    # core 0 on chip 0 router (0, 0); core 1 on chip 1 router (1, 1) = global (3, 1); core 2 next to core 0
    p = from_slots(mesh, [0, 8 + 7, 1])
    t = sp.csr_array(np.array([[5.0, 1.5, 2.0], [0, 0, 0], [0, 0.5, 0]]))
    # 0 -> 1: 3 x-hops, one across the chip boundary (10), 1 y-hop: 13; 2 -> 1 the same; 0 -> 2: same router
    assert cost(t, p, mesh) == pytest.approx(1.5 * 13 + 0.5 * 13)


def test_verify_placement_names_the_core_and_rule() -> None:
    mesh = Mesh(4, 4, 1, 1, 1, 1.0)
    good = from_slots(mesh, [0, 5, 6, 9])
    verify_placement(good, mesh)
    bad_x = Placement(good.chip, np.array([0, 1, 9, 1]), good.y, good.slot, "manual", 0.0, {}, None, 0.0)
    with pytest.raises(VerifyError, match=r"core 2 has x=9, outside 0\.\.3 \(rule: every core in range\)"):
        verify_placement(bad_x, mesh)
    clash = from_slots(mesh, [5, 1, 2, 5])
    with pytest.raises(VerifyError, match=r"cores 0 and 3 both sit in chip 0, router \(1, 1\).*one core per slot"):
        verify_placement(clash, mesh)


def test_min_hops_counts_slots_ring_by_ring() -> None:
    np.testing.assert_array_equal(min_hops(np.arange(14), 1), [1] * 4 + [2] * 8 + [3] * 2)
    np.testing.assert_array_equal(min_hops(np.arange(21), 4), [0] * 3 + [1] * 16 + [2] * 2)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([(3, 2, 1, 1, 1), (2, 1, 2, 1, 2), (1, 1, 2, 3, 1)]),
       st.sampled_from([0.5, 1.0, 10.0]))
def test_bound_is_below_the_brute_force_optimum(seed: int, shape: tuple[int, ...], weight: float) -> None:
    mesh = Mesh(*shape, weight)
    rng = np.random.default_rng(seed)
    n = 5
    dense = rng.integers(0, 4, (n, n)) * (rng.random((n, n)) < 0.6).astype(float)
    p = place(sp.csr_array(dense), mesh, seed=seed % 7)
    geo = slots(mesh)
    perms = np.array(list(itertools.permutations(range(mesh.n_slots), n)))
    i, j = np.nonzero(dense * (1 - np.eye(n)))
    a, b = perms[:, i], perms[:, j]
    d = np.abs(geo.gx[a] - geo.gx[b]) + np.abs(geo.gy[a] - geo.gy[b])
    d = d + (weight - 1) * (np.abs(geo.gx[a] // mesh.chip_cols - geo.gx[b] // mesh.chip_cols)
                            + np.abs(geo.gy[a] // mesh.chip_rows - geo.gy[b] // mesh.chip_rows))
    optimum = (d * dense[i, j]).sum(axis=1).min()
    assert p.bound <= optimum + 1e-9
    assert optimum <= p.objective + 1e-9


# --- placer invariants ------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(st.integers(1, 10), st.integers(0, 2**32 - 1), st.integers(1, 3), st.integers(1, 3), st.integers(1, 2),
       st.integers(1, 2), st.integers(1, 2), st.sampled_from([0.5, 1.0, 10.0]))
def test_place_is_valid_and_its_objective_is_the_walked_cost(n: int, seed: int, cols: int, rows: int, per_router: int,
                                                             chips_x: int, chips_y: int, weight: float) -> None:
    mesh = Mesh(cols, rows, per_router, chips_x, chips_y, weight)
    if mesh.n_slots < n:
        with pytest.raises(ResourceError):
            place(sp.csr_array((n, n)), mesh)
        return
    rng = np.random.default_rng(seed)
    dense = rng.random((n, n)) * (rng.random((n, n)) < 0.5)
    p = place(sp.coo_array(dense), mesh, seed=seed % 5)
    verify_placement(p, mesh)
    assert p.objective == pytest.approx(walked_cost(dense, p, mesh), abs=1e-9)
    assert p.objective <= min(p.baselines["sequential"], p.baselines["hilbert"]) + 1e-9
    assert p.bound <= p.objective + 1e-9
    assert p.method == "lsa-window"


def test_layered_64_cores_beat_every_baseline() -> None:
    mesh = Mesh(8, 8, 1, 1, 1, 10.0)
    for seed in range(2):
        t = layered(64, 8, 3, seed)
        p = place(t, mesh, seed=seed, time_budget_s=120.0)  # stops by convergence, not by the clock
        verify_placement(p, mesh)
        b = p.baselines
        # measured: 0.49-0.55 x sequential, 0.53-0.58 x Hilbert, 0.36-0.38 x random
        assert p.objective <= 0.65 * b["sequential"]
        assert p.objective <= 0.70 * b["hilbert"]
        assert p.objective <= 0.45 * b["random"]
        assert p.objective == pytest.approx(cost(t, p, mesh))
        assert 0.4 * p.objective <= p.bound <= p.objective


def test_same_seed_same_placement() -> None:
    mesh = Mesh(6, 6, 1, 1, 1, 10.0)
    t = layered(30, 5, 3, 7)
    a, b = (place(t, mesh, seed=3, time_budget_s=60.0) for _ in range(2))
    for field in ("chip", "x", "y", "slot"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.objective == b.objective


def test_multi_chip_placement_keeps_traffic_on_chip() -> None:
    mesh = Mesh(8, 8, 1, 2, 2, 10.0)
    t = layered(200, 10, 3, 1)
    p = place(t, mesh, seed=0)
    verify_placement(p, mesh)
    hil = place(t, mesh, method="hilbert")
    assert hil.objective == p.baselines["hilbert"]
    # measured: 0.41-0.45 x sequential, 0.46-0.51 x Hilbert; inter-chip spikes about half of Hilbert's
    assert p.objective <= 0.6 * min(p.baselines["sequential"], p.baselines["hilbert"])
    assert route(t, p, mesh).interchip_spikes_per_tick < 0.8 * route(t, hil, mesh).interchip_spikes_per_tick


def test_cores_sharing_routers_on_a_loihi_like_mesh() -> None:
    mesh = Mesh(4, 2, 4, 1, 1, 10.0)
    t = layered(30, 5, 3, 2)
    p = place(t, mesh)
    verify_placement(p, mesh)
    assert p.objective <= 0.8 * p.baselines["sequential"]
    assert np.bincount(p.slot_index(mesh) // 4).max() <= 4


def test_mostly_empty_truenorth_chip() -> None:
    mesh = Mesh.for_cores(64, **TRUENORTH)
    t = layered(64, 8, 3, 0)
    p = place(t, mesh)
    verify_placement(p, mesh)
    assert p.objective <= 0.3 * p.baselines["sequential"]  # sequential is one 64-router row; measured 0.23-0.25
    assert p.objective <= 0.7 * p.baselines["hilbert"]


def test_time_budget_is_respected_on_1000_cores() -> None:
    mesh = Mesh(32, 32, 1, 1, 1, 10.0)
    t = layered(1000, 20, 4, 0)
    p = place(t, mesh, time_budget_s=0.5)
    verify_placement(p, mesh)
    assert p.seconds < 0.5 + 0.25
    assert p.objective <= 0.8 * p.baselines["hilbert"]


def test_trivial_networks() -> None:
    mesh = Mesh(2, 2, 1, 1, 1, 1.0)
    one = place(sp.csr_array((1, 1)), mesh)
    verify_placement(one, mesh)
    assert one.objective == 0 and one.bound == 0
    quiet = place(sp.csr_array(np.eye(3)), mesh)  # only self-traffic: nothing to optimise
    assert quiet.objective == 0
    np.testing.assert_array_equal(quiet.slot_index(mesh), [0, 1, 2])


def test_place_rejects_what_does_not_fit_or_is_malformed() -> None:
    mesh = Mesh(2, 2, 1, 1, 1, 1.0)
    with pytest.raises(ResourceError, match="cores 5 exceeds the allowed 4"):
        place(sp.csr_array((5, 5)), mesh)
    with pytest.raises(UserError, match="unknown placement method 'cpsat'"):
        place(sp.csr_array((2, 2)), mesh, method="cpsat")
    with pytest.raises(VerifyError, match=r"traffic\[0, 1\] = -1.0"):
        place(sp.csr_array(np.array([[0.0, -1.0], [0.0, 0.0]])), mesh)
    with pytest.raises(VerifyError, match="square"):
        place(sp.csr_array((2, 3)), mesh)


# --- annealing --------------------------------------------------------------------------------

def test_anneal_books_its_exact_cost_and_keeps_every_core_in_its_own_slot() -> None:
    mesh = Mesh(6, 6, 2, 2, 1, 10.0)
    t = layered(60, 6, 3, 4)
    sym = sp.csr_array(t + t.T)
    sym.sort_indices()
    search = Search.start(mesh, sym, np.arange(60))
    before = search.total()
    change = anneal(search, 1, Schedule(20_000))
    assert change < -0.2 * before  # measured: -0.26
    assert search.total() == pytest.approx(before + change)
    assert len(np.unique(search.pos)) == 60 and (search.occ[search.pos] == np.arange(60)).all()
    assert (search.occ >= 0).sum() == 60


def test_annealing_refinement_beats_windows_alone_and_repeats() -> None:
    mesh = Mesh(10, 10, 1, 1, 1, 10.0)
    t = layered(100, 10, 4, 3)
    windows = place(t, mesh, seed=2, time_budget_s=120.0, effort=4000)
    runs = [place(t, mesh, seed=2, time_budget_s=120.0, effort=4000, anneal_moves=100_000) for _ in range(2)]
    for field in ("chip", "x", "y", "slot"):
        np.testing.assert_array_equal(getattr(runs[0], field), getattr(runs[1], field))
    refined = runs[0]
    verify_placement(refined, mesh)
    assert (windows.method, refined.method) == ("lsa-window", "lsa-window+anneal+lsa-window")
    assert refined.objective == pytest.approx(cost(t, refined, mesh))
    assert refined.objective <= 0.97 * windows.objective  # measured: 0.944
    assert refined.objective <= 0.6 * refined.baselines["sequential"]


def test_anneal_method_starts_from_the_best_baseline() -> None:
    mesh = Mesh(4, 2, 4, 1, 1, 10.0)
    t = layered(30, 5, 3, 2)
    p = place(t, mesh, method="anneal", anneal_moves=10_000)
    verify_placement(p, mesh)
    assert p.method == "anneal"
    assert p.objective <= 0.8 * min(p.baselines["sequential"], p.baselines["hilbert"])
    assert place(t, mesh, method="anneal").objective == min(p.baselines["sequential"], p.baselines["hilbert"])


# --- traffic models ---------------------------------------------------------------------------

def relay(n: int = 300) -> Graph:
    """x -> a -> b, one-to-one with weight 1 and threshold 1: each neuron repeats its input one tick later."""
    eye = np.eye(n)
    nodes = [Input("x", (n,)), Affine("fa", eye), IF("a", threshold=1.0), Affine("fb", eye), IF("b", threshold=1.0),
             Output("out")]
    return Graph(nodes, [("x", "fa"), ("fa", "a"), ("a", "fb"), ("fb", "b"), ("b", "out")])


def test_profiled_traffic_replaces_the_uniform_rate() -> None:
    target = load_target("truenorth")
    x = np.zeros((10, 300))
    x[:, :100] = 1.0  # the first 100 inputs spike every tick, the rest never
    opts = CompileOptions(timesteps=8, place_anneal=0)
    uniform = compile_graph(relay(), target, opts)
    profiled = compile_graph(relay(), target, opts, profile={"x": x})
    n = profiled.program.netlist
    assert n.n_cores == 4 and uniform.report["traffic"]["model"] == {"kind": "uniform", "rate": 0.05}
    model = profiled.report["traffic"]["model"]
    assert (model["kind"], model["samples"], model["ticks"]) == ("profile", 8, 10)
    traffic, _ = profiled_traffic(relay(), n, target, mesh_for(target, 4), {"x": x}, opts)
    # a0 (neurons 0..149) -> b0: 100 relays firing on 9 of 10 ticks; a1 -> b1 silent
    want = np.zeros((4, 4))
    want[0, 2] = 100 * 9 / 10
    np.testing.assert_allclose(traffic.toarray(), want)
    # uniform: two core pairs of 150 neurons at 0.05, one hop each; profiled: one pair at 90, one hop
    assert uniform.report["placement"]["objective"] == pytest.approx(2 * 150 * 0.05)
    assert profiled.report["placement"]["objective"] == pytest.approx(90.0)
    assert profiled.report["traffic"]["between_layers"] == {"layers": ["a", "b"], "spikes_per_tick": [[0.0, 90.0],
                                                                                                      [0.0, 0.0]]}


def test_measured_rates_are_per_neuron_spikes_per_sample_tick() -> None:
    n = compile_graph(relay(4), load_target("loihi"), CompileOptions(place_anneal=0)).program.netlist
    assert (n.n_neurons, n.n_cores) == (8, 2)  # a on core 0, b on core 1
    a = np.zeros((2, 5, 4))
    a[:, :, 1] = 1.0
    a[0, :2, 3] = 1.0
    rates = measured_rates(n, {"a": a, "b": np.zeros((2, 5, 4))}, np.array([12.0, 0.0]), 10)
    np.testing.assert_allclose(rates[n.layer("a").neurons], [0.0, 1.0, 0.0, 0.2])
    np.testing.assert_allclose(rates[n.layer("b").neurons], 0.0)
    np.testing.assert_allclose(traffic_from_rates(n, rates).toarray(), [[0.0, 1.2], [0.0, 0.0]])


@pytest.mark.parametrize("target", ["loihi", "truenorth"])
def test_one_rate_counts_edges_per_core_pair_to_the_same_bits_as_per_neuron_rates(target) -> None:
    """traffic_from_rates with one rate (edges counted per core pair) equals the per-neuron path given that rate
    for every neuron, bit for bit: a pair of k edges holds k rates summed one after another. Edges come in axon order
    on Loihi and not on TrueNorth (its copies), so both orders are covered."""
    n = compile_graph(integer_cnn(), load_target(target), CompileOptions(place_anneal=0)).program.netlist
    for rate in (0.05, 1 / 3, 0.0):
        a, b = traffic_from_rates(n, rate), traffic_from_rates(n, np.full(n.n_neurons, rate))
        assert a.nnz > 0 and np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
        assert np.array_equal(a.data, b.data)


def test_cli_compile_with_profile(tmp_path) -> None:
    model, data, out = tmp_path / "relay.pt", tmp_path / "calib.npz", tmp_path / "prog"
    save_graph(relay(), model)
    x = np.zeros((3, 300))
    x[:, :100] = 1.0
    np.savez(data, input=x)
    assert main(["compile", str(model), "--target", "truenorth", "-o", str(out), "--timesteps", "8",
                 "--profile", str(data), "--json"]) == 0
    report = json.loads((out / "report.json").read_text())
    model = report["traffic"]["model"]
    assert (model["kind"], model["samples"], model["ticks"]) == ("profile", 3, 10)
    assert model["mean_rate"] == pytest.approx(170 / 600)  # a: 100 x 9 ticks, b: 100 x 8 ticks, of 600 x 10
    assert report["placement"]["objective"] == pytest.approx(90.0)
    assert "measured: emulator run of 3 calibration samples" in (out / "report.html").read_text(encoding="utf-8")
