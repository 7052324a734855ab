"""The compiled artifact: a directory with manifest.json + arrays.npz (+ report.json, report.html).

manifest.json and arrays.npz are byte-identical for the same inputs and options
(sorted keys, fixed zip timestamps, no wall-clock values); report.json also holds
compile times, so it is the one file that differs between runs. A directory is
written in a temporary sibling and renamed into place, so a failed compile leaves
nothing behind.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from neurocomp.errors import FormatError
from neurocomp.ir.netlist import LayerMap, Netlist

SCHEMA = "neurocomp.program"
VERSION = 1
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Placed:
    """Placement as stored in the artifact: per core chip, router x/y, slot in the router."""

    chip: np.ndarray
    x: np.ndarray
    y: np.ndarray
    slot: np.ndarray
    chip_cols: int
    chip_rows: int
    cores_per_router: int
    chips_x: int
    chips_y: int

    def gx(self) -> np.ndarray:
        return (self.chip % self.chips_x) * self.chip_cols + self.x

    def gy(self) -> np.ndarray:
        return (self.chip // self.chips_x) * self.chip_rows + self.y

    @property
    def n_chips(self) -> int:
        return int(np.unique(self.chip).size)

    @property
    def routers_used(self) -> int:
        return int(np.unique(np.stack([self.gx(), self.gy()]), axis=1).shape[1])


@dataclass(frozen=True)
class Program:
    manifest: Mapping[str, Any]
    netlist: Netlist
    placed: Placed


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """An .npz whose bytes depend only on the arrays (np.savez stamps the current time)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def _netlist_arrays(n: Netlist) -> dict[str, np.ndarray]:
    out = {}
    for f in fields(n):
        val = getattr(n, f.name)
        if isinstance(val, np.ndarray):
            out[f"netlist/{f.name}"] = val
        elif f.name in ("params", "syn_tables"):
            out.update({f"netlist/{f.name}/{k}": v for k, v in val.items()})
    for lm in n.layers:
        out[f"layers/{lm.name}/neurons"] = lm.neurons
    return out


def _placed_arrays(p: Placed) -> dict[str, np.ndarray]:
    return {f"placement/{k}": getattr(p, k) for k in ("chip", "x", "y", "slot")}


def _layer_json(lm: LayerMap) -> dict[str, Any]:
    return {"name": lm.name, "shape": list(lm.shape), "kind": lm.kind, "scale": lm.scale, "cores": list(lm.cores),
            "binding": lm.binding, "used": lm.used, "allowed": lm.allowed}


def manifest_for(program_fields: Mapping[str, Any], n: Netlist, p: Placed, arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    digest = hashlib.sha256()
    for key in sorted(arrays):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(arrays[key]).tobytes())
    return {
        "schema": SCHEMA, "version": VERSION, **program_fields, "target": n.target,
        "inputs": [{"name": k, "shape": list(s)} for k, s in n.inputs],
        "outputs": list(n.outputs), "layers": [_layer_json(lm) for lm in n.layers],
        "mesh": {"chip_cols": p.chip_cols, "chip_rows": p.chip_rows, "cores_per_router": p.cores_per_router,
                 "chips_x": p.chips_x, "chips_y": p.chips_y},
        "notes": dict(n.notes), "arrays_sha256": digest.hexdigest(),
    }


def save(program: Program, out_dir: Path, extra: Callable[[Path], None] | None = None) -> None:
    """Write atomically: everything goes to a temporary sibling, then one rename."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        arrays = {**_netlist_arrays(program.netlist), **_placed_arrays(program.placed)}
        write_npz(tmp / "arrays.npz", arrays)
        (tmp / "manifest.json").write_text(json.dumps(program.manifest, indent=1, sort_keys=True) + "\n")
        if extra is not None:
            extra(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def build(fields_: Mapping[str, Any], netlist: Netlist, placed: Placed) -> Program:
    arrays = {**_netlist_arrays(netlist), **_placed_arrays(placed)}
    return Program(manifest_for(fields_, netlist, placed, arrays), netlist, placed)


def load(path: str | Path) -> Program:
    path = Path(path)
    if not (path / "manifest.json").is_file() or not (path / "arrays.npz").is_file():
        raise FormatError(f"{path} is not a compiled program (needs manifest.json and arrays.npz)")
    try:
        man = json.loads((path / "manifest.json").read_text())
        with np.load(path / "arrays.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise FormatError(f"{path}: corrupt program ({exc})") from None
    if man.get("schema") != SCHEMA or man.get("version") != VERSION:
        raise FormatError(f"{path}: unsupported program schema {man.get('schema')!r} v{man.get('version')!r}")
    return Program(man, _netlist_from(man, arrays), _placed_from(man, arrays))


def _netlist_from(man: Mapping[str, Any], a: Mapping[str, np.ndarray]) -> Netlist:
    plain = {f.name: a[f"netlist/{f.name}"] for f in fields(Netlist) if f"netlist/{f.name}" in a}
    sub = lambda pre: {k[len(pre):]: v for k, v in a.items() if k.startswith(pre)}  # noqa: E731
    layers = tuple(LayerMap(d["name"], tuple(d["shape"]), a[f"layers/{d['name']}/neurons"], d["kind"], d["scale"],
                            tuple(d["cores"]), d["binding"], d["used"], d["allowed"]) for d in man["layers"])
    return Netlist(target=man["target"], params=sub("netlist/params/"), syn_tables=sub("netlist/syn_tables/"),
                   inputs=tuple((d["name"], tuple(d["shape"])) for d in man["inputs"]), layers=layers,
                   outputs=tuple(man["outputs"]), notes=man.get("notes", {}), **plain)


def _placed_from(man: Mapping[str, Any], a: Mapping[str, np.ndarray]) -> Placed:
    m = man["mesh"]
    return Placed(a["placement/chip"], a["placement/x"], a["placement/y"], a["placement/slot"], m["chip_cols"],
                  m["chip_rows"], m["cores_per_router"], m["chips_x"], m["chips_y"])
