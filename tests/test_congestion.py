"""The placer's congestion term: exact scoring, hand-built relief, invariants."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from neurocomp.place import Mesh, canonical_traffic, cost, place, verify_placement
from neurocomp.place.assign import Budget, Search
from neurocomp.place.congestion import Relief, _top, link_loads, path_links, relieve
from neurocomp.route import route


def _search(mesh: Mesh, traffic: sp.coo_array, pos: np.ndarray) -> Search:
    return Search.start(mesh, sp.csr_array(traffic + traffic.T), np.asarray(pos, dtype=np.int64))


def _objective(search: Search, relief: Relief) -> float:
    t = relief.flows
    hops = float(t.w @ search.dist(search.pos[t.src], search.pos[t.dst]))
    return hops + relief.gamma * float((link_loads(search, t) ** 2).sum() / relief.mean)


def test_path_links_by_hand():
    # 4 x 3 routers, one core each (slot = y * 4 + x): a flow (0, 0) -> (2, 1) goes east twice on
    # row 0, then north once on column 2; the reverse goes west on row 1, then south on column 0
    mesh = Mesh(4, 3, 1, 1, 1, 1.0)
    search = _search(mesh, sp.coo_array((2, 2)), np.array([0, 6]))
    links, flow = path_links(search, np.array([0, 6]), np.array([6, 0]))
    plane = 12
    expect = {(0, 0, 0), (0, 0, 1), (2, 0, 2), (1, 1, 0), (1, 1, 1), (3, 0, 0)}
    got = {(int(i // plane), int(i % plane // 4), int(i % 4)) for i in links}
    assert got == expect and sorted(flow.tolist()) == [0, 0, 0, 1, 1, 1]


def test_hand_built_overlap_is_relieved():
    # two unit flows share the east links of row 0: (0,0)->(3,0) and (1,0)->(2,0). Moving the short
    # flow's cores to row 1 costs no hops and halves the worst link.
    mesh = Mesh(4, 2, 1, 1, 1, 1.0)
    t = canonical_traffic(sp.coo_array((np.ones(2), ([0, 1], [2, 3])), shape=(4, 4)))
    search = _search(mesh, t, np.array([0, 1, 3, 2]))
    relief = Relief(search, t, gamma=1.0)
    assert relief.loads.max() == 2.0
    before = _objective(search, relief)
    gain, links, change = relief.score(np.array([1, 3]), np.array([5, 6]))
    search.apply(np.array([1, 3]), np.array([5, 6]))
    relief.loads.flat[links] += change
    assert relief.loads.max() == 1.0
    np.testing.assert_allclose(relief.loads, link_loads(search, relief.flows))
    assert gain == pytest.approx(_objective(search, relief) - before) and gain < 0


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.1, 4.0))
def test_score_is_the_exact_change_of_the_objective(seed, gamma):
    rng = np.random.default_rng(seed)
    mesh = Mesh(4, 3, 2, 2, 1, 3.0)
    n = 20
    dense = rng.random((n, n)) * (rng.random((n, n)) < 0.2)
    t = canonical_traffic(sp.coo_array(dense))
    search = _search(mesh, t, rng.permutation(mesh.n_slots)[:n])
    relief = Relief(search, t, gamma)
    for _ in range(10):
        core = int(rng.integers(n))
        for moving, new in relief.candidates(core, rng):
            before = _objective(search, relief)
            gain, links, change = relief.score(moving, new)
            keep = search.pos.copy()
            search.apply(moving, new)
            relief.loads.flat[links] += change
            np.testing.assert_allclose(relief.loads, link_loads(search, relief.flows), atol=1e-9)
            assert gain == pytest.approx(_objective(search, relief) - before, abs=1e-9)
            relief.loads.flat[links] -= change
            search.reset(keep)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.1, 4.0), st.integers(2, 30))
def test_gains_score_every_move_at_once_as_score_does(seed, gamma, n):
    """Relief.gains over a step's candidate moves (single moves and swaps, traffic between a swap's two cores too)
    equals Relief.score move by move."""
    rng = np.random.default_rng(seed)
    mesh = Mesh(4, 3, 2, 2, 1, 3.0)
    dense = rng.random((n, n)) * (rng.random((n, n)) < 0.3)
    t = canonical_traffic(sp.coo_array(dense))
    relief = Relief(_search(mesh, t, rng.permutation(mesh.n_slots)[:n]), t, gamma)
    moves = [m for core in rng.choice(n, size=min(n, 4), replace=False) for m in relief.candidates(int(core), rng)]
    want = [relief.score(cores, new)[0] for cores, new in moves]
    np.testing.assert_allclose(relief.gains(moves), want, rtol=1e-12, atol=1e-9)


def test_relieve_lowers_the_objective_and_keeps_one_core_per_slot():
    rng = np.random.default_rng(5)
    mesh = Mesh(6, 6, 1, 1, 1, 1.0)
    n = 30
    t = canonical_traffic(sp.coo_array(rng.random((n, n)) * (rng.random((n, n)) < 0.15)))
    runs = []
    for _ in range(2):
        search = _search(mesh, t, np.arange(n))
        relief = Relief(search, t, 1.0)
        before = _objective(search, relief)
        drop = relieve(search, t, 1.0, seed=3, budget=Budget(float("inf")), moves=40)
        after = _objective(search, relief)   # the same normalising mean load
        assert after < before and drop > 0
        assert np.unique(search.pos).size == n
        runs.append(search.pos.copy())
    np.testing.assert_array_equal(runs[0], runs[1])   # deterministic for a seed


def test_place_with_congestion_cuts_the_worst_link():
    # a layered network on one 8 x 8 chip: the congestion term lowers the most loaded link
    rng = np.random.default_rng(0)
    n, mesh = 60, Mesh(8, 8, 1, 1, 1, 1.0)
    layer = np.arange(n) // 15
    dense = np.where(layer[None, :] == layer[:, None] + 1, rng.random((n, n)), 0.0)
    # an unreachable time budget: the searches end by their effort and move counts, so the result is deterministic
    plain = place(dense, mesh, seed=0, time_budget_s=1e6, effort=400, anneal_moves=2000)
    relieved = place(dense, mesh, seed=0, time_budget_s=1e6, effort=400, anneal_moves=2000, congestion=1.0,
                     congestion_moves=100)
    verify_placement(relieved, mesh)
    assert relieved.method.endswith("+congestion")
    assert route(dense, relieved, mesh).max_link_load < route(dense, plain, mesh).max_link_load
    assert cost(dense, relieved, mesh) <= relieved.baselines["sequential"]



def test_cli_congestion_option(tmp_path, capsys):
    import json

    from neurocomp.cli import main
    from neurocomp.frontend.ptfile import save_graph
    from test_partition_windows import _conv_net

    model = tmp_path / "net.pt"
    save_graph(_conv_net(), model)
    methods = {}
    for gamma in ("0", "0.5"):
        out = tmp_path / f"prog{gamma}"
        assert main(["compile", str(model), "--target", "truenorth", "-o", str(out), "--congestion", gamma, "--json"]) == 0
        placement = json.loads((out / "report.json").read_text())["placement"]
        methods[gamma] = (placement["method"], placement["congestion"])
    assert methods["0"] == ("lsa-window+anneal+lsa-window", 0.0)
    assert methods["0.5"] == ("lsa-window+anneal+lsa-window+congestion", 0.5)
    capsys.readouterr()
    assert main(["compile", str(model), "--target", "truenorth", "-o", str(tmp_path / "bad"), "--congestion", "-1"]) == 2
    assert "--congestion: must be a finite number in [0, inf), got -1" in capsys.readouterr().err and not (tmp_path / "bad").exists()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=40), st.integers(1, 45))
def test_the_hottest_links_are_a_stable_descending_sorts_first(loads, k):
    values = np.array(loads, dtype=np.float64)
    assert _top(values, k).tolist() == np.argsort(-values, kind="stable")[:k].tolist()
