"""OTB one-pass-evaluation metrics, following the GOT-10k toolkit and pysot (SIAMSNN.md §2).

Boxes are (left, top, width, height). Per sequence: frame 1's prediction is replaced by
the ground truth, frames whose ground truth has a non-positive size are dropped, and the
success curve S(tau) = mean_f [IoU_f > tau] (strict) over tau in linspace(0, 1, 21) and the
precision curve P(d) = mean_f [CE_f <= d] over d = 0..50 px are computed. Curves are then
averaged over sequences with equal weight; AUC = mean of the 21 success values and
precision = P(20).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

SUCCESS_THRESHOLDS = np.linspace(0, 1, 21)
PRECISION_THRESHOLDS = np.arange(51, dtype=np.float64)
PRECISION_AT = 20


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of (N, 4) boxes, clipped to [0, 1]; 0 where the union is empty."""
    a, b = np.atleast_2d(a).astype(np.float64), np.atleast_2d(b).astype(np.float64)
    lo = np.maximum(a[:, :2], b[:, :2])
    hi = np.minimum(a[:, :2] + a[:, 2:], b[:, :2] + b[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    union = np.prod(a[:, 2:], axis=1) + np.prod(b[:, 2:], axis=1) - inter
    return np.clip(np.divide(inter, union, out=np.zeros_like(inter), where=union > 0), 0, 1)


def centre(boxes: np.ndarray) -> np.ndarray:
    """(x + (w - 1) / 2, y + (h - 1) / 2)."""
    boxes = np.atleast_2d(boxes).astype(np.float64)
    return boxes[:, :2] + (boxes[:, 2:] - 1) / 2


def centre_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(centre(a) - centre(b), axis=1)


def success_curve(ious: np.ndarray) -> np.ndarray:
    return (np.asarray(ious)[:, None] > SUCCESS_THRESHOLDS[None]).mean(axis=0)


def precision_curve(errors: np.ndarray) -> np.ndarray:
    return (np.asarray(errors)[:, None] <= PRECISION_THRESHOLDS[None]).mean(axis=0)


def sequence_curves(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(success curve (21,), precision curve (51,)) of one sequence."""
    pred, gt = np.array(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ")
    pred[0] = gt[0]
    valid = (gt[:, 2] > 0) & (gt[:, 3] > 0)
    if not valid.any():
        raise ValueError("no frame with a positive ground-truth size")
    pred, gt = pred[valid], gt[valid]
    return success_curve(iou(pred, gt)), precision_curve(centre_error(pred, gt))


@dataclass(frozen=True)
class OPEResult:
    success: np.ndarray  # (21,) mean success curve
    precision_curve: np.ndarray  # (51,) mean precision curve

    @property
    def auc(self) -> float:
        return float(self.success.mean())

    @property
    def precision(self) -> float:
        return float(self.precision_curve[PRECISION_AT])


def ope(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray]) -> OPEResult:
    """One-pass evaluation over sequences, each weighted equally."""
    if len(preds) != len(gts) or not preds:
        raise ValueError(f"{len(preds)} predictions for {len(gts)} sequences")
    curves = [sequence_curves(p, g) for p, g in zip(preds, gts)]
    return OPEResult(np.mean([c[0] for c in curves], axis=0), np.mean([c[1] for c in curves], axis=0))
