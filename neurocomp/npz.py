"""Reproducible .npz files (the bytes depend only on the arrays: np.savez stamps the current time), and the
safewrite kind of an .npz that names its format in a `format` array, so neurocomp replaces only its own."""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import Mapping

import numpy as np

from neurocomp.memory import require
from neurocomp.safewrite import Kind

# zlib's fastest level: the arrays of a 14,653-core TrueNorth program deflate in 0.65 s instead of level 6's 4.0 s
# (70 % of saving it), into files a little larger; integer tables compress well at any level.
ZIP_LEVEL = 1
ZIP64_FROM = 2 ** 30   # a member streamed in needs zip64 declared up front if it may pass 2 GiB
SAMPLE_BYTES, STORE_ABOVE = 2 ** 20, 0.5   # an array whose first MiB deflates to over half its size is stored
# write_npz's progressions: the member-name mark (KEY.progression.DTYPE), the shortest array stored so, and the block
# the check compares at a time. uint64 is left out: its values need not fit the int64 the check computes in.
PROGRESSION, PROGRESSION_MIN, PROGRESSION_BLOCK = ".progression.", 1 << 12, 1 << 20
INTEGER_NAMES = frozenset(np.dtype(t).name for t in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                                                     np.uint32))


def write_npz(path: Path, arrays: Mapping[str, np.ndarray], progressions: bool = False) -> None:
    """Arrays in sorted key order, deflated unless their bytes barely deflate (`_deflates`), each member dated
    1980 (zipfile's ZipInfo default) so the bytes depend only on the arrays. Each array streams into its member,
    so saving makes no copy of it in memory. `progressions`: a long 1-D integer array that is an arithmetic
    progression (a constant one too) is stored as its first value, step and length (`read_npz` expands it): a
    paper-size program's edge axons and delays can be 4.5 x 10^8 such bytes, 2.4 s of zlib."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL) as zf:
        for key in sorted(arrays):
            array = np.ascontiguousarray(arrays[key])
            if progressions and _progression(array):
                key, array = f"{key}{PROGRESSION}{array.dtype.name}", np.array([array[0], array[1] - array[0],
                                                                               array.size], dtype=np.int64)
            name = key + ".npy" if _deflates(array) else zipfile.ZipInfo(key + ".npy")   # a ZipInfo is stored
            with zf.open(name, "w", force_zip64=array.nbytes > ZIP64_FROM) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz that write_npz wrote, progressions expanded."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for key in [k for k in arrays if PROGRESSION in k]:
        name, dtype = key.rsplit(PROGRESSION, 1)
        spec = arrays.pop(key)
        if spec.shape != (3,) or spec.dtype != np.int64 or spec[2] < 0 or dtype not in INTEGER_NAMES:
            raise ValueError(f"member {key!r} is not a progression write_npz writes")
        first, step, size = (int(v) for v in spec)
        require(f"array {name!r} ({size:,} values)", 8 * size, "the file names more values than this machine holds")
        arrays[name] = (first + step * np.arange(size, dtype=np.int64)).astype(dtype)
    return arrays


def _progression(array: np.ndarray) -> bool:
    """Is the array long, 1-D, integer and an arithmetic progression? Checked a block at a time from the start, so
    an array that is not one (nearly all) costs one block."""
    if array.ndim != 1 or array.dtype.name not in INTEGER_NAMES or array.size < PROGRESSION_MIN:
        return False
    first, step = int(array[0]), int(array[1]) - int(array[0])
    for lo in range(0, array.size, PROGRESSION_BLOCK):
        block = array[lo:lo + PROGRESSION_BLOCK].astype(np.int64)
        if not np.array_equal(block, first + step * np.arange(lo, lo + block.size, dtype=np.int64)):
            return False
    return True


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
