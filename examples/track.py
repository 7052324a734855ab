"""Track a synthetic clip with SiamSNN on an emulated chip: compile, bind the exemplar, track, report.

    python examples/track.py [CLIP] [--model models/siamsnn_micro3g_truenorth.pt] [--target truenorth] [--frames 40]

Compiles the SiamSNN for the target (skipped when a program that passes verification is already
there; one from an older neurocomp is recompiled in place), then runs
`neurocomp track`: per-frame boxes go to build/track_<clip>.json, the annotated clip to
build/track_<clip>.gif, and the summary (AUC, precision, FPS at the chip's tick, energy
per frame) is printed. `make demo` runs this on clip 0.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path

from rich.console import Console

import neurocomp
from neurocomp.cli import main as cli
from neurocomp.errors import FormatError
from neurocomp.report.tables import track_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip", type=int, nargs="?", default=0)
    ap.add_argument("--model", type=Path, default=Path("models/siamsnn_micro3g_truenorth.pt"),
                    help="a SiamSNN .pt (default: the core-native tracker trained for one TrueNorth chip)")
    ap.add_argument("--target", default="truenorth")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--ticks", type=int, help="ticks per search scale (default: the SiamSNN's own)")
    args = ap.parse_args()
    program = Path("build") / f"{args.model.stem}.{args.target}"
    if not _verified(program):
        if cli(["compile", str(args.model), "--target", args.target, "-o", str(program)]):
            sys.exit(1)
    common = [str(program), "--clip", str(args.clip), "--frames", str(args.frames)]
    common += ["--ticks", str(args.ticks)] if args.ticks else []
    gif = Path("build") / f"track_{args.clip}.gif"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        status = cli(["track", *common, "--gif", str(gif), "--json"])
    if status:
        sys.exit(status)
    record = json.loads(buf.getvalue())
    for t, box in enumerate(record["boxes"]):
        print(f"frame {t:3d}: box {box}")
    Console().print(track_table(record))
    Path("build", f"track_{args.clip}.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {gif} and build/track_{args.clip}.json")


def _verified(program: Path) -> bool:
    try:
        neurocomp.load(program)
    except FormatError:
        return False
    return True


if __name__ == "__main__":
    main()
