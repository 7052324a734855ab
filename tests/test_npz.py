"""neurocomp.npz: the same arrays give the same bytes; an array that barely deflates is stored, the others deflated."""
from __future__ import annotations

import time
import zipfile
from pathlib import Path

import numpy as np

from neurocomp.npz import write_npz


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
