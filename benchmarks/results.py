"""One section per benchmark in benchmarks/RESULTS.md, stamped with machine, date, commit and command."""
from __future__ import annotations

import datetime
import platform
import subprocess
import sys
from pathlib import Path

import torch

PATH = Path(__file__).with_name("RESULTS.md")


def command_line() -> str:
    """How this benchmark was run, as the reader would type it from the repository root."""
    return " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])


def write_section(name: str, title: str, text: str, command: str, seconds: float) -> None:
    """Replace the section `name` (between its <!-- name --> markers) or append it; other sections stay."""
    marker = f"<!-- {name} -->"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=PATH.parent).stdout.strip()
    body = (f"{marker}\n## {title}\n\n"
            f"`{command}` on {platform.node() or 'unknown'} ({platform.processor() or platform.machine()}, "
            f"{torch.get_num_threads()} torch thread(s)), {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
            f"commit {commit}, {seconds:.0f} s.\n\n{text}\n{marker}\n")
    old = PATH.read_text() if PATH.exists() else "# Benchmark results\n\n"
    parts = old.split(marker)
    new = parts[0] + body + parts[2].lstrip("\n") if len(parts) >= 3 else old.rstrip("\n") + "\n\n" + body
    PATH.write_text(new)


def write_table(name: str, title: str, text: str, start: float) -> None:
    """A benchmark's printed output as a fenced block in its section, timed from `start` (time.perf_counter)."""
    import time

    write_section(name, title, "```\n" + text.rstrip("\n") + "\n```\n", command_line(), time.perf_counter() - start)
