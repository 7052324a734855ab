"""Router: hand-computed link loads under X-then-Y routing, totals, chip crossings, dx/dy limits."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from netlib import integer_cnn
from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.errors import ResourceError
from neurocomp.place import Mesh, Placement, cost, place
from neurocomp.route import edge_hops, route, routing_tables, table_report, verify_routes
from neurocomp.target import load_target


def at(mesh: Mesh, routers: list[tuple[int, int]], slot: list[int] | None = None) -> Placement:
    """A placement from global router coordinates (gx, gy), one core per entry."""
    gx, gy = np.array(routers, dtype=np.int64).T
    cx, x = np.divmod(gx, mesh.chip_cols)
    cy, y = np.divmod(gy, mesh.chip_rows)
    k = np.array(slot if slot is not None else [0] * len(routers), dtype=np.int64)
    return Placement(cy * mesh.chips_x + cx, x, y, k, "manual", 0.0, {}, None, 0.0)


def traffic(n: int, flows: dict[tuple[int, int], float]) -> sp.csr_array:
    rows, cols = zip(*flows)
    return sp.csr_array((list(flows.values()), (rows, cols)), shape=(n, n))


def test_loads_on_3x3_mesh() -> None:
    mesh = Mesh(3, 3, 1, 1, 1, 1.0)
    p = at(mesh, [(0, 0), (2, 2), (0, 1), (1, 1)])
    t = traffic(4, {(0, 1): 2.0, (1, 2): 1.0, (2, 0): 3.0, (3, 2): 0.5, (0, 0): 7.0})
    r = route(t, p, mesh)
    # 0 -> 1: east along y=0 over x 0..2, then north along x=2 over y 0..2
    # 1 -> 2: west along y=2 over x 2..0, then south along x=0 from y=2 to 1
    # 2 -> 0: south along x=0 from y=1 to 0;  3 -> 2: west along y=1 from x=1 to 0
    np.testing.assert_allclose(r.load_east, [[2, 2], [0, 0], [0, 0]])
    np.testing.assert_allclose(r.load_west, [[0, 0], [0.5, 0], [1, 1]])
    np.testing.assert_allclose(r.load_north, [[0, 0, 2], [0, 0, 2]])
    np.testing.assert_allclose(r.load_south, [[3, 0, 0], [1, 0, 0]])
    assert r.spike_hops_per_tick == pytest.approx(2 * 4 + 1 * 3 + 3 * 1 + 0.5 * 1)
    assert r.hops_ew_per_tick == pytest.approx(2 * 2 + 1 * 2 + 0.5)
    assert r.hops_ns_per_tick == pytest.approx(2 * 2 + 1 * 1 + 3 * 1)
    assert r.cut_spikes_per_tick == pytest.approx(6.5)  # the self-loop is not traffic
    assert r.interchip_spikes_per_tick == 0
    assert r.max_link_load == pytest.approx(3.0)
    assert r.worst_link == "south link (gx=0, gy=1) -> (0, 0) on chip 0"
    assert (r.max_dx, r.max_dy) == (2, 2)
    assert (r.dx_span, r.dy_span) == ((-2, 2), (-1, 2))
    assert r.span_flows["dx_min"] == (1, 2) and r.span_flows["dy_max"] == (0, 1)


def test_two_chip_crossings_and_worst_link() -> None:
    mesh = Mesh(2, 2, 1, 2, 1, 10.0)  # chips side by side: chip 0 owns gx 0..1, chip 1 gx 2..3
    p = at(mesh, [(0, 0), (3, 1), (1, 0), (2, 1)])
    t = traffic(4, {(0, 1): 1.5, (2, 3): 1.0, (3, 2): 0.25})
    r = route(t, p, mesh)
    np.testing.assert_allclose(r.load_east, [[1.5, 2.5, 1.5], [0, 0, 0]])
    np.testing.assert_allclose(r.load_west, [[0, 0, 0], [0, 0.25, 0]])
    np.testing.assert_allclose(r.load_north, [[0, 0, 1.0, 1.5]])
    np.testing.assert_allclose(r.load_south, [[0, 0.25, 0, 0]])
    assert r.worst_link == "east link (gx=1, gy=0) -> (2, 0) from chip 0 to chip 1"
    assert r.interchip_spikes_per_tick == pytest.approx(1.5 + 1.0 + 0.25)
    assert r.spike_hops_per_tick == pytest.approx(1.5 * 4 + 1.0 * 2 + 0.25 * 2)
    ew, ns, cross = edge_hops(np.array([0, 2, 3]), np.array([1, 3, 2]), p, mesh)
    np.testing.assert_array_equal(ew, [3, 1, 1])
    np.testing.assert_array_equal(ns, [1, 1, 1])
    np.testing.assert_array_equal(cross, [1, 1, 1])


def test_vertical_chip_crossings() -> None:
    mesh = Mesh(2, 2, 1, 1, 3, 10.0)  # three chips stacked along y
    p = at(mesh, [(0, 0), (1, 5)])
    _, _, cross = edge_hops(np.array([0, 1]), np.array([1, 0]), p, mesh)
    np.testing.assert_array_equal(cross, [2, 2])
    r = route(traffic(2, {(0, 1): 1.0}), p, mesh)
    assert r.interchip_spikes_per_tick == 2.0
    np.testing.assert_allclose(r.load_north[:, 1], [1, 1, 1, 1, 1])


def test_same_router_traffic_is_cut_but_free() -> None:
    mesh = Mesh(2, 1, 4, 1, 1, 1.0)
    p = at(mesh, [(0, 0), (0, 0)], slot=[0, 3])
    r = route(traffic(2, {(0, 1): 4.0, (1, 0): 1.0}), p, mesh)
    assert r.cut_spikes_per_tick == 5.0
    assert r.spike_hops_per_tick == 0 and r.max_link_load == 0
    assert r.worst_link.startswith("none")
    assert r.load_east.shape == (1, 1) and r.load_north.shape == (0, 2)


def test_vectorised_loads_match_a_hop_by_hop_walk() -> None:
    rng = np.random.default_rng(3)
    mesh = Mesh(3, 2, 2, 2, 2, 5.0)
    n = 20
    routers = list(zip(rng.integers(0, mesh.grid_cols, n).tolist(), rng.integers(0, mesh.grid_rows, n).tolist()))
    p = at(mesh, routers)
    dense = rng.random((n, n)) * (rng.random((n, n)) < 0.3)
    r = route(sp.csr_array(dense), p, mesh)
    east, west = np.zeros_like(r.load_east), np.zeros_like(r.load_west)
    north, south = np.zeros_like(r.load_north), np.zeros_like(r.load_south)
    crossings = 0.0
    for i, j in zip(*np.nonzero(dense)):
        if i == j:
            continue
        (x, y), (xd, yd), v = routers[i], routers[j], dense[i, j]
        while x != xd:
            step = 1 if xd > x else -1
            (east if step > 0 else west)[y, min(x, x + step)] += v
            crossings += v * (x // mesh.chip_cols != (x + step) // mesh.chip_cols)
            x += step
        while y != yd:
            step = 1 if yd > y else -1
            (north if step > 0 else south)[min(y, y + step), x] += v
            crossings += v * (y // mesh.chip_rows != (y + step) // mesh.chip_rows)
            y += step
    for got, want in ((r.load_east, east), (r.load_west, west), (r.load_north, north), (r.load_south, south)):
        np.testing.assert_allclose(got, want, atol=1e-12)
    assert r.interchip_spikes_per_tick == pytest.approx(crossings)
    assert r.max_link_load == pytest.approx(max(a.max() for a in (east, west, north, south)))


def test_verify_routes_uses_the_signed_dx_range() -> None:
    mesh = Mesh(300, 1, 1, 1, 1, 1.0)
    p = at(mesh, [(0, 0), (256, 0)])
    verify_routes(route(traffic(2, {(1, 0): 1.0}), p, mesh), -256, 255)  # dx = -256 fits
    with pytest.raises(ResourceError) as err:
        verify_routes(route(traffic(2, {(0, 1): 1.0}), p, mesh), -256, 255)
    assert (err.value.where, err.value.resource, err.value.used, err.value.allowed) == (
        "route from core 0 to core 1", "route dx", 256, 255)


def test_verify_routes_checks_dy() -> None:
    mesh = Mesh(1, 10, 1, 1, 1, 1.0)
    p = at(mesh, [(0, 9), (0, 0)])
    with pytest.raises(ResourceError, match="route dy -9 exceeds the allowed -8"):
        verify_routes(route(traffic(2, {(0, 1): 1.0}), p, mesh), -8, 7)


def test_weighted_placement_cost_equals_router_hops_plus_crossing_surcharge() -> None:
    mesh = Mesh(4, 3, 2, 3, 2, 7.0)
    t = sp.random_array((40, 40), density=0.2, random_state=5, format="csr")
    p = place(t, mesh, seed=1)
    r = route(t, p, mesh)
    assert cost(t, p, mesh) == pytest.approx(r.spike_hops_per_tick + 6.0 * r.interchip_spikes_per_tick)
    assert r.spike_hops_per_tick == pytest.approx(r.hops_ew_per_tick + r.hops_ns_per_tick)
    assert r.cut_spikes_per_tick == pytest.approx(t.sum() - t.diagonal().sum())


def test_routing_tables_count_distinct_neuron_destination_pairs() -> None:
    # core 0 owns neurons 0-2, core 1 neurons 3-4; neuron 0 feeds two axons of core 1 (one entry) and one of core 2
    src_core = np.array([0, 0, 0, 0, 1, 1])
    src_neuron = np.array([0, 0, 0, 2, 3, 4])
    dst_core = np.array([1, 1, 2, 1, 2, 2])
    entries = routing_tables(src_core, src_neuron, dst_core, 3)
    np.testing.assert_array_equal(entries, [3, 2, 0])
    assert table_report(entries, 4096) == {"max_entries": 3, "mean_entries": pytest.approx(5 / 3), "core": 0,
                                           "limit": 4096}
    np.testing.assert_array_equal(routing_tables(np.array([], int), np.array([], int), np.array([], int), 2), [0, 0])


def test_compile_reports_routing_tables_and_layer_traffic() -> None:
    for target, limit in (("loihi", 4096), ("truenorth", None)):
        c = compile_graph(integer_cnn(), load_target(target), CompileOptions(place_anneal=0))
        n, traffic = c.program.netlist, c.report["traffic"]
        tables = traffic["routing_tables"]
        assert tables["limit"] == limit
        src, dst = n.core_traffic_edges()
        per_core = np.bincount(src, minlength=n.n_cores)  # every edge of this net leaves one neuron for one core
        assert tables["max_entries"] <= per_core.max() and tables["max_entries"] > 0
        between = traffic["between_layers"]
        assert between["layers"][:2] == ["n1", "n2"]
        # every neuron edge carries the assumed 0.05 spikes/tick; n1 only feeds n2
        assert between["spikes_per_tick"][0][1] == pytest.approx(0.05 * len(n.edge_src))
