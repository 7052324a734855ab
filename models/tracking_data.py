"""Synthetic single-object tracking clips cut from scikit-image's bundled photographs.

No tracking video ships offline (SIAMSNN.md §6), so clips are composed: a textured object
(a region of one photo under a super-ellipse mask, between an ellipse and a rounded
rectangle) moves over a panning background (another photo) along a smooth random path,
with scale change, rotation, a similar distractor (another region of the same photo),
partial occlusion by a textured bar, illumination change, defocus blur and sensor noise.
The ground-truth box is the axis-aligned box of the object's whole mask (occluded parts
included, as in OTB). Train and test clips draw on disjoint sets of photographs, so the
test benchmark measures generalisation to unseen objects and backgrounds; the "fresh" split's
photos are used by no training, calibration or choice of setting, only by evaluations. Everything is a
pure function of (seed, split, size): same arguments, same pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import skimage.data
from scipy import ndimage

from neurocomp.models.siamfc import SiamConfig
from neurocomp.models.tracker import box_centre, crop, exemplar_side, to_chw

# (object photos, background photos) per split; no photo is shared between splits.
SPLITS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "train": (("astronaut", "coffee", "immunohistochemistry", "motorcycle"),
              ("grass", "brick", "retina", "page", "coins")),
    "test": (("chelsea", "rocket", "camera"),
             ("gravel", "hubble_deep_field", "moon", "text")),
    # Photos no model or setting has seen: evaluation only (benchmarks/tracking_native.py).
    "fresh": (("clock", "colorwheel", "logo"),
              ("cell", "microaneurysms")),
}
DEFAULT_SIZE = (240, 320)
LOG_SCALE_RANGE = 0.35  # object scale stays within exp(+-0.35) = 0.70-1.42 of its base size


@dataclass(frozen=True, eq=False)
class Clip:
    frames: np.ndarray  # (T, H, W, 3) uint8
    boxes: np.ndarray  # (T, 4) float64, (left, top, width, height), 0-based pixels
    name: str = ""


@lru_cache(maxsize=None)
def load_image(name: str) -> np.ndarray:
    """A bundled photo as read-only (H, W, 3) float32; grey photos are replicated to RGB."""
    img = skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage.data, name)()
    img = np.asarray(img, dtype=np.float32)
    img = np.repeat(img[..., None], 3, axis=-1) if img.ndim == 2 else img[..., :3]
    img.setflags(write=False)
    return img


def _resample(img: np.ndarray, top: float, left: float, zoom: float, shape: tuple[int, int]) -> np.ndarray:
    """Window of ``img`` starting at (top, left) magnified by ``zoom`` to ``shape``; low-pass
    filtered first when shrinking so textures do not alias."""
    if zoom < 1:
        img = ndimage.gaussian_filter(img, (0.5 / zoom, 0.5 / zoom, 0))
    return np.stack([ndimage.affine_transform(img[..., c], (1 / zoom, 1 / zoom), offset=(top, left),
                                              output_shape=shape, order=1, mode="reflect")
                     for c in range(3)], axis=-1)


def _random_view(rng: np.random.Generator, img: np.ndarray, shape: tuple[int, int],
                 zoom_range: tuple[float, float]) -> np.ndarray:
    """A random window of ``img`` resampled to ``shape``, zoomed by at least what fits."""
    zoom = max(shape[0] / img.shape[0], shape[1] / img.shape[1]) * rng.uniform(*zoom_range)
    top = rng.uniform(0, img.shape[0] - shape[0] / zoom)
    left = rng.uniform(0, img.shape[1] - shape[1] / zoom)
    return _resample(img, top, left, zoom, shape) * rng.uniform(0.75, 1.25, 3).astype(np.float32)


def _object_patch(rng: np.random.Generator, img: np.ndarray, size: float, aspect: float) -> np.ndarray:
    """The most textured of four random regions of ``img``, resampled so its geometric-mean
    side is ``size`` px; flat regions (sky, black borders) make untrackable targets."""
    shape = (int(round(size * np.sqrt(aspect))), int(round(size / np.sqrt(aspect))))
    zoom = size / (rng.uniform(0.2, 0.45) * min(img.shape[:2]))
    src = (shape[0] / zoom, shape[1] / zoom)
    corners = rng.uniform(0, 1, (4, 2)) * (img.shape[0] - src[0], img.shape[1] - src[1])
    top, left = max(corners, key=lambda c: img[int(c[0]):int(c[0] + src[0]), int(c[1]):int(c[1] + src[1])].std())
    return _resample(img, top, left, zoom, shape)


def _smooth_walk(rng: np.random.Generator, n: int, dims: int, step: float, sigma: float = 8.0) -> np.ndarray:
    """Integrated low-pass noise starting at 0 whose per-frame step has RMS ``step``."""
    v = ndimage.gaussian_filter1d(rng.normal(size=(n, dims)), sigma, axis=0)
    v *= step / np.sqrt(np.mean(v**2) + 1e-12)
    return np.cumsum(v, axis=0) - v[0]


def _reflect(x: np.ndarray, lo: np.ndarray | float, hi: np.ndarray | float) -> np.ndarray:
    """Fold ``x`` into [lo, hi] by mirror reflection (a path bouncing off the borders)."""
    period = 2 * (hi - lo)
    y = np.mod(x - lo, period)
    return lo + np.where(y > hi - lo, period - y, y)


def _path(rng: np.random.Generator, n: int, lo: np.ndarray, hi: np.ndarray, speed: float) -> np.ndarray:
    start = rng.uniform(lo, hi)
    return _reflect(start + _smooth_walk(rng, n, 2, speed), lo, hi)


def _paste_object(frame: np.ndarray, patch: np.ndarray, centre: np.ndarray, scale: float, angle: float,
                  exponent: float) -> np.ndarray:
    """Alpha-composite ``patch`` rotated by ``angle`` and scaled by ``scale`` under a
    super-ellipse mask, in place; returns the mask's box (left, top, w, h). Callers keep
    the object inside the frame, so the mask is never empty."""
    hh, hw = scale * patch.shape[0] / 2, scale * patch.shape[1] / 2
    r = int(np.ceil(np.hypot(hh, hw))) + 1
    y0, x0 = (np.maximum(np.floor(centre) - r, 0)).astype(int)
    y1, x1 = np.minimum(np.floor(centre) + r + 1, frame.shape[:2]).astype(int)
    dy, dx = np.mgrid[y0:y1, x0:x1] - centre[:, None, None]
    c, s = np.cos(angle), np.sin(angle)
    u, v = (c * dx + s * dy) / hw, (c * dy - s * dx) / hh
    radius = (np.abs(u) ** exponent + np.abs(v) ** exponent) ** (1 / exponent)
    alpha = np.clip((1 - radius) * min(hh, hw) + 0.5, 0, 1)[..., None]
    coords = ((v + 1) / 2 * patch.shape[0] - 0.5, (u + 1) / 2 * patch.shape[1] - 0.5)
    colour = np.stack([ndimage.map_coordinates(patch[..., k], coords, order=1, mode="nearest") for k in range(3)], -1)
    win = frame[y0:y1, x0:x1]
    win += alpha * (colour - win)
    rows, cols = np.nonzero(alpha[..., 0] >= 0.5)
    return np.array([x0 + cols.min(), y0 + rows.min(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1], float)


@dataclass(frozen=True)
class _Actor:
    """A moving object: appearance plus per-frame centre (cy, cx), scale and angle."""

    patch: np.ndarray
    exponent: float
    centres: np.ndarray
    scales: np.ndarray
    angles: np.ndarray

    def paste(self, frame: np.ndarray, t: int) -> np.ndarray:
        return _paste_object(frame, self.patch, self.centres[t], self.scales[t], self.angles[t], self.exponent)


def _actor(rng: np.random.Generator, img: np.ndarray, n: int, size: tuple[int, int], base: float,
           aspect: float) -> _Actor:
    patch = _object_patch(rng, img, base, aspect)
    scales = np.exp(_reflect(rng.uniform(-0.2, 0.2) + _smooth_walk(rng, n, 1, 0.012)[:, 0],
                             -LOG_SCALE_RANGE, LOG_SCALE_RANGE))
    rotate = rng.random() < 0.5
    angles = _reflect(rng.uniform(-0.3, 0.3) + _smooth_walk(rng, n, 1, 0.02)[:, 0], -0.6, 0.6) * rotate
    margin = np.exp(LOG_SCALE_RANGE) * np.hypot(*patch.shape[:2]) / 2 + 2
    hi = np.array(size, float) - 1 - margin
    centres = _path(rng, n, np.array([margin, margin]), hi, rng.uniform(1.0, 5.0))
    return _Actor(patch, rng.uniform(2.0, 8.0), centres, scales, angles)


def _occluder(rng: np.random.Generator, img: np.ndarray, n: int, target: _Actor) -> tuple[np.ndarray, np.ndarray, int]:
    """A textured bar sweeping across the target once: (texture, per-frame top-left, start frame)."""
    ph, pw = target.patch.shape[:2]
    shape = (int(rng.uniform(0.6, 1.0) * ph) + 1, int(rng.uniform(0.3, 0.6) * pw) + 1)
    texture = _random_view(rng, img, shape, (1.0, 1.5))
    length = int(min(n - 1, rng.integers(12, 31)))
    start = int(rng.integers(1, n - length + 1))
    sweep = (pw / 2 + shape[1] / 2) * np.linspace(-1.2, 1.2, length)
    offset = np.stack([np.full(length, rng.uniform(-0.4, 0.4) * ph), sweep], axis=1)
    top_left = target.centres[start:start + length] + offset - np.array(shape) / 2
    return texture, np.round(top_left).astype(int), start


def _paste_block(frame: np.ndarray, texture: np.ndarray, top_left: np.ndarray) -> None:
    """Opaque paste of ``texture`` at integer ``top_left``, clipped to the frame."""
    y0, x0 = np.maximum(top_left, 0)
    y1, x1 = np.minimum(top_left + texture.shape[:2], frame.shape[:2])
    if y1 > y0 and x1 > x0:
        frame[y0:y1, x0:x1] = texture[y0 - top_left[0]:y1 - top_left[0], x0 - top_left[1]:x1 - top_left[1]]


def _photometric(rng: np.random.Generator, n: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame gain across columns (T, W) and defocus sigma (T,): slow sinusoids."""
    t = np.arange(n)
    level = 1 + rng.uniform(0, 0.35) * np.sin(2 * np.pi * t / rng.uniform(30, 120) + rng.uniform(0, 2 * np.pi))
    gradient = rng.uniform(-0.3, 0.3) * (np.arange(width) / width - 0.5)
    blur = rng.uniform(1.0, 2.5) * (rng.random() < 0.5)
    sigma = blur * np.maximum(0, np.sin(2 * np.pi * t / rng.uniform(20, 60) + rng.uniform(0, 2 * np.pi))) ** 4
    return level[:, None] * (1 + gradient[None]), sigma


