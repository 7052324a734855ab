"""Digests of every spike and potential (and, apart, of the per-core counters) the emulator gives for the
committed models, so a refactor can show it changed no emitted spike: run it on two checkouts and compare
the lines (a new partition keeps the spikes and changes the counters, which are per core).

    python benchmarks/spike_digest.py [--root OTHER_CHECKOUT] [--models models/siamsnn_micro_truenorth.pt ...]

--root imports neurocomp from another checkout (e.g. a `git worktree` of the commit before a change).
Each model is compiled with default options for the target its file was trained for (or both),
then run for 40 ticks on seeded random analog input.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import sys
from pathlib import Path

DEFAULT = ("models/siamsnn_micro_truenorth.pt:truenorth", "models/siamsnn_micro_loihi.pt:loihi",
           "models/siamsnn.pt:truenorth")


class _Checkout:
    """Imports neurocomp, neurocomp.targets and neurocomp.models from one checkout's folders."""

    def __init__(self, root: Path) -> None:
        self.map = {"neurocomp": root / "neurocomp", "neurocomp.targets": root / "targets", "neurocomp.models": root / "models"}

    def find_spec(self, name, path=None, target=None):
        folder = self.map.get(name)
        if folder is None:
            return None
        return importlib.util.spec_from_file_location(name, folder / "__init__.py", submodule_search_locations=[str(folder)])


def digest(model: str, target_name: str) -> str:
    import numpy as np

    from neurocomp.backends import emulator
    from neurocomp.compiler import CompileOptions, compile_graph
    from neurocomp.frontend.ptfile import load_graph
    from neurocomp.target import load_target

    target = load_target(target_name)
    graph = load_graph(Path(model))
    program = compile_graph(graph, target, CompileOptions()).program
    rng = np.random.default_rng(0)
    inputs = {name: rng.random((1,) + tuple(shape)) for name, shape in program.netlist.inputs}
    result = emulator.run(program, target, inputs, ticks=40)
    spikes = sum(int(v.sum()) for v in result.spikes.values())
    return (f"{model} {target_name}: spikes {spikes} spikes+potentials sha256 {_digest(result.spikes, result.potentials)}; "
            f"cores {program.netlist.n_cores} counters sha256 {_digest(result.core_counts)}")


def _digest(*groups) -> str:
    import numpy as np

    h = hashlib.sha256()
    for group in groups:
        for key in sorted(group):
            h.update(key.encode())
            h.update(np.ascontiguousarray(group[key]).tobytes())
    return h.hexdigest()[:16]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, help="import neurocomp from this checkout")
    ap.add_argument("--models", nargs="+", default=list(DEFAULT), help="MODEL.pt:TARGET")
    args = ap.parse_args()
    if args.root is not None:
        sys.meta_path.insert(0, _Checkout(args.root.resolve()))
    for item in args.models:
        model, target = item.rsplit(":", 1)
        print(digest(model, target), flush=True)


if __name__ == "__main__":
    main()
