"""neurocomp.npz: the same arrays give the same bytes; an array that barely deflates is stored, the others deflated;
progressions are stored as three numbers and read back whole."""
from __future__ import annotations

import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from neurocomp.npz import PROGRESSION_MIN, read_npz, write_npz


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"ids": np.repeat(np.arange(1000, dtype=np.int32), 600),
            "noise": rng.integers(-2 ** 15, 2 ** 15, 2 ** 20, dtype=np.int16),
            "small": rng.random(10), "empty": np.zeros((0, 3)), "format": np.array(["neurocomp.test"])}


def test_same_arrays_same_bytes_and_a_round_trip(tmp_path: Path) -> None:
    arrays = _arrays()
    write_npz(tmp_path / "a.npz", arrays)
    time.sleep(1.1)   # zip stamps seconds / 2: a later write with a clock date would differ
    write_npz(tmp_path / "b.npz", arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz", allow_pickle=False) as z:
        assert sorted(z.files) == sorted(arrays) and all(np.array_equal(z[k], v) for k, v in arrays.items())


def test_random_bytes_are_stored_and_regular_ones_deflated(tmp_path: Path) -> None:
    """2 MiB of uniform 16-bit noise deflates to about 100 %: stored. 2.4 MB of runs of one id: deflated to a few
    KB. Arrays under the 1 MiB sample are always deflated."""
    write_npz(tmp_path / "a.npz", _arrays())
    with zipfile.ZipFile(tmp_path / "a.npz") as zf:
        assert zf.testzip() is None
        info = {i.filename: i for i in zf.infolist()}
    assert info["noise.npy"].compress_type == zipfile.ZIP_STORED
    assert {k: info[k].compress_type for k in ("ids.npy", "small.npy", "empty.npy", "format.npy")} == \
        dict.fromkeys(("ids.npy", "small.npy", "empty.npy", "format.npy"), zipfile.ZIP_DEFLATED)
    assert info["ids.npy"].compress_size < info["ids.npy"].file_size / 100
    assert {i.date_time for i in info.values()} == {(1980, 1, 1, 0, 0, 0)}


def test_progressions_are_three_numbers_and_read_back_whole(tmp_path: Path) -> None:
    """Long integer progressions (rising, falling, constant) become KEY.progression.DTYPE members of 3 int64s;
    a short one, a float one, one broken in its last block and a 2-D one stay as they are; read_npz gives all back."""
    n = PROGRESSION_MIN + 5
    broken = np.arange(3 * 2 ** 20, dtype=np.int64)
    broken[-1] += 1
    arrays = {"axon": np.arange(7, 7 + n, dtype=np.int32), "down": np.arange(n, dtype=np.int16)[::-1] * 3,
              "delay": np.ones(n, np.int64), "short": np.arange(PROGRESSION_MIN - 1), "real": np.arange(n, dtype=float),
              "broken": broken, "grid": np.ones((n, 2), np.int8), "u8": np.full(n, 255, np.uint8)}
    write_npz(tmp_path / "a.npz", arrays, progressions=True)
    with zipfile.ZipFile(tmp_path / "a.npz") as zf:
        names = sorted(zf.namelist())
    assert names == sorted(["axon.progression.int32.npy", "delay.progression.int64.npy", "down.progression.int16.npy",
                            "u8.progression.uint8.npy", "short.npy", "real.npy", "broken.npy", "grid.npy"])
    with np.load(tmp_path / "a.npz") as z:
        assert z["axon.progression.int32"].tolist() == [7, 1, n] and z["down.progression.int16"].tolist() == \
            [3 * (n - 1), -3, n]
    back = read_npz(tmp_path / "a.npz")
    assert sorted(back) == sorted(arrays)
    for k, v in arrays.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v), k
    write_npz(tmp_path / "b.npz", arrays)   # the default writes every array as it is
    with zipfile.ZipFile(tmp_path / "b.npz") as zf:
        assert not any(".progression." in name for name in zf.namelist())


def test_a_forged_progression_is_refused(tmp_path: Path) -> None:
    """A member named as a progression that write_npz would not write: a ValueError (the loader's FormatError)."""
    for member in ({"x.progression.int32": np.array([1, 2], np.int64)},
                   {"x.progression.float64": np.array([0, 1, 5], np.int64)},
                   {"x.progression.int32": np.array([0, 1, -5], np.int64)}):
        write_npz(tmp_path / "f.npz", member)
        with pytest.raises(ValueError, match="not a progression write_npz writes"):
            read_npz(tmp_path / "f.npz")
