"""SiamFC tracking half of SiamSNN: OTB metrics, backbone geometry, synthetic clips, tracker maths."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neurocomp.models import otb
from neurocomp.models.siamfc import CONFIGS, SiamFC, build
from neurocomp.models.tracker import (Tracker, TrackerConfig, ann_tracker, box_centre, crop, exemplar_side)
from neurocomp.models.tracking_data import SPLITS, Clip, load_image, make_clip, make_labels, sample_pairs
from neurocomp.models.train_siamfc import TrainOptions, balanced_loss, static_baseline, train

GT = np.array([[0, 0, 10, 10]] * 4, dtype=float)
# frame 0 is junk (overwritten by GT), then IoU 1/3, 0, 1/2; centre errors 0, 5, 100*sqrt(2), 2.5
PRED = np.array([[50, 50, 3, 3], [5, 0, 10, 10], [100, 100, 10, 10], [0, 0, 10, 5]], dtype=float)


# --- OTB metrics -------------------------------------------------------------------------

def test_iou_and_centre_error_by_hand() -> None:
    a = np.array([[0, 0, 10, 10]] * 4, float)
    b = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [10, 0, 10, 10], [0, 0, 0, 0]], float)
    np.testing.assert_allclose(otb.iou(a, b), [1, 1 / 3, 0, 0])
    np.testing.assert_allclose(otb.centre(a[:1]), [[4.5, 4.5]])
    np.testing.assert_allclose(otb.centre_error(a[:1], np.array([[3, 4, 10, 10.0]])), [5.0])


def test_perfect_track_misses_only_the_strict_tau_1_bin() -> None:
    result = otb.ope([GT], [GT])
    assert result.auc == pytest.approx(20 / 21)  # IoU 1 > tau for every tau but tau = 1
    assert result.precision == 1.0


def test_success_and_precision_by_hand() -> None:
    # IoUs {1, 1/3, 0, 1/2}: tau in {0..0.30} (7 bins) -> 3/4, {0.35..0.45} (3) -> 2/4,
    # {0.5..0.95} (10, strict > at 0.5) -> 1/4, tau = 1 -> 0; centre errors <= 20 px: 3 of 4.
    result = otb.ope([PRED], [GT])
    assert result.auc == pytest.approx((7 * 0.75 + 3 * 0.5 + 10 * 0.25) / 21)
    assert result.precision == pytest.approx(0.75)
    assert result.success[0] == 0.75 and result.success[-1] == 0.0


def test_invalid_ground_truth_ignored_and_sequences_weighted_equally() -> None:
    gt = np.vstack([GT, [[3, 3, 0, 5]]])
    pred = np.vstack([PRED, [[3, 3, 7, 5]]])
    single = otb.ope([PRED], [GT])
    assert otb.ope([pred], [gt]).auc == pytest.approx(single.auc)
    both = otb.ope([PRED, GT[:2]], [GT, GT[:2]])
    assert both.auc == pytest.approx((single.auc + 20 / 21) / 2)
    assert both.precision == pytest.approx((0.75 + 1) / 2)


# --- SiamFC network ------------------------------------------------------------------------

@pytest.mark.parametrize("name, z_emb, x_emb, score", [("full", 6, 22, 17), ("small", 4, 16, 13)])
def test_embedding_and_score_shapes(name: str, z_emb: int, x_emb: int, score: int) -> None:
    model = build(name).eval()
    cfg = model.config
    sizes = (cfg.embed_size(cfg.exemplar_size), cfg.embed_size(cfg.search_size), cfg.score_size())
    assert sizes == (z_emb, x_emb, score)
    with torch.no_grad():
        kz = model.embed(torch.zeros(1, 3, cfg.exemplar_size, cfg.exemplar_size))
        kx = model.embed(torch.zeros(1, 3, cfg.search_size, cfg.search_size))
        assert kz.shape == (1, cfg.channels[-1], z_emb, z_emb)
        assert kx.shape == (1, cfg.channels[-1], x_emb, x_emb)
        assert model.head(kz, kx).shape == (1, 1, score, score)
    if name == "full":
        assert (cfg.exemplar_size, cfg.search_size, cfg.channels) == (127, 255, (96, 256, 384, 384, 256))
        assert cfg.out_scale == 0.001
        assert cfg.score_size(cfg.train_search_size) == 15  # 239 training crop (§1.4)


def test_correlation_head_matches_explicit_loop() -> None:
    torch.manual_seed(0)
    model = SiamFC(CONFIGS["small"])
    kz, kx = torch.randn(2, 3, 2, 2), torch.randn(4, 3, 5, 5)
    out = model.head(kz, kx)
    expected = torch.zeros(4, 1, 4, 4)
    for i in range(4):
        for r in range(4):
            for c in range(4):
                expected[i, 0, r, c] = (kz[i % 2] * kx[i, :, r:r + 2, c:c + 2]).sum() * model.config.out_scale
    torch.testing.assert_close(out, expected)
    with pytest.raises(ValueError):
        model.head(kz, kx[:3])


def test_balanced_loss_weights_positives_and_negatives_equally() -> None:
    labels = torch.tensor([[[[1.0, 0, 0, 0]]]])
    logits = torch.tensor([[[[2.0, -1, -1, -1]]]])
    expected = 0.5 * np.log1p(np.exp(-2.0)) + 0.5 * np.log1p(np.exp(-1.0))
    assert balanced_loss(logits, labels).item() == pytest.approx(expected, rel=1e-6)


# --- synthetic clips -------------------------------------------------------------------------

def test_clips_are_deterministic_and_split_dependent() -> None:
    a, b = make_clip(3, 4, (120, 160), "test"), make_clip(3, 4, (120, 160), "test")
    assert a.frames.shape == (4, 120, 160, 3) and a.frames.dtype == np.uint8 and a.boxes.shape == (4, 4)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    assert not np.array_equal(a.frames, make_clip(4, 4, (120, 160), "test").frames)
    assert not np.array_equal(a.frames, make_clip(3, 4, (120, 160), "train").frames)
    box = a.boxes
    assert (box[:, 2:] > 0).all() and (box[:, :2] >= 0).all()
    assert (box[:, 0] + box[:, 2] <= 160).all() and (box[:, 1] + box[:, 3] <= 120).all()


def test_train_and_test_use_disjoint_photographs() -> None:
    train, test = (set(SPLITS[s][0]) | set(SPLITS[s][1]) for s in ("train", "test"))
    assert not train & test
    fingerprints = {s: {(load_image(n).shape, float(load_image(n).mean())) for n in names}
                    for s, names in (("train", train), ("test", test))}
    assert not fingerprints["train"] & fingerprints["test"]  # no photo under two names (e.g. cat = chelsea)
    for seed in range(6):
        name = make_clip(seed, 1, (96, 128), "test").name
        assert any(n in name for n in test) and not any(n in name for n in train)


def test_sample_pairs_shapes_and_centred_labels() -> None:
    cfg = CONFIGS["small"]
    clips = [make_clip(0, 3, (120, 160), "train")]
    z, x, labels = sample_pairs(clips, 2, np.random.default_rng(0), cfg)
    s = cfg.score_size(cfg.train_search_size)
    assert z.shape == (2, 3, 97, 97) and x.shape == (2, 3, cfg.train_search_size, cfg.train_search_size)
    assert labels.shape == (2, 1, s, s) and z.dtype == x.dtype == labels.dtype == np.float32
    lab = make_labels(cfg)
    c = s // 2  # 16 px = 2 cells: (0, 2) is inside, (2, 1) at sqrt(5) cells is not
    assert lab[c, c] == 1 and lab[c, c + 2] == 1 and lab[c + 2, c + 1] == 0


# --- tracker geometry ------------------------------------------------------------------------

def test_exemplar_side_and_crop_by_hand() -> None:
    # w 40, h 20: context p = 0.5 * 60 = 30 -> sqrt(70 * 50); same as the paper's s(w + 2p')(h + 2p'), p' = (w + h) / 4
    assert exemplar_side(40, 20) == pytest.approx(np.sqrt(3500))
    np.testing.assert_allclose(box_centre(np.array([10, 20, 40, 20])), [29.5, 29.5])
    img = np.stack([*np.meshgrid(np.arange(10.0), np.arange(10.0), indexing="ij"), np.zeros((10, 10))], -1)
    fill = np.array([-1.0, -2.0, -3.0])
    np.testing.assert_allclose(crop(img, np.array([4.5, 4.5]), 10, 10, fill), img, atol=1e-5)
    corner = crop(img, np.array([0.0, 0.0]), 4, 4, fill)  # samples at -1.5, -0.5, 0.5, 1.5
    np.testing.assert_allclose(corner[0, 0], fill)
    np.testing.assert_allclose(corner[3, 3], [1.5, 1.5, 0], atol=1e-5)


def _peak_scorer(offsets: list[np.ndarray], score_size: int):
    """Scores with one Gaussian peak per frame at a given (row, col) offset from the centre cell."""
    r = np.arange(score_size) - (score_size - 1) / 2
    frames = iter(offsets)

    def score(_: object, x: np.ndarray) -> np.ndarray:
        dy, dx = next(frames)
        peak = np.exp(-((r[:, None] - dy) ** 2 + (r[None] - dx) ** 2) / 2)
        return np.repeat(peak[None], len(x), axis=0)

    return score


def test_displacement_maths_on_hand_example() -> None:
    # no window, one scale: a peak 1 cell down, 2 right moves the centre by cells * stride * s_x / X
    cfg = TrackerConfig.from_model(CONFIGS["small"], scale_num=1, window_influence=0.0)
    tracker = Tracker(lambda z: None, _peak_scorer([np.array([1.0, 2.0])], cfg.score_size), cfg)
    frame = np.zeros((200, 200, 3), np.uint8)
    tracker.init(frame, np.array([80, 90, 40, 20]))
    s_x = np.sqrt(3500) * cfg.search_size / cfg.exemplar_size
    assert tracker.x_side == pytest.approx(s_x)
    box = tracker.update(frame)
    step = cfg.stride * s_x / cfg.search_size  # one score cell in image pixels
    half_up_cell = 0.5 * step / cfg.response_up
    np.testing.assert_allclose(box_centre(box), [99.5 + step, 99.5 + 2 * step], atol=half_up_cell + 1e-9)
    np.testing.assert_allclose(box[2:], [40, 20])


def _oracle_tracker(clip: Clip, cfg: TrackerConfig) -> Tracker:
    """A perfect score: a Gaussian at the true centre, highest at the true scale."""
    r = np.arange(cfg.score_size) - (cfg.score_size - 1) / 2
    frame = iter(range(1, len(clip.boxes)))

    def score(_: object, x: np.ndarray) -> np.ndarray:
        t = next(frame)
        true_side = exemplar_side(*clip.boxes[t][2:]) * cfg.search_size / cfg.exemplar_size
        sides = tracker.x_side * cfg.scale_factors
        cells = (box_centre(clip.boxes[t]) - tracker.centre)[None] / (sides[:, None] / cfg.search_size) / cfg.stride
        d2 = (r[None, :, None] - cells[:, 0, None, None]) ** 2 + (r[None, None, :] - cells[:, 1, None, None]) ** 2
        return np.exp(-d2 / 2) * np.exp(-np.log(sides / true_side) ** 2 / 0.01)[:, None, None]

    tracker = Tracker(lambda z: None, score, cfg)
    return tracker


def test_tracker_follows_clip_with_oracle_score() -> None:
    clip = make_clip(1, 30, split="test")
    cfg = TrackerConfig.from_model(CONFIGS["small"])
    result = otb.ope([_oracle_tracker(clip, cfg).track(clip)], [clip.boxes])
    assert result.auc > 0.85 and result.precision == 1.0
    assert result.auc > static_baseline([clip])[0] + 0.3


def test_ann_tracker_runs_and_keeps_first_box() -> None:
    torch.manual_seed(0)
    clip = make_clip(2, 3, (120, 160), "test")
    boxes = ann_tracker(build("small")).track(clip)
    assert boxes.shape == (3, 4) and np.isfinite(boxes).all()
    np.testing.assert_array_equal(boxes[0], clip.boxes[0])


def test_training_is_deterministic_and_saves_a_weights_only_state_dict(tmp_path) -> None:
    opts = TrainOptions(epochs=1, pairs_per_epoch=2, batch=2, clips_per_epoch=1, frames_per_clip=3)
    first, second = (train("small", opts, log=lambda line: None).state_dict() for _ in range(2))
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0)
    torch.save(first, tmp_path / "m.pt")
    model = build("small")
    model.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    torch.testing.assert_close(model.state_dict(), first, rtol=0, atol=0)
