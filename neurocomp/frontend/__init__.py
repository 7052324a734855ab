"""Model file frontends: the safe neurocomp `.pt` format and NIR (`.nir`)."""
from __future__ import annotations

from pathlib import Path

from neurocomp.errors import FormatError
from neurocomp.frontend.nirgraph import from_nir, load_nir, save_nir, to_nir
from neurocomp.frontend.ptfile import graph_from_dict, graph_to_dict, load_graph, save_graph
from neurocomp.ir.graph import Graph

__all__ = ["load_model", "load_graph", "save_graph", "graph_to_dict", "graph_from_dict",
           "load_nir", "save_nir", "from_nir", "to_nir"]


def load_model(path: str | Path, dt: float = 1e-3) -> Graph:
    """Load a network by file suffix; `dt` (seconds) discretises NIR time constants."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".pt":
        return load_graph(path)
    if suffix == ".nir":
        return load_nir(path, dt)
    raise FormatError(f"unsupported model file {str(path)!r} (suffix {suffix or 'none'!r}); expected .pt or .nir")
