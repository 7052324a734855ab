"""Load a network by its file suffix: the safe neurocomp `.pt` format or NIR."""
from __future__ import annotations

from pathlib import Path

from neurocomp.errors import FormatError
from neurocomp.frontend.nirgraph import load_nir
from neurocomp.frontend.ptfile import load_graph
from neurocomp.ir.graph import Graph


def load_model(path: str | Path, dt: float = 1e-3, if_gain: str = "auto", integrator: str = "auto",
               bias_timing: str = "held") -> Graph:
    """Load a network by file suffix; `dt` (seconds) discretises NIR time constants, `if_gain`, `integrator` and
    `bias_timing` say how to read a NIR file where its meaning is open (neurocomp.frontend.nirgraph.Reading)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".pt":
        return load_graph(path)
    if suffix == ".nir":
        return load_nir(path, dt, if_gain, integrator, bias_timing)
    raise FormatError(f"unsupported model file {str(path)!r} (suffix {suffix or 'none'!r}); expected .pt or .nir")
