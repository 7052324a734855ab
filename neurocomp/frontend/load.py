"""Load a network by its file suffix: the safe neurocomp `.pt` format or NIR."""
from __future__ import annotations

from pathlib import Path

from neurocomp.errors import FormatError
from neurocomp.frontend.nirgraph import load_nir
from neurocomp.frontend.ptfile import load_graph
from neurocomp.ir.graph import Graph


def load_model(path: str | Path, dt: float = 1e-3) -> Graph:
    """Load a network by file suffix; `dt` (seconds) discretises NIR time constants."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".pt":
        return load_graph(path)
    if suffix == ".nir":
        return load_nir(path, dt)
    raise FormatError(f"unsupported model file {str(path)!r} (suffix {suffix or 'none'!r}); expected .pt or .nir")
