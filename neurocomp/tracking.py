"""`neurocomp track --clips N`: a tracking benchmark, one synthetic test clip per task (serially or on Ray,
neurocomp.scale): OTB AUC and precision@20 over the clips, the chip's frames per second and energy per frame.

A clip's result depends only on its seed and the options: each task tracks with fresh counters, so the per-clip
numbers and their means (taken in clip order) are the same whichever worker ran which clip.
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from neurocomp.models.chip_tracker import ChipStats, load_tracker, track_clip
from neurocomp.models.otb import PRECISION_AT, sequence_curves
from neurocomp.models.tracking_data import make_clip
from neurocomp.safewrite import json_kind, write_file
from neurocomp.scale import Arrays, ChunkStore, Pool, run_chunks, work_of

CLIP_SEED = 10_000   # `track --clip c` tracks make_clip(10_000 + c, split="test"), as a single-clip track does
TRACKS_FORMAT = "neurocomp.track_clips"
PER_FRAME = ("ticks", "chip_ms", "energy_uj", "fps")   # the chip's figures; the host's wall time is kept apart


def open_tracker(folder: Path, overrides: dict[str, Any]) -> Any:
    """A program folder as (ChipSiamese, TrackerConfig): the opener each worker calls once."""
    return load_tracker(folder, **overrides)


def track_one(tracker: Any, payload: tuple[int, int]) -> Arrays:
    """One clip with fresh counters: boxes, its OTB curves and the chip's per-frame figures (shape (1,) each)."""
    siamese, config = tracker
    clip_seed, frames = payload
    siamese.stats = ChipStats()
    clip = make_clip(CLIP_SEED + clip_seed, frames, split="test")
    out = track_clip(siamese, config, clip)
    success, precision = sequence_curves(out["boxes"], clip.boxes)
    return {"boxes": out["boxes"], "success": success, "precision": precision,
            **{k: np.array([out["per_frame"][k]]) for k in PER_FRAME + ("emulator_s",)}}


def benchmark(program_dir: Path, first: int, clips: int, frames: int, overrides: dict[str, Any], pool: Pool,
              state: Path | None = None, on_done: Callable[[int], None] = lambda _k: None,
              tracker: Any = None) -> dict[str, Any]:
    """OTB over clips first .. first + clips - 1: the record `track --clips` prints and writes. `tracker`: the
    program already opened with open_tracker here (a serial run uses it; opened if not given)."""
    opener = functools.partial(open_tracker, overrides=overrides)
    work = work_of(program_dir, opener)
    key = hashlib.sha256(json.dumps([work.key, first, clips, frames], sort_keys=True).encode()).hexdigest()

    def items(skip: set[int]) -> Iterator[tuple[int, Any]]:
        return ((k, (first + k, frames)) for k in range(clips) if k not in skip)

    local = tracker if tracker is not None or pool.uses_ray else opener(program_dir)
    chunks = run_chunks(pool, work, track_one, items, clips, local, ChunkStore(state, key) if state else None, on_done)
    success = np.mean([c["success"] for c in chunks], axis=0)
    precision = np.mean([c["precision"] for c in chunks], axis=0)
    per_clip = [{"clip": first + k, "auc": float(c["success"].mean()), "precision": float(c["precision"][PRECISION_AT]),
                 "boxes": c["boxes"].round(2).tolist(), **{f: float(c[f][0]) for f in PER_FRAME}}
                for k, c in enumerate(chunks)]
    chip_ms = float(np.mean([c["chip_ms"][0] for c in chunks]))
    return {"format": TRACKS_FORMAT, "clips": clips, "first_clip": first, "frames": frames,
            "auc": float(success.mean()), "precision": float(precision[PRECISION_AT]),
            "chip_fps": 1e3 / chip_ms if chip_ms else float("nan"), "chip_ms_per_frame": chip_ms,
            "energy_uj_per_frame": float(np.mean([c["energy_uj"][0] for c in chunks])), "per_clip": per_clip,
            "emulator_s_per_frame": float(np.mean([c["emulator_s"][0] for c in chunks]))}


TRACKS_KIND = json_kind("neurocomp track --clips record", TRACKS_FORMAT)


def write_tracks(path: Path, record: dict[str, Any], inputs: list[Path]) -> None:
    """The record without the host's timings: the same bytes for the same clips and options."""
    text = json.dumps({k: v for k, v in record.items() if k != "emulator_s_per_frame"}, sort_keys=True) + "\n"

    def write(tmp: Path) -> None:
        tmp.write_text(text)

    write_file(path, TRACKS_KIND, write, inputs)
