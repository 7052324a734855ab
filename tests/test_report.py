"""Reports render the numbers a user acts on, in the terminal and in one self-contained HTML file."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from rich.console import Console

from neurocomp.program import Placed
from neurocomp.report.html import _router_load, _router_utilisation, _worst_link, write_html
from neurocomp.report.tables import compile_table, fmt, run_table, targets_table

PNG = "data:image/png;base64,"


@pytest.fixture
def report() -> dict:
    layer = {"shape": [8, 8], "binding": "axons", "scale": 0.1, "exact": False}
    return {
        "target": "truenorth", "cores_used": 10, "chips_used": 2, "neurons": 1234, "synapses": 56789, "axons": 900,
        "layers": [{**layer, "name": "conv1", "neurons": 1000, "cores": 8, "used": 240, "allowed": 256,
                    "weight_snr_db": 12.34},
                   {**layer, "name": "fc&out", "shape": [10], "neurons": 234, "cores": 2, "used": 0.5, "allowed": 1,
                    "weight_snr_db": None, "exact": True}],
        "traffic": {"assumed_rate": 0.1, "cut_spikes_per_tick": 40.0, "spike_hops_per_tick": 120.0,
                    "max_link_load": 9.5, "worst_link": [5, 1, "N"], "interchip_spikes_per_tick": 3.0,
                    "sequential_spike_hops_per_tick": 300.0},
        "placement": {"method": "anneal", "objective": 120.0, "baselines": {"sequential": 300.0, "random": 450.0},
                      "bound": 80.0},
        "energy": {"per_inference_j": 2.5e-6,
                   "breakdown_j": {"synaptic_events": 0.7e-6, "static": 1.5e-6, "spikes": 0.3e-6},
                   "constants": {}, "basis": "estimate at 0.1 spikes/neuron/tick"},
        "realtime": {"tick_s": 1e-3, "ticks_per_inference": 20, "inferences_per_s": 50.0, "slack": None},
        "compile_time_s": {"partition": 0.5, "place": 1.25},
    }


@pytest.fixture
def placed() -> Placed:
    """10 cores over two 4x3 chips side by side, two core slots per router."""
    chip = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    x = np.array([0, 0, 1, 1, 2, 3, 0, 0, 1, 2])
    y = np.array([0, 0, 0, 0, 1, 2, 0, 0, 0, 0])
    slot = np.array([0, 1, 0, 1, 0, 0, 0, 1, 0, 0])
    return Placed(chip, x, y, slot, chip_cols=4, chip_rows=3, cores_per_router=2, chips_x=2, chips_y=1)


@pytest.fixture
def routes() -> SimpleNamespace:
    """Loads on the 3x8 global router grid, hottest link north-south between (5, 1) and (5, 2)."""
    ew = np.full((3, 7), 1.0)
    ns = np.zeros((2, 8))
    ns[1, 5] = 9.5
    return SimpleNamespace(load_east=ew, load_west=ew * 2, load_north=ns, load_south=np.zeros((2, 8)))


def _text(renderable) -> str:
    console = Console(record=True, width=160)
    console.print(renderable)
    return console.export_text()


def test_html_is_self_contained_and_escaped(tmp_path: Path, report, placed, routes) -> None:
    out = tmp_path / "report.html"
    write_html(out, report, placed, routes, core_neurons=np.full(10, 128), neurons_per_core=256)
    page = out.read_text(encoding="utf-8")
    assert page.count(PNG) == 5
    assert "<title>neurocomp report: truenorth</title>" in page
    assert "conv1" in page and "fc&amp;out" in page and "fc&out" not in page
    assert "2.5 µJ (static 60%, synaptic_events 28%)" in page
    assert "12.3 dB" in page and "exact" in page and "1,234" in page


def test_html_without_routes_or_neuron_counts(tmp_path: Path, report, placed) -> None:
    out = tmp_path / "report.html"
    write_html(out, report, placed, None)
    assert out.read_text(encoding="utf-8").count(PNG) == 4


def test_router_utilisation_sums_slots_and_blanks_empty_routers(placed) -> None:
    core_neurons = np.array([256, 128, 64, 64, 256, 0, 32, 32, 256, 128])
    chips, grid, _ = _router_utilisation(placed, core_neurons, 256)
    assert chips.tolist() == [0, 1] and grid.shape == (2, 3, 4)
    assert grid[0, 0, 0] == pytest.approx(0.75)   # 384 of 2 x 256 neurons
    assert grid[0, 0, 1] == pytest.approx(0.25)
    assert grid[0, 2, 3] == 0.0                    # a core with no neurons is still present
    assert np.isnan(grid[1, 2, 3])                 # no core there
    _, present, _ = _router_utilisation(placed, None, None)
    assert present[0, 0, 0] == 1.0 and present[0, 1, 2] == 0.5


def test_link_load_takes_max_over_directions(routes) -> None:
    load = _router_load(routes)
    assert load.shape == (3, 8)
    assert load[0, 0] == 2.0 and load[1, 5] == 9.5 and load[2, 5] == 9.5
    assert _worst_link(routes) == ((5, 1), (5, 2), 9.5)


def test_compile_table_shows_key_numbers(report) -> None:
    text = _text(compile_table(report))
    for needle in ("conv1", "fc&out", "8×8", "240 / 256", "12.3 dB", "exact", "1,234", "56,789",
                   "120 vs 300 sequential (0.40×)", "9.5 spikes/tick at (5, 1, N)", "2.5 µJ (static 60%",
                   "1 ms", "50", "1.75 s", "best baseline sequential 300", "lower bound 80"):
        assert needle in text, needle


def test_run_table(report) -> None:
    summary = {"backend": "emulator", "batch": 4, "ticks": 80, "wall_s": 0.25, "ticks_per_s": 320.0,
               "counts": {"synaptic_events": 1_000_000, "neuron_active": 5000, "neuron_idle": 95000, "spikes": 4321,
                          "hops_ew": 7000, "hops_ns": 3000, "interchip": 12},
               "merges": 0, "energy": {"per_inference_j": 4e-7, "breakdown_j": {"static": 3e-7, "spikes": 1e-7}},
               "realtime": {"tick_s": 5e-5, "ticks_per_inference": 20, "inferences_per_s": 1000.0}}
    text = _text(run_table(summary))
    for needle in ("emulator", "1,000,000", "4,321", "250 ms", "0.4 µJ (static 75%, spikes 25%)", "50 µs", "1,000"):
        assert needle in text, needle


def test_targets_table() -> None:
    rows = [{"name": "truenorth", "family": "truenorth", "description": "IBM TrueNorth", "neurons_per_core": 256,
             "axons_per_core": 256, "cores_per_chip": 4096, "max_chips": 16, "tick_or_timing": "1 ms tick"},
            {"name": "loihi", "family": "loihi", "description": "Intel Loihi", "neurons_per_core": 1024,
             "axons_per_core": 4096, "cores_per_chip": 128, "max_chips": 32, "tick_or_timing": "barrier sync"}]
    text = _text(targets_table(rows))
    for needle in ("truenorth", "IBM TrueNorth", "4,096", "1,024", "1 ms tick", "barrier sync"):
        assert needle in text, needle


@pytest.mark.parametrize("value, text", [(None, "—"), (3, "3"), (2.0, "2"), (12345.0, "12,345"), (0.12345, "0.1235"),
                                         (float("inf"), "inf"), ({"a": 1}, "a=1"), ([1, "N"], "(1, N)")])
def test_fmt(value, text) -> None:
    assert fmt(value) == text


def test_html_has_layer_traffic_figure_and_names_the_traffic_model(tmp_path: Path, report, placed, routes) -> None:
    out = tmp_path / "report.html"
    between = {"layers": ["conv1", "fc&out"], "spikes_per_tick": [[0.0, 30.0], [0.0, 0.0]]}
    model = {"kind": "profile", "samples": 8, "ticks": 40, "mean_rate": 0.125}
    write_html(out, {**report, "traffic": {**report["traffic"], "between_layers": between, "model": model}}, placed,
               routes, core_neurons=np.full(10, 128), neurons_per_core=256)
    page = out.read_text(encoding="utf-8")
    assert page.count(PNG) == 6
    captions = ["Core utilisation per chip", "Link load over the global router grid", "Traffic between layers"]
    assert all(f"<figcaption>{c}</figcaption>" in page for c in captions)
    assert "measured: emulator run of 8 calibration samples x 40 ticks (mean 0.125 spikes/neuron/tick)" in page
    write_html(out, report, placed, routes)  # a report from before traffic models: uniform at the assumed rate
    assert "uniform: every neuron at 0.1 spikes/tick" in out.read_text(encoding="utf-8")
