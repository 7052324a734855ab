"""Reproducible .npz files (the bytes depend only on the arrays: np.savez stamps the current time), and the
safewrite kind of an .npz that names its format in a `format` array, so neurocomp replaces only its own."""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import Mapping

import numpy as np

from neurocomp.safewrite import Kind

# zlib's fastest level: the arrays of a 14,653-core TrueNorth program deflate in 0.65 s instead of level 6's 4.0 s
# (70 % of saving it), into files a little larger; integer tables compress well at any level.
ZIP_LEVEL = 1
ZIP64_FROM = 2 ** 30   # a member streamed in needs zip64 declared up front if it may pass 2 GiB
SAMPLE_BYTES, STORE_ABOVE = 2 ** 20, 0.5   # an array whose first MiB deflates to over half its size is stored


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Arrays in sorted key order, deflated unless their bytes barely deflate (`_deflates`), each member dated
    1980 (zipfile's ZipInfo default) so the bytes depend only on the arrays. Each array streams into its member,
    so saving makes no copy of it in memory."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL) as zf:
        for key in sorted(arrays):
            array = np.ascontiguousarray(arrays[key])
            name = key + ".npy" if _deflates(array) else zipfile.ZipInfo(key + ".npy")   # a ZipInfo is stored
            with zf.open(name, "w", force_zip64=array.nbytes > ZIP64_FROM) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def _deflates(array: np.ndarray) -> bool:
    """Whether the array's first SAMPLE_BYTES deflate to at most STORE_ABOVE of their size. Random 16-bit weights
    (a paper-size benchmark's) deflate to 57 %: 5 s of zlib to save 200 of 480 MB; index tables to 1-35 %."""
    head = array.reshape(-1)[: max(SAMPLE_BYTES // max(array.itemsize, 1), 1)].tobytes()
    return len(head) < SAMPLE_BYTES or len(zlib.compress(head, ZIP_LEVEL)) <= STORE_ABOVE * len(head)


def marked_kind(name: str, format_name: str) -> Kind:
    """safewrite's kind for an .npz whose `format` array holds `format_name`: only such a file may be replaced."""
    def not_ours(path: Path) -> str | None:
        try:
            with zipfile.ZipFile(path) as zf, zf.open("format.npy") as f:
                mark = np.lib.format.read_array(f, allow_pickle=False)
        except Exception:  # zipfile and numpy raise many types on files that are not ours
            return "no format array"
        return None if mark.tolist() == [format_name] else "another format array"

    return Kind(name, False, not_ours)
