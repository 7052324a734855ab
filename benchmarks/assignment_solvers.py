"""The placer's window re-assignments solved by OR-Tools' SimpleLinearSumAssignment and by scipy's
linear_sum_assignment, on the very cost matrices a compile produces.

    python benchmarks/assignment_solvers.py [--net nir|siamsnn] [--target truenorth]

Compiles the network once while recording every window's cost matrix (cores x free slots), then solves each with
both solvers, steady state (best of --repeat runs over all matrices): total seconds, the summed optimal costs
(OR-Tools sees costs rounded to integers at a 1e9 range; scipy solves the floats), and how many windows each
solves to a strictly lower cost than the other.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from ortools.graph.python import linear_sum_assignment as ortools_lsa
from results import write_table
from scipy.optimize import linear_sum_assignment

ROOT = Path(__file__).resolve().parents[1]
NETS = {"nir": ROOT.parent / "shared" / "data" / "nir" / "cnn_sinabs.nir", "siamsnn": ROOT / "models" / "siamsnn.pt"}
RANGE = 1e9


def record(net: str, target: str) -> list[tuple[np.ndarray, int]]:
    """(square cost matrix, cores) of every window the compile's placer solved."""
    from neurocomp.api import compile as compile_model
    from neurocomp.place import assign

    seen: list[tuple[np.ndarray, int]] = []
    solve = assign.solve_assignment

    def recording(cost: np.ndarray) -> np.ndarray:
        seen.append((cost.copy(), cost.shape[0]))
        return solve(cost)

    assign.solve_assignment = recording
    try:
        compile_model(NETS[net], target)
    finally:
        assign.solve_assignment = solve
    return seen


def by_ortools(cost: np.ndarray) -> np.ndarray:
    """OR-Tools on a square matrix padded with zero rows, costs scaled to integers."""
    rows, cols = cost.shape
    square = np.zeros((cols, cols))
    square[:rows] = cost - cost.min(axis=1, keepdims=True)
    top = square.max()
    scaled = np.rint(square * (RANGE / top if top > 0 else 0.0)).astype(np.int64)
    solver = ortools_lsa.SimpleLinearSumAssignment()
    left, right = np.divmod(np.arange(cols * cols, dtype=np.int32), np.int32(cols))
    solver.add_arcs_with_cost(left, right, scaled.ravel())
    solver.solve()
    return np.array([solver.right_mate(i) for i in range(rows)], dtype=np.int64)


def by_scipy(cost: np.ndarray) -> np.ndarray:
    return linear_sum_assignment(cost)[1]


def timed(solver, mats: list[np.ndarray], repeat: int) -> tuple[float, list[np.ndarray]]:
    best, out = np.inf, []
    for _ in range(repeat):
        start = time.perf_counter()
        out = [solver(m) for m in mats]
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", choices=sorted(NETS), default="nir")
    ap.add_argument("--target", default="truenorth")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    start = time.perf_counter()
    mats = [cost[:cores] for cost, cores in record(args.net, args.target)]
    sizes = np.array([m.shape for m in mats])
    lines = [f"{args.net} on {args.target}: {len(mats)} windows, cores per window median {np.median(sizes[:, 0]):.0f} "
             f"(max {sizes[:, 0].max()}), free slots median {np.median(sizes[:, 1]):.0f} (max {sizes[:, 1].max()})",
             f"{'solver':10} {'seconds':>9} {'us/window':>10} {'summed cost':>14} {'windows strictly better':>24}"]
    results = {name: timed(fn, mats, args.repeat) for name, fn in (("ortools", by_ortools), ("scipy", by_scipy))}
    costs = {name: np.array([m[np.arange(len(c)), c].sum() for m, c in zip(mats, cols)]) for name, (_, cols) in results.items()}
    for name, (secs, _) in results.items():
        other = costs["scipy" if name == "ortools" else "ortools"]
        better = int(np.sum(costs[name] < other - 1e-9 * np.maximum(np.abs(other), 1.0)))
        lines.append(f"{name:10} {secs:9.3f} {1e6 * secs / len(mats):10.1f} {costs[name].sum():14.6g} {better:>24}")
    print("\n".join(lines))
    if not args.no_write:
        write_table("assignment_solvers", "assignment_solvers: the placer's window assignments, OR-Tools vs scipy",
                    "\n".join(lines), start)


if __name__ == "__main__":
    main()
