"""A tracking stage of a core-native SiamSNN (float ANN, quantised ANN, float SNN, emulated chip) over clips,
serially or on Ray (neurocomp.scale): benchmarks/tracking_native.py's rows.

A stage travels as a small JSON (Stage) that each worker opens once into its tracker (loading the committed
weights and, for the chip, compiling the program); a clip travels as its seed and is made where it is tracked
(models.tracking_data.make_clip is a pure function of its arguments), so no frames cross process boundaries.
The boxes come back in clip order whatever ran where, so a stage's AUC is the serial run's.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from neurocomp.models import otb
from neurocomp.models.chip_tracker import ChipOptions, ChipSiamese, ChipStats, chip_tracker
from neurocomp.models.siamfc import build
from neurocomp.models.siamsnn import readout_of, tracker_config
from neurocomp.models.tracker import ann_tracker
from neurocomp.models.tracking_data import make_clip
from neurocomp.models.train_siamsnn import load_float, load_qat, qat_tracker, stage_record
from neurocomp.scale import Arrays, Pool, Work, run_chunks

STAGES = ("float ANN", "converted micro", "quantised ANN", "float SNN", "emulated chip")
ClipSeed = tuple[str, int, int]   # (photo split, clip seed, frames): make_clip's arguments


@dataclass(frozen=True)
class Stage:
    stage: str        # one of STAGES
    config: str       # the tracker (models/train_siamsnn.py CONFIGS)
    models: str       # the folder of the committed weights and graphs
    target: str = ""  # for the quantised ANN, the float SNN and the chip


@dataclass
class Opened:
    """A stage's tracker, and the chip's per-frame counters where it has them."""

    tracker: Any
    siamese: ChipSiamese | None = None


def open_stage(folder: Path) -> Opened:
    """The opener each worker calls once per stage: the folder holds stage.json."""
    return opened(Stage(**json.loads((folder / "stage.json").read_text())))


def opened(stage: Stage) -> Opened:
    """The stage's tracker, built from the committed weights (the chip's program compiled here)."""
    from neurocomp.compiler import CompileOptions, compile_graph
    from neurocomp.frontend.ptfile import load_graph
    from neurocomp.target import load_target

    models = Path(stage.models)
    if stage.stage == "converted micro":
        original = build("micro").eval()
        original.load_state_dict(torch.load(models / "siamfc_micro.pt", weights_only=True))
        return Opened(ann_tracker(original))
    if stage.stage in ("float ANN", "quantised ANN"):   # the float SiamFC: tracked, or QAT's starting point
        model = load_float(stage.config, models / f"siamfc_{stage.config}_native.pt")
        if stage.stage == "float ANN":
            return Opened(ann_tracker(model))
        qat_path = models / f"siamsnn_{stage.config}_qat_{stage.target}.pt"
        record = stage_record(qat_path)
        net = load_qat(model, stage.target, record["qat"]["timesteps"], qat_path, record["weights"],
                       record.get("readout_weights"))
        return Opened(qat_tracker(net, model))
    graph = load_graph(models / f"siamsnn_{stage.config}_{stage.target}.pt")
    opts = ChipOptions(**readout_of(graph))
    if stage.stage == "float SNN":
        return Opened(chip_tracker(ChipSiamese(graph, None, None, replace(opts, backend="reference")),
                                   tracker_config(graph)))
    target = load_target(stage.target)
    siamese = ChipSiamese(graph, compile_graph(graph, target, CompileOptions()).program, target, opts)
    return Opened(chip_tracker(siamese, tracker_config(graph)), siamese)


def track(stage_tracker: Opened, clip: ClipSeed) -> Arrays:
    """One clip: its boxes and ground truth, and the emulator's seconds and frames (0 off the chip)."""
    split, seed, frames = clip
    made = make_clip(seed, frames, split=split)
    if stage_tracker.siamese is not None:
        stage_tracker.siamese.stats = ChipStats()
    boxes = stage_tracker.tracker.track(made)
    stats = stage_tracker.siamese.stats if stage_tracker.siamese is not None else ChipStats()
    return {"boxes": boxes, "truth": made.boxes, "emulator_s": np.array([stats.wall_s]),
            "frames": np.array([stats.frames])}


def score(stage: Stage, clips: list[ClipSeed], pool: Pool, local: Opened | None = None) -> dict[str, float]:
    """AUC and precision@20 of the stage over `clips` (in clip order), and the chip's emulator seconds per frame.
    `local`: the stage already opened here, for a serial pool (opened if not given)."""
    work = Work({"stage.json": json.dumps(asdict(stage), sort_keys=True).encode()}, open_stage)
    here = None if pool.uses_ray else (local or opened(stage))

    def items(skip: set[int]) -> Iterator[tuple[int, ClipSeed]]:
        return ((k, c) for k, c in enumerate(clips) if k not in skip)

    out = run_chunks(pool, work, track, items, len(clips), here)
    result = otb.ope([o["boxes"] for o in out], [o["truth"] for o in out])
    frames = sum(int(o["frames"][0]) for o in out)
    return {"auc": result.auc, "precision": result.precision,
            "emulator_s": sum(float(o["emulator_s"][0]) for o in out) / max(frames, 1)}
