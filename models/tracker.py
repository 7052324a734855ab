"""SiamFC-3s tracking procedure (SIAMSNN.md §1.3, §1.5) with a pluggable score function.

The tracker owns the geometry (crops, scale pyramid, response upsampling, cosine window,
scale damping); the network is two callables, so the score map can come from the torch
ANN (``ann_tracker``) or, later, from a converted SNN on an emulated chip:

* ``embed_exemplar(z)``: z is the (1, 3, Z, Z) float32 exemplar crop (raw 0-255 pixels);
  returns any state (an embedding, a compiled kernel, ...), computed once per sequence.
* ``score(state, x)``: x is the (S, 3, X, X) float32 search pyramid; returns the (S, s, s)
  response maps, larger = more similar.

Coordinates: images are (H, W, 3); boxes are (left, top, width, height) in 0-based pixel
indices, centre = left + (width - 1) / 2 (the OTB convention, otb.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch
from scipy import ndimage
from torch.nn import functional as F

from neurocomp.models.siamfc import SiamConfig, SiamFC

if TYPE_CHECKING:
    from neurocomp.models.tracking_data import Clip

ExemplarFn = Callable[[np.ndarray], Any]
ScoreFn = Callable[[Any, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class TrackerConfig:
    """Crop geometry of the network plus the SiamFC-3s hyper-parameters (siamfc code values)."""

    exemplar_size: int
    search_size: int
    stride: int
    score_size: int
    context: float = 0.5
    scale_num: int = 3
    scale_step: float = 1.0375
    scale_penalty: float = 0.9745
    response_up: int = 16
    window_influence: float = 0.176
    scale_lr: float = 0.59
    min_scale: float = 0.2
    max_scale: float = 5.0

    @classmethod
    def from_model(cls, config: SiamConfig, **overrides: Any) -> "TrackerConfig":
        return cls(config.exemplar_size, config.search_size, config.stride, config.score_size(), **overrides)

    @property
    def scale_factors(self) -> np.ndarray:
        half = self.scale_num // 2
        return self.scale_step ** np.linspace(-half, half, self.scale_num)


def exemplar_side(width: float, height: float, context: float = 0.5) -> float:
    """s_z = sqrt((w + p)(h + p)), p = context * (w + h): the square region resized to Z."""
    p = context * (width + height)
    return float(np.sqrt((width + p) * (height + p)))


def box_centre(box: np.ndarray) -> np.ndarray:
    """(left, top, w, h) -> (cy, cx)."""
    return np.array([box[1] + (box[3] - 1) / 2, box[0] + (box[2] - 1) / 2])


def crop(image: np.ndarray, centre: np.ndarray, side: float, out_size: int, fill: np.ndarray) -> np.ndarray:
    """Square ``side`` x ``side`` region around ``centre`` (cy, cx) resampled bilinearly to
    ``out_size``; out-of-image pixels take ``fill`` (the frame's mean colour, §1.3).
    Returns (out_size, out_size, 3) float32."""
    step = side / out_size
    grid = (np.arange(out_size) - (out_size - 1) / 2) * step
    rows, cols = np.meshgrid(centre[0] + grid, centre[1] + grid, indexing="ij")
    img = image.astype(np.float32) - fill.astype(np.float32)
    out = np.stack([ndimage.map_coordinates(img[..., c], (rows, cols), order=1, mode="constant", cval=0.0)
                    for c in range(img.shape[2])], axis=-1)
    return out + fill.astype(np.float32)


def to_chw(crops: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) -> (..., 3, H, W) float32, the network layout."""
    return np.ascontiguousarray(np.moveaxis(crops, -1, -3), dtype=np.float32)


def hann_window(size: int) -> np.ndarray:
    w = np.outer(np.hanning(size), np.hanning(size))
    return w / w.sum()


class Tracker:
    """One-pass SiamFC-3s tracker: exemplar from the first frame, never updated."""

    def __init__(self, embed_exemplar: ExemplarFn, score: ScoreFn, config: TrackerConfig) -> None:
        self.embed_exemplar, self.score, self.config = embed_exemplar, score, config
        self.upscale_size = config.response_up * config.score_size
        self.window = hann_window(self.upscale_size)

    def init(self, frame: np.ndarray, box: np.ndarray) -> None:
        cfg = self.config
        box = np.asarray(box, dtype=np.float64)
        self.centre = box_centre(box)
        self.base_size = box[[3, 2]].copy()  # (h, w) at scale 1
        z_side = exemplar_side(box[2], box[3], cfg.context)
        self.base_x = z_side * cfg.search_size / cfg.exemplar_size
        self.scale = 1.0
        self.fill = frame.reshape(-1, frame.shape[-1]).mean(axis=0)
        z = crop(frame, self.centre, z_side, cfg.exemplar_size, self.fill)
        self.state = self.embed_exemplar(to_chw(z)[None])

    @property
    def x_side(self) -> float:
        """Current search-region side s_x in image pixels."""
        return self.base_x * self.scale

    def search_pyramid(self, frame: np.ndarray) -> np.ndarray:
        """(S, 3, X, X) crops at s_x * scale_step^k around the previous centre."""
        cfg = self.config
        return to_chw(np.stack([crop(frame, self.centre, self.x_side * f, cfg.search_size, self.fill)
                                for f in cfg.scale_factors]))

    def update(self, frame: np.ndarray) -> np.ndarray:
        cfg = self.config
        responses = np.asarray(self.score(self.state, self.search_pyramid(frame)), dtype=np.float64)
        best, response = self._pick_scale(self._upsample(responses))
        loc = np.array(np.unravel_index(np.argmax(response), response.shape), dtype=np.float64)
        disp_up = loc - (self.upscale_size - 1) / 2
        factor = cfg.scale_factors[best]
        self.centre = self.centre + disp_up * cfg.stride / cfg.response_up * self.x_side * factor / cfg.search_size
        damped = (1 - cfg.scale_lr) + cfg.scale_lr * factor
        self.scale = float(np.clip(self.scale * damped, cfg.min_scale, cfg.max_scale))
        return self.box

    @property
    def box(self) -> np.ndarray:
        h, w = self.base_size * self.scale
        return np.array([self.centre[1] - (w - 1) / 2, self.centre[0] - (h - 1) / 2, w, h])

    def _upsample(self, responses: np.ndarray) -> np.ndarray:
        """Bicubic x response_up, half-pixel aligned like cv2.resize in the reference code."""
        t = torch.from_numpy(responses)[:, None]
        up = F.interpolate(t, size=(self.upscale_size,) * 2, mode="bicubic", align_corners=False)
        return up[:, 0].numpy()

    def _pick_scale(self, responses: np.ndarray) -> tuple[int, np.ndarray]:
        """Penalise scale changes, take the scale with the highest peak, then blend its
        min-shifted, sum-normalised map with the Hann window (cosine window, §1.5)."""
        cfg = self.config
        penalty = np.full(cfg.scale_num, cfg.scale_penalty)
        penalty[cfg.scale_num // 2] = 1.0
        best = int(np.argmax(responses.reshape(cfg.scale_num, -1).max(axis=1) * penalty))
        r = responses[best] - responses[best].min()
        r = r / (r.sum() + 1e-16)
        return best, (1 - cfg.window_influence) * r + cfg.window_influence * self.window

    def track(self, clip: "Clip", on_frame: Callable[[int], None] | None = None) -> np.ndarray:
        """One-pass evaluation: init on frame 0 with its ground truth; (T, 4), row 0 = ground truth.
        `on_frame(k)` is called after frame k (1, 2, ...) is tracked (progress)."""
        self.init(clip.frames[0], clip.boxes[0])
        boxes = [np.asarray(clip.boxes[0], dtype=np.float64)]
        for k, frame in enumerate(clip.frames[1:], start=1):
            boxes.append(self.update(frame))
            if on_frame is not None:
                on_frame(k)
        return np.stack(boxes)


def ann_tracker(model: SiamFC, **overrides: Any) -> Tracker:
    """Tracker scoring with the torch SiamFC (eval mode, no grad)."""
    model.eval()

    @torch.no_grad()
    def embed(z: np.ndarray) -> torch.Tensor:
        return model.embed(torch.from_numpy(z))

    @torch.no_grad()
    def score(kz: torch.Tensor, x: np.ndarray) -> np.ndarray:
        return model.head(kz, model.embed(torch.from_numpy(x)))[:, 0].numpy()

    return Tracker(embed, score, TrackerConfig.from_model(model.config, **overrides))
