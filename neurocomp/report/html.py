"""report.html: one self-contained page per compiled program, figures inlined as base64 PNG.

A single file can be mailed or attached to a CI run without losing its images (neurocomp.report.page).
"""
from __future__ import annotations

import html

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from mpl_toolkits.axes_grid1 import make_axes_locatable

from neurocomp.report.page import document, figure, kv_table, table
from neurocomp.report.plots import energy_fig, plt, png
from neurocomp.report.tables import (INTERFACE_HEADERS, LAYER_HEADERS, NUMERIC_LAYER_COLUMNS, fmt, interface_caption,
                                     interface_rows, layer_rows, totals_rows)

MAX_CHIP_PANELS = 16
PANEL_COLS = 4


def _router_utilisation(placed, core_neurons: np.ndarray | None,
                        neurons_per_core: int | None) -> tuple[np.ndarray, np.ndarray, str]:
    """Per used chip a (rows, cols) grid of the router's capacity in use; NaN marks empty routers."""
    if core_neurons is None:
        share, label = np.ones(placed.chip.size), "cores placed / core slots per router"
    else:
        cap = neurons_per_core or max(int(np.max(core_neurons, initial=1)), 1)
        share, label = np.asarray(core_neurons, float) / cap, f"neurons used / capacity ({cap} per core)"
    chips = np.unique(placed.chip)
    idx = np.searchsorted(chips, placed.chip)
    grid = np.zeros((chips.size, placed.chip_rows, placed.chip_cols))
    present = np.zeros(grid.shape, bool)
    np.add.at(grid, (idx, placed.y, placed.x), share / placed.cores_per_router)
    present[idx, placed.y, placed.x] = True
    grid[~present] = np.nan
    return chips, grid, label


def _utilisation_fig(placed, core_neurons: np.ndarray | None, neurons_per_core: int | None) -> str:
    chips, grid, label = _router_utilisation(placed, core_neurons, neurons_per_core)
    shown = min(chips.size, MAX_CHIP_PANELS)
    ncols = min(PANEL_COLS, shown)
    nrows = math.ceil(shown / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols + 1, 3 * nrows), squeeze=False)
    cmap = plt.get_cmap("viridis").with_extremes(bad="#e8e8e8")
    vmax = max(1.0, float(np.nanmax(grid))) if np.isfinite(grid).any() else 1.0
    for ax, chip, cells in zip(axes.ravel(), chips, grid):
        image = ax.imshow(cells, cmap=cmap, vmin=0.0, vmax=vmax, interpolation="nearest")
        ax.set_title(f"chip {chip}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.ravel()[shown:]:
        ax.set_axis_off()
    fig.colorbar(image, ax=axes.ravel().tolist(), label=label, shrink=0.8)
    if chips.size > shown:
        fig.suptitle(f"first {shown} of {chips.size} chips")
    return png(fig)


def _router_load(routes) -> np.ndarray:
    """Max load over the links touching each router: the hot spots that limit the tick."""
    ew = np.maximum(np.asarray(routes.load_east, float), np.asarray(routes.load_west, float))
    ns = np.maximum(np.asarray(routes.load_north, float), np.asarray(routes.load_south, float))
    load = np.zeros((ns.shape[0] + 1, ew.shape[1] + 1))
    for view, links in ((load[:, :-1], ew), (load[:, 1:], ew), (load[:-1, :], ns), (load[1:, :], ns)):
        np.maximum(view, links, out=view)
    return load


def _worst_link(routes) -> tuple[tuple[int, int], tuple[int, int], float] | None:
    """End points (x, y) of the most loaded link and its load, found in the arrays themselves."""
    worst = None
    for name, (dx, dy) in (("load_east", (1, 0)), ("load_west", (1, 0)), ("load_north", (0, 1)), ("load_south", (0, 1))):
        links = np.asarray(getattr(routes, name), float)
        if links.size and (worst is None or links.max() > worst[2]):
            y, x = np.unravel_index(np.argmax(links), links.shape)
            worst = ((int(x), int(y)), (int(x) + dx, int(y) + dy), float(links.max()))
    return worst


def _link_fig(routes, placed) -> str:
    load = _router_load(routes)
    fig, ax = plt.subplots(figsize=(7, 6))
    image = ax.imshow(load, cmap="inferno", vmin=0.0, vmax=max(float(load.max()), 1e-12), interpolation="nearest")
    cax = make_axes_locatable(ax).append_axes("right", size="4%", pad=0.1)
    fig.colorbar(image, cax=cax, label="spikes / tick (max over the router's links)")
    for k in range(1, placed.chips_x):
        ax.axvline(k * placed.chip_cols - 0.5, color="#4aa3ff", lw=1)
    for k in range(1, placed.chips_y):
        ax.axhline(k * placed.chip_rows - 0.5, color="#4aa3ff", lw=1)
    worst = _worst_link(routes)
    if worst is not None and worst[2] > 0:
        (x0, y0), (x1, y1), value = worst
        ax.plot([x0, x1], [y0, y1], color="#00e0ff", lw=3, marker="o", label=f"worst link: {fmt(value)} spikes/tick")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("global router x")
    ax.set_ylabel("global router y")
    return png(fig)


MAX_SHOWN = 40   # layers named in a figure: a paper-size program has hundreds (fan-in parts)


def _layers_fig(layers: Sequence[Mapping[str, Any]]) -> str:
    """Cores per layer: where the chip area goes (the MAX_SHOWN largest, the rest summed in one bar)."""
    names, cores = [lay["name"] for lay in layers], [lay["cores"] for lay in layers]
    if len(layers) > MAX_SHOWN:
        keep = sorted(np.argsort(cores, kind="stable")[::-1][:MAX_SHOWN - 1])
        rest = sum(cores) - sum(cores[i] for i in keep)
        names = [names[i] for i in keep] + [f"{len(layers) - len(keep)} other layers"]
        cores = [cores[i] for i in keep] + [rest]
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(names) + 1.2))
    ax.barh(names, cores)
    ax.invert_yaxis()
    ax.set_xlabel("cores")
    return png(fig)


