"""`neurocomp run --report OUT.html`: one self-contained page for one run: its summary, energy by term, a spike
raster per layer and the first output over ticks, so a run can be looked at (and attached) without Python."""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.ticker import MaxNLocator

from neurocomp.report.page import HTML_KIND, document, figure, kv_table
from neurocomp.report.plots import energy_fig, plt, png
from neurocomp.report.tables import fmt, run_sections
from neurocomp.safewrite import write_file

MAX_RASTER_NEURONS = 256   # rows a raster shows; a larger layer is subsampled evenly
MAX_LINES = 16             # read-out potentials drawn as lines; more would be unreadable


def raster_rows(n: int) -> np.ndarray:
    """The neuron indices a raster of an n-neuron layer shows: all of them, or an even spread of MAX_RASTER_NEURONS."""
    return np.arange(n) if n <= MAX_RASTER_NEURONS else np.unique(np.linspace(0, n - 1, MAX_RASTER_NEURONS).astype(int))


def _raster(spikes: np.ndarray) -> tuple[str, str]:
    """Neuron index (flattened) vs tick for the first sample, and what the title should say about the rows shown."""
    flat = spikes[0].reshape(spikes.shape[1], -1)
    rows = raster_rows(flat.shape[1])
    ticks, neurons = np.nonzero(flat[:, rows])
    fig, ax = plt.subplots(figsize=(8, 1.5 + min(rows.size, 64) / 16))
    ax.scatter(ticks, rows[neurons], marker="|", s=12, lw=0.8, color="#222")
    ax.set_xlim(-0.5, flat.shape[0] - 0.5)
    ax.set_ylim(-0.5, flat.shape[1] - 0.5)
    ax.set_xlabel("tick")
    ax.set_ylabel("neuron (flattened index)")
    shown = "all" if rows.size == flat.shape[1] else f"{rows.size} evenly spread of"
    return png(fig), f"{shown} {fmt(flat.shape[1])} neurons, {fmt(int(np.count_nonzero(flat)))} spikes"


def _spike_counts_fig(spikes: np.ndarray) -> str:
    """Spikes per output neuron over the run (first sample): the class a rate-coded network chose is the tallest bar."""
    counts = np.count_nonzero(spikes[0].reshape(spikes.shape[1], -1), axis=0)
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.stairs(counts, np.arange(counts.size + 1) - 0.5, fill=True, color="#d95f02")   # one patch: 10^4 bars take 15 s
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("output neuron (flattened index)")
    ax.set_ylabel(f"spikes in {fmt(spikes.shape[1])} ticks")
    return png(fig)


def _potentials_fig(potentials: np.ndarray) -> str:
    """Read-out potentials over ticks (first sample), one line per neuron, the first MAX_LINES of them."""
    flat = potentials[0].reshape(potentials.shape[1], -1)[:, :MAX_LINES]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for k in range(flat.shape[1]):
        ax.plot(np.arange(flat.shape[0]), flat[:, k], lw=1.2, label=str(k))
    ax.set_xlabel("tick")
    ax.set_ylabel("potential")
    ax.legend(title="neuron", fontsize=7, ncols=2, loc="upper left", bbox_to_anchor=(1.01, 1))
    return png(fig)


def _output_figure(outputs: Mapping[str, np.ndarray], name: str) -> str:
    """The first output: its read-out potentials over ticks, or its spike counts per neuron."""
    if f"potential/{name}" in outputs:
        out = outputs[f"potential/{name}"]
        more = f", the first {MAX_LINES} of {fmt(out[0, 0].size)} neurons" if out[0, 0].size > MAX_LINES else ""
        return figure(f"Output {name}: read-out potentials over ticks (sample 0{more})", _potentials_fig(out))
    return figure(f"Output {name}: spikes per neuron (sample 0)", _spike_counts_fig(outputs[f"spikes/{name}"]))


def _raster_figure(layer: str, spikes: np.ndarray) -> str:
    uri, shown = _raster(spikes)
    return figure(f"Spike raster: {layer} (sample 0, {shown})", uri)


def run_page(summary: Mapping[str, Any], outputs: Mapping[str, np.ndarray], program: str, output: str) -> str:
    """The whole page for a run of `program` whose first output is named `output`."""
    spikes = {k.removeprefix("spikes/"): v for k, v in outputs.items() if k.startswith("spikes/")}
    parts = [f"<h2>{html.escape(title)}</h2>{kv_table(rows)}" for title, rows in run_sections(summary)]
    if "energy" in summary:
        parts.append("<h2>Energy</h2>" + figure("Energy per inference by term", energy_fig(summary["energy"])))
    parts.append("<h2>Output</h2>" + _output_figure(outputs, output))
    rasters = "".join(_raster_figure(layer, s) for layer, s in spikes.items())
    parts.append("<h2>Spike rasters</h2>" + (rasters or '<p class="note">no spiking layers</p>'))
    return document(f"neurocomp run: {program} on {summary['backend']}", "".join(parts))


def write_run_html(path: Path, summary: Mapping[str, Any], outputs: Mapping[str, np.ndarray], program: str, output: str,
                   inputs: Sequence[Path] = ()) -> None:
    """The run report under the neurocomp.safewrite policy: it replaces only a page neurocomp wrote."""
    page = run_page(summary, outputs, program, output)

    def write(tmp: Path) -> None:
        tmp.write_text(page, encoding="utf-8")

    write_file(path, HTML_KIND, write, inputs)