def make_clip(seed: int, n_frames: int, size: tuple[int, int] = DEFAULT_SIZE, split: str = "train") -> Clip:
    """One synthetic clip; a pure function of its arguments."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
    rng = np.random.default_rng([seed, list(SPLITS).index(split)])
    objects, backgrounds = SPLITS[split]
    obj_name, bg_name = objects[rng.integers(len(objects))], backgrounds[rng.integers(len(backgrounds))]
    occ_name = [b for b in backgrounds if b != bg_name][rng.integers(len(backgrounds) - 1)]
    height, width = size
    pad = max(size) // 8
    canvas = _random_view(rng, load_image(bg_name), (height + 2 * pad, width + 2 * pad), (1.0, 2.0))
    pan = np.round(_path(rng, n_frames, np.zeros(2), np.full(2, 2.0 * pad), 0.8)).astype(int)
    base, aspect = rng.uniform(0.1, 0.23) * min(size), np.exp(rng.uniform(-0.7, 0.7))
    target = _actor(rng, load_image(obj_name), n_frames, size, base, aspect)
    distractor = _actor(rng, load_image(obj_name), n_frames, size, base, aspect) if rng.random() < 0.5 else None
    occluder = _occluder(rng, load_image(occ_name), n_frames, target) if rng.random() < 0.5 else None
    gain, sigma = _photometric(rng, n_frames, width)
    frames = np.empty((n_frames, height, width, 3), np.uint8)
    boxes = np.empty((n_frames, 4))
    for t in range(n_frames):
        frame = canvas[pan[t, 0]:pan[t, 0] + height, pan[t, 1]:pan[t, 1] + width].copy()
        if distractor is not None:
            distractor.paste(frame, t)
        boxes[t] = target.paste(frame, t)
        if occluder is not None and 0 <= t - occluder[2] < len(occluder[1]):
            _paste_block(frame, occluder[0], occluder[1][t - occluder[2]])
        frame *= gain[t][None, :, None]
        if sigma[t] > 0.3:
            frame = ndimage.gaussian_filter(frame, (sigma[t], sigma[t], 0))
        frame += rng.normal(0, 2.0, frame.shape).astype(np.float32)
        frames[t] = np.clip(frame, 0, 255)
    return Clip(frames, boxes, f"{split}-{seed}-{obj_name}-on-{bg_name}")


def benchmark(split: str, n_clips: int, n_frames: int, seed: int = 0,
              size: tuple[int, int] = DEFAULT_SIZE) -> list[Clip]:
    """``n_clips`` clips with seeds seed * 100_000 + i (disjoint across benchmark seeds)."""
    return [make_clip(seed * 100_000 + i, n_frames, size, split) for i in range(n_clips)]


def make_labels(config: SiamConfig) -> np.ndarray:
    """(s, s) training labels for a centred target: 1 where (distance from the centre cell)
    x stride <= label_radius, else 0 (§1.4; {1, 0} as in siamfc-pytorch's BCE)."""
    s = config.score_size(config.train_search_size)
    r = np.arange(s) - (s - 1) / 2
    return (np.hypot(r[:, None], r[None]) * config.stride <= config.label_radius).astype(np.float32)


def _pair_crop(rng: np.random.Generator, frame: np.ndarray, box: np.ndarray, side: float, out: int,
               augment: bool) -> np.ndarray:
    """Crop centred on the target; with ``augment``: stretch <= 5 %, shift <= 4 px, colour gain."""
    centre = box_centre(box)
    if augment:
        side *= 1 + rng.uniform(-0.05, 0.05)
        centre = centre + rng.uniform(-4, 4, 2) * side / out
    patch = crop(frame, centre, side, out, frame.reshape(-1, 3).mean(axis=0))
    return patch * rng.uniform(0.9, 1.1, 3).astype(np.float32) if augment else patch


def sample_pairs(clips: list[Clip], n: int, rng: np.random.Generator, config: SiamConfig, max_gap: int = 100,
                 augment: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` (exemplar, search) training pairs from frames <= ``max_gap`` apart in one clip.

    Returns exemplar crops (n, 3, Z, Z), search crops (n, 3, X, X) with X = the training
    search size, and labels (n, 1, s, s); float32, raw 0-255 pixels, CHW.
    """
    zs, xs = [], []
    z_size, x_size = config.exemplar_size, config.train_search_size
    for _ in range(n):
        clip = clips[rng.integers(len(clips))]
        count = len(clip.frames)
        i = int(rng.integers(count))
        j = int(rng.integers(max(0, i - max_gap), min(count, i + max_gap + 1)))
        zs.append(_pair_crop(rng, clip.frames[i], clip.boxes[i], exemplar_side(*clip.boxes[i][2:]), z_size, augment))
        x_side = exemplar_side(*clip.boxes[j][2:]) * x_size / z_size
        xs.append(_pair_crop(rng, clip.frames[j], clip.boxes[j], x_side, x_size, augment))
    labels = make_labels(config)
    return to_chw(np.stack(zs)), to_chw(np.stack(xs)), np.repeat(labels[None, None], n, axis=0)