def _placement_fig(placement: Mapping[str, Any]) -> str:
    """The chosen placement next to the baselines it must beat, and the lower bound if known."""
    costs = {f"{placement['method']} (chosen)": placement["objective"], **placement.get("baselines", {})}
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(costs) + 1.2))
    ax.barh(list(costs), list(costs.values()), color=["#d95f02"] + ["#7570b3"] * (len(costs) - 1))
    if placement.get("bound") is not None:
        ax.axvline(placement["bound"], color="black", ls="--", label=f"lower bound {fmt(placement['bound'])}")
        ax.legend(fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("placement cost (lower is better)")
    return png(fig)


def _layer_traffic_fig(between: Mapping[str, Any]) -> str:
    """Layer x layer spikes per tick: which layer pairs the placer has to keep close."""
    names, matrix = list(between["layers"]), np.asarray(between["spikes_per_tick"], float)
    if len(names) > MAX_SHOWN:   # the layers that send or receive most; the figure stays legible and small
        keep = np.sort(np.argsort(matrix.sum(axis=0) + matrix.sum(axis=1), kind="stable")[::-1][:MAX_SHOWN])
        names, matrix = [names[i] for i in keep], matrix[np.ix_(keep, keep)]
    shown = np.where(matrix > 0, matrix, np.nan)
    side = 2.5 + 0.35 * len(names)
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    cmap = plt.get_cmap("viridis").with_extremes(bad="#f4f4f4")
    image = ax.imshow(shown, cmap=cmap, interpolation="nearest")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("to layer")
    ax.set_ylabel("from layer")
    fig.colorbar(image, ax=ax, label="spikes / tick", shrink=0.8)
    return png(fig)


def _interface(interface: Mapping[str, Any] | None) -> str:
    """The inputs and outputs section (Program.interface), when the report carries one."""
    if interface is None:
        return ""
    return (f"<h2>Inputs and outputs</h2>{table(INTERFACE_HEADERS, interface_rows(interface))}"
            f'<p class="note">{html.escape(interface_caption(interface))}</p>')


def write_html(path: Path, report: Mapping[str, Any], placed, routes, core_neurons: np.ndarray | None = None,
               neurons_per_core: int | None = None) -> None:
    """Write report.html; `routes=None` (e.g. a program loaded without routing) drops the link map."""
    figures = [("Core utilisation per chip", _utilisation_fig(placed, core_neurons, neurons_per_core))]
    if routes is not None:
        figures.append(("Link load over the global router grid", _link_fig(routes, placed)))
    if report["traffic"].get("between_layers"):
        figures.append(("Traffic between layers", _layer_traffic_fig(report["traffic"]["between_layers"])))
    figures += [("Energy per inference by term", energy_fig(report["energy"])),
                ("Cores per layer", _layers_fig(report["layers"])),
                ("Placement cost vs baselines", _placement_fig(report["placement"]))]
    body = (f"<h2>Totals</h2>{kv_table(totals_rows(report))}"
            f"<h2>Layers</h2>{table(LAYER_HEADERS, layer_rows(report), NUMERIC_LAYER_COLUMNS)}"
            + _interface(report.get("interface")) + "<h2>Figures</h2>" + "".join(figure(t, uri) for t, uri in figures))
    Path(path).write_text(document(f"neurocomp report: {report['target']}", body), encoding="utf-8")
