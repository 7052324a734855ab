"""Both HTML pages (a program's report.html, `run --report`) read well in a browser and open offline.

Structural checks parse the pages with html.parser; the `browser` tests render them in headless Chromium
(Debian's chromium, which `make install` installs where it can) and fail, not skip, where it is missing:
`make test` runs them only where it is installed and says so otherwise.
"""
from __future__ import annotations

import base64
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from neurocomp.cli import main
from neurocomp.frontend.ptfile import save_graph
from neurocomp.report import plots
from neurocomp.report.run_html import MAX_RASTER_NEURONS, raster_rows, run_page
from netlib import integer_cnn, random_spikes, wide_readout

CHROMIUM = "chromium"
VOID = {"meta", "img", "br", "hr", "link", "input", "col", "area", "base", "embed", "source", "track", "wbr"}
HEADINGS = ("h1", "h2", "h3", "figcaption")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CONSOLE = re.compile(r":CONSOLE[:(]")   # how Chromium's --enable-logging=stderr prints a page's console message


class Page(HTMLParser):
    """What the tests look at in a page: headings and images in document order, URLs, metas, tag balance."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[tuple[str, str]] = []   # (tag, heading text or image alt), in document order
        self.urls: list[str] = []
        self.metas: list[dict[str, str]] = []
        self.problems: list[str] = []
        self.doctype = ""
        self.figure_caption: str | None = None
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.urls += [a[k] for k in ("src", "href") if k in a]
        if tag == "meta":
            self.metas.append(a)
        if tag == "figure":
            self.figure_caption = None
        if tag == "img":
            self.events.append(("img", a.get("alt", "")))
            if self.figure_caption != a.get("alt"):
                self.problems.append(f"image {a.get('alt')!r} has no title above it")
        if tag in HEADINGS:
            self.text = []
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}>")
            return
        self.stack.pop()
        if tag == "figure":
            self.figure_caption = None
        if tag in HEADINGS:
            self.events.append((tag, "".join(self.text)))
            if tag == "figcaption":
                self.figure_caption = "".join(self.text)

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def titles(self, tag: str) -> list[str]:
        return [t for k, t in self.events if k == tag]


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


def check_page(path: Path) -> Page:
    """The checks every page passes: HTML5 head, balanced tags, titled figures, valid inlined PNGs, no URLs out."""
    text = path.read_text(encoding="utf-8")
    page = parse(text)
    assert page.doctype.lower() == "doctype html" and text.startswith("<!doctype html>")
    assert page.problems == [] and page.stack == []
    names = {m.get("name"): m.get("content", "") for m in page.metas}
    assert names["viewport"].startswith("width=device-width") and names["generator"] == "neurocomp"
    assert any(m.get("charset") == "utf-8" for m in page.metas)
    assert any(m.get("http-equiv") == "Content-Security-Policy" and "default-src 'none'" in m["content"] for m in page.metas)
    assert '<html lang="en">' in text and "<script" not in text and "<link" not in text and "url(" not in text
    assert page.urls and all(u.startswith("data:image/png;base64,") for u in page.urls)
    assert all(base64.b64decode(u.partition(",")[2])[:8] == PNG_MAGIC for u in page.urls)
    return page


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    """A compiled program's report.html, a run report of it, and a run report of a read-out network."""
    root = tmp_path_factory.mktemp("pages")
    save_graph(integer_cnn(), root / "cnn.pt")
    save_graph(wide_readout(40), root / "readout.pt")
    np.savez(root / "cnn.npz", input=random_spikes((2, 6, 6), batch=2, ticks=10, rate=0.3))
    np.savez(root / "readout.npz", input=random_spikes((40,), batch=1, ticks=10, rate=0.3))
    for net in ("cnn", "readout"):
        assert main(["compile", str(root / f"{net}.pt"), "--target", "loihi", "-o", str(root / net), "--quiet"]) == 0
        assert main(["run", str(root / net), "--input", str(root / f"{net}.npz"), "--report", str(root / f"{net}-run.html"),
                     "--quiet"]) == 0
    return {"compile": root / "cnn" / "report.html", "run": root / "cnn-run.html", "readout": root / "readout-run.html"}


