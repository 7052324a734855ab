"""Figures the HTML pages share, rendered to inlined PNG data: URIs (no file beside the page to lose)."""
from __future__ import annotations

import base64
import io
from typing import Any, Mapping

import matplotlib

matplotlib.use("Agg")   # no display: pages are written by servers and CI as often as by laptops
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen before pyplot loads; the pages import it from here)
from matplotlib.figure import Figure  # noqa: E402

from neurocomp.report.tables import fmt_uj  # noqa: E402


def png(fig: Figure) -> str:
    """The figure as a data: URI, closed afterwards (pages build dozens; open figures leak memory)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def energy_fig(energy: Mapping[str, Any]) -> str:
    """Energy per inference by term on a log scale: static power and synaptic events differ by orders of magnitude,
    so a linear axis hides every small term. A term of exactly 0 has no bar on a log axis; it is labelled 0."""
    terms = sorted(energy["breakdown_j"].items(), key=lambda kv: -kv[1])
    values = [v * 1e6 for _, v in terms]
    positive = [v for v in values if v > 0]
    lo = min(positive) / 4 if positive else 1e-6   # the axis starts below the smallest term, whose bar then shows
    hi = max(positive, default=lo) * 20
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(terms) + 1.2))
    ax.set_xscale("log")
    ax.barh([k for k, _ in terms], [max(v, lo) - lo for v in values], left=lo, color="#1b9e77")
    for row, v in enumerate(values):
        ax.text(max(v, lo) * 1.1, row, f"{v:.3g}" if v > 0 else "0", va="center", fontsize=8)
    ax.set_xlim(lo, hi)
    ax.invert_yaxis()
    ax.set_xlabel(f"µJ per inference, log scale (total {fmt_uj(energy['per_inference_j'])})")
    return png(fig)
