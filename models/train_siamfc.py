"""Train SiamFC on synthetic clips (SIAMSNN.md §1.4) and score it with OTB one-pass evaluation.

Recipe as the reference code except for the data: balanced logistic loss on {1, 0} labels
(+1 within ``label_radius`` px), SGD momentum 0.9, weight decay 5e-4, learning rate decayed
geometrically 1e-2 -> 1e-5 per step, pairs <= 100 frames apart with small stretch / shift /
colour augmentation. Every epoch renders fresh training clips (tracking_data, train
photos only), so nothing large is held in memory and the model never sees a clip twice.
Deterministic: fixed seeds, two torch threads.

    python -m neurocomp.models.train_siamfc --config small --epochs 8 -o build/models/siamfc_small.pt

writes the state_dict (``torch.load(..., weights_only=True)``) and ``<out>.json`` with the
config, the options, the training time and the test AUC / precision.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from neurocomp.models.otb import OPEResult, ope
from neurocomp.models.siamfc import CONFIGS, SiamConfig, SiamFC, build
from neurocomp.models.tracker import ann_tracker
from neurocomp.models.tracking_data import Clip, benchmark, sample_pairs


@dataclass(frozen=True)
class TrainOptions:
    epochs: int = 8
    pairs_per_epoch: int = 640
    batch: int = 16
    clips_per_epoch: int = 16
    frames_per_clip: int = 48
    lr: float = 1e-2
    final_lr: float = 1e-5
    weight_decay: float = 5e-4
    momentum: float = 0.9
    seed: int = 0
    threads: int = 2


def balanced_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Logistic loss where positives and negatives each carry weight 0.5 per map (§1.4)."""
    dims = tuple(range(1, labels.dim()))
    pos, neg = labels, 1 - labels
    weight = 0.5 * pos / pos.sum(dims, keepdim=True).clamp(min=1) + 0.5 * neg / neg.sum(dims, keepdim=True).clamp(min=1)
    return F.binary_cross_entropy_with_logits(logits, labels, weight=weight, reduction="none").sum(dims).mean()


def pair_epoch(clips: list[Clip], rng: np.random.Generator, config: SiamConfig, batch: int, steps: int,
               loss_of: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
               optim: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler) -> float:
    """`steps` optimiser steps, each on `batch` fresh (exemplar, search, labels) pairs; the epoch's mean loss."""
    losses = []
    for _ in range(steps):
        z, x, y = (torch.from_numpy(a) for a in sample_pairs(clips, batch, rng, config))
        loss = loss_of(z, x, y)
        optim.zero_grad()
        loss.backward()
        optim.step()
        sched.step()
        losses.append(loss.item())
    return float(np.mean(losses))


def train(config: str | SiamConfig, opts: TrainOptions, log: Callable[[str], None] = print) -> SiamFC:
    """A SiamFC of `config` (a CONFIGS name or a SiamConfig, e.g. models/native.py's) trained by the recipe above."""
    torch.manual_seed(opts.seed)
    torch.set_num_threads(opts.threads)
    model = build(config) if isinstance(config, str) else SiamFC(config)
    steps = opts.pairs_per_epoch // opts.batch
    total = opts.epochs * steps
    optim = torch.optim.SGD(model.parameters(), lr=opts.lr, momentum=opts.momentum, weight_decay=opts.weight_decay)
    decay = (opts.final_lr / opts.lr) ** (1 / max(1, total - 1))
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lambda i: decay**i)
    for epoch in range(opts.epochs):
        start = time.perf_counter()
        clips = benchmark("train", opts.clips_per_epoch, opts.frames_per_clip, seed=opts.seed * 1000 + epoch)
        rng = np.random.default_rng([opts.seed, epoch])
        model.train()
        loss = pair_epoch(clips, rng, model.config, opts.batch, steps, lambda z, x, y: balanced_loss(model(z, x), y),
                          optim, sched)
        log(f"epoch {epoch + 1}/{opts.epochs}: loss {loss:.4f}, lr {sched.get_last_lr()[0]:.2e}, "
            f"{time.perf_counter() - start:.0f} s")
    return model.eval()


def evaluate_result(model: SiamFC, clips: Sequence[Clip]) -> OPEResult:
    tracker = ann_tracker(model)
    return ope([tracker.track(c) for c in clips], [c.boxes for c in clips])


def evaluate(model: SiamFC, clips: Sequence[Clip]) -> tuple[float, float]:
    """(AUC, precision@20) of the SiamFC-3s tracker on ``clips``."""
    result = evaluate_result(model, clips)
    return result.auc, result.precision


def static_baseline(clips: Sequence[Clip]) -> tuple[float, float]:
    """(AUC, precision@20) of a 'tracker' whose box never leaves its first-frame position."""
    result = ope([np.repeat(c.boxes[:1], len(c.boxes), axis=0) for c in clips], [c.boxes for c in clips])
    return result.auc, result.precision


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", choices=sorted(CONFIGS), default="small")
    ap.add_argument("--epochs", type=int, default=TrainOptions.epochs)
    ap.add_argument("--pairs-per-epoch", type=int, default=TrainOptions.pairs_per_epoch)
    ap.add_argument("--batch", type=int, default=TrainOptions.batch)
    ap.add_argument("--seed", type=int, default=TrainOptions.seed)
    ap.add_argument("--eval-clips", type=int, default=10, help="test clips scored after training (0: skip)")
    ap.add_argument("--eval-frames", type=int, default=60)
    ap.add_argument("-o", "--out", default=None, help="default build/models/siamfc_<config>.pt")
    args = ap.parse_args()
    opts = TrainOptions(epochs=args.epochs, pairs_per_epoch=args.pairs_per_epoch, batch=args.batch, seed=args.seed)
    out = Path(args.out or f"build/models/siamfc_{args.config}.pt")
    start = time.perf_counter()
    model = train(args.config, opts, log=lambda line: print(line, flush=True))
    seconds = round(time.perf_counter() - start, 1)
    record = {"config": model.config.to_json(), "train": asdict(opts), "train_seconds": seconds}
    if args.eval_clips:
        clips = benchmark("test", args.eval_clips, args.eval_frames, seed=0)
        auc, prec = evaluate(model, clips)
        base_auc, base_prec = static_baseline(clips)
        record["test"] = {"clips": args.eval_clips, "frames": args.eval_frames, "auc": auc, "precision": prec,
                          "static_auc": base_auc, "static_precision": base_prec}
        print(f"test ({args.eval_clips} clips x {args.eval_frames} frames): AUC {auc:.3f}, precision@20 {prec:.3f}; "
              f"static box: AUC {base_auc:.3f}, precision@20 {base_prec:.3f}")
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out)
    out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"trained in {record['train_seconds']} s; wrote {out} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