def test_compile_page_titles_tables_and_energy(pages) -> None:
    page = check_page(pages["compile"])
    assert page.titles("h1") == ["neurocomp report: loihi"]
    assert page.titles("h2") == ["Totals", "Layers", "Inputs and outputs", "Figures"]
    assert "Energy per inference by term" in page.titles("figcaption")
    assert len(page.titles("img")) == len(page.titles("figcaption")) >= 5
    text = pages["compile"].read_text(encoding="utf-8")
    assert '<thead><tr><th>layer</th><th>shape</th><th class="num">neurons</th>' in text
    assert '<td>n1</td><td>3×6×6</td><td class="num">108</td>' in text
    assert '<div class="scroll"><table>' in text and "tbody tr:nth-child(even)" in text
    assert "<td>input</td><td>x</td><td>2 x 6 x 6</td><td>input</td>" in text   # how to call run, no path in it
    assert "run: neurocomp run PROGRAM --input IN.npz --out OUT.npz" in text


def test_run_page_summary_energy_output_and_rasters(pages) -> None:
    page = check_page(pages["run"])
    assert page.titles("h1") == ["neurocomp run: cnn on emulator"]
    assert page.titles("h2") == ["Run", "Stage times", "Counts", "Energy and real time", "Spikes per layer", "Energy",
                                 "Output", "Spike rasters"]
    captions = page.titles("figcaption")
    assert captions[0] == "Energy per inference by term" and captions[1] == "Output n2: spikes per neuron (sample 0)"
    assert [c.partition(" (")[0] for c in captions[2:]] == ["Spike raster: n1", "Spike raster: n2"]
    assert captions[2].startswith("Spike raster: n1 (sample 0, all 108 neurons, ")


def test_run_page_of_a_readout_plots_potentials(pages) -> None:
    page = check_page(pages["readout"])
    assert "Output r: read-out potentials over ticks (sample 0)" in page.titles("figcaption")
    assert "no spiking layers" in pages["readout"].read_text(encoding="utf-8")


