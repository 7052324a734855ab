"""The pieces both HTML pages share (report.html of a program, `run --report` of a run): one self-contained
HTML5 document, figures (neurocomp.report.plots) with their titles above them, tables that read in a browser.
No matplotlib here: `run` checks its --report path (HTML_KIND) before deciding to plot anything.

A page must open offline and mailed as one file, so it loads nothing: its Content-Security-Policy blocks every
resource that is not inlined (a stray link would be refused and show in the browser's console, not fetched).
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Sequence

from neurocomp.safewrite import Kind

MARKER = '<meta name="generator" content="neurocomp">'   # no version: a page of any version may be replaced
POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
CSS = """body{font-family:system-ui,sans-serif;margin:1em auto;padding:0 1em;max-width:1100px;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
.scroll{overflow-x:auto;margin:1em 0}table{border-collapse:collapse}
td,th{border:1px solid #d0d0d0;padding:4px 10px;text-align:left;white-space:nowrap;vertical-align:top}
thead th{background:#e8eef6;position:sticky;top:0}tbody th{background:#f4f4f4;font-weight:600}
tbody tr:nth-child(even) td{background:#f8f8fb}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.kv td{white-space:normal;min-width:20em}figure{margin:1.5em 0}figcaption{font-weight:600;font-size:1.1em;margin:0 0 .4em}img{max-width:100%;height:auto}
.note{color:#555}"""
PAGE_HEAD = 4096   # the marker sits in the first bytes of every page we write


def figure(title: str, uri: str) -> str:
    """The title above the image (in the page, not only inside the plot), and as the image's alt text."""
    t = html.escape(title)
    return f'<figure><figcaption>{t}</figcaption><img src="{uri}" alt="{t}"></figure>'


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: frozenset[str] = frozenset()) -> str:
    """A header row and zebra body rows, `numeric` columns right-aligned, scrolling sideways on narrow windows."""
    align = [' class="num"' if h in numeric else "" for h in headers]
    head = "".join(f"<th{a}>{html.escape(h)}</th>" for h, a in zip(headers, align))
    body = "".join("<tr>" + "".join(f"<td{a}>{html.escape(c)}</td>" for c, a in zip(row, align)) + "</tr>"
                   for row in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def kv_table(rows: Sequence[tuple[str, str]]) -> str:
    """Name and value rows (totals, a run's summary): the names are row headers."""
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f'<div class="scroll"><table class="kv"><tbody>{body}</tbody></table></div>'


def document(title: str, body: str) -> str:
    """A whole HTML5 page: the generator marker (HTML_KIND recognises our files by it) and the offline policy."""
    t = html.escape(title)
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">{MARKER}'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
            f"<title>{t}</title><style>{CSS}</style></head><body><h1>{t}</h1>{body}</body></html>\n")


def _not_our_page(path: Path) -> str | None:
    """safewrite's test for an .html file we may replace: one of our pages carries the generator marker."""
    with open(path, "rb") as f:
        head = f.read(PAGE_HEAD)
    return None if MARKER.encode() in head else "no neurocomp generator tag"


HTML_KIND = Kind("neurocomp HTML report", False, _not_our_page)