def test_energy_figure_is_log_scale_and_labels_a_zero_term(monkeypatch) -> None:
    monkeypatch.setattr(plots, "png", lambda fig: fig)
    fig = plots.energy_fig({"per_inference_j": 3.3e-6, "breakdown_j": {"static": 3e-6, "spikes": 3e-12, "hops": 0.0}})
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert 0 < ax.get_xlim()[0] < 3e-6 and ax.get_xlim()[1] > 3.0   # µJ: the smallest term's bar and the largest show
    assert [t.get_text() for t in ax.texts] == ["3", "3e-06", "0"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["static", "spikes", "hops"]


def test_raster_subsamples_large_layers_evenly() -> None:
    assert raster_rows(10).tolist() == list(range(10))
    rows = raster_rows(1000)
    assert rows.size == MAX_RASTER_NEURONS and rows[0] == 0 and rows[-1] == 999 and np.all(np.diff(rows) > 0)
    spikes = np.zeros((1, 5, 1000), np.uint8)
    spikes[0, 2, 999] = 1
    summary = {"backend": "reference", "batch": 1, "ticks": 5, "wall_s": 0.1, "ticks_per_s": 50.0,
               "spike_counts": {"big": 1}}
    page = parse(run_page(summary, {"spikes/big": spikes, "output": spikes}, "prog", "big"))
    assert "Spike raster: big (sample 0, 256 evenly spread of 1,000 neurons, 1 spikes)" in page.titles("figcaption")
    assert "Energy" not in page.titles("h2")   # the reference backend has no energy


def run_argv(root: Path, *extra: str) -> list[str]:
    return ["run", str(root / "cnn"), "--input", str(root / "cnn.npz"), "--quiet", *extra]


def test_run_report_replaces_its_own_page_and_refuses_others(pages, tmp_path, capsys) -> None:
    root = pages["run"].parent
    out = tmp_path / "run.html"
    out.write_text("stale")
    for argv, needle in ((run_argv(root, "--report", str(out)), "not a neurocomp HTML report (no neurocomp generator tag)"),
                         (run_argv(root, "--report", str(root / "cnn.npz")), "it is the input"),
                         (run_argv(root, "--report", str(tmp_path / "a"), "--out", str(tmp_path / "a")), "name the same file")):
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and needle in err, err
    assert out.read_text() == "stale" and sorted(p.name for p in tmp_path.iterdir()) == ["run.html"]
    shutil.copy(pages["run"], out)
    assert main(run_argv(root, "--report", str(out), "--ticks", "3")) == 0
    assert "<th>ticks</th><td>3</td>" in out.read_text(encoding="utf-8")   # the new run's page replaced the old one


def render(page: Path, tmp_path: Path) -> tuple[str, list[str]]:
    """The DOM Chromium builds from `page` and its console messages (errors, refused loads)."""
    exe = shutil.which(CHROMIUM)
    if exe is None:
        pytest.fail(f"{CHROMIUM} is not installed (Debian: apt-get install {CHROMIUM}); the browser tests need it")
    quiet = ["--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
             "--disable-dev-shm-usage"]   # a small /dev/shm (containers) would crash the renderer
    done = subprocess.run([exe, "--headless", "--disable-gpu", "--no-sandbox", *quiet, "--enable-logging=stderr",
                           "--v=0", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout, [line for line in done.stderr.splitlines() if CONSOLE.search(line)]


@pytest.mark.browser
@pytest.mark.parametrize("name, headings", [("compile", ["Totals", "Layers", "Figures"]),
                                            ("run", ["Run", "Counts", "Energy", "Output", "Spike rasters"]),
                                            ("readout", ["Run", "Output", "Spike rasters"])])
def test_pages_render_in_chromium_without_console_messages(pages, tmp_path, name, headings) -> None:
    dom, console = render(pages[name], tmp_path)
    assert console == []
    shown, written = parse(dom), parse(pages[name].read_text(encoding="utf-8"))
    assert all(h in shown.titles("h2") for h in headings), shown.titles("h2")
    assert shown.events == written.events and len(shown.titles("img")) >= 2   # every heading, title and image


@pytest.mark.browser
def test_chromium_reports_a_page_that_reaches_the_network(pages, tmp_path) -> None:
    """The check above can fail: the same page with one external image is refused by its own policy, loudly."""
    leaky = tmp_path / "leaky.html"
    leaky.write_text(pages["run"].read_text(encoding="utf-8").replace("<h2>Run</h2>",
                     '<h2>Run</h2><img src="https://example.invalid/x.png" alt="x">'), encoding="utf-8")
    _, console = render(leaky, tmp_path)
    assert len(console) == 1 and "https://example.invalid/x.png" in console[0], console


def test_layer_figures_of_many_layers_name_at_most_max_shown() -> None:
    """A program of hundreds of layers (a paper-size tracker's fan-in parts) gets figures of MAX_SHOWN rows: the
    largest layers, the rest in one summed bar; the traffic matrix keeps the busiest layers."""
    import struct

    from neurocomp.report import html

    n = 3 * html.MAX_SHOWN
    layers = [{"name": f"part{i}", "cores": i + 1} for i in range(n)]
    traffic = {"layers": [f"part{i}" for i in range(n)], "spikes_per_tick": np.eye(n, k=1).tolist()}

    def height(data: str) -> int:
        raw = base64.b64decode(data.split(",", 1)[-1])
        assert raw.startswith(PNG_MAGIC)
        return struct.unpack(">I", raw[20:24])[0]

    small = [{"name": f"part{i}", "cores": 1} for i in range(html.MAX_SHOWN)]
    assert height(html._layers_fig(layers)) == height(html._layers_fig(small))
    assert height(html._layer_traffic_fig(traffic)) < 40 * 0.35 * 90 + 600
