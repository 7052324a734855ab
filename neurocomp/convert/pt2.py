"""Load a `torch.export.save` archive (.pt2), refusing the parts that would run code.

Trust model, honestly: `torch.export.load` is documented as unsafe for untrusted files.
It unpickles weights or constants saved "with pickle", custom and opaque objects,
sample inputs that fail a weights-only load and the legacy format, and it loads
AOTInductor native libraries. Before calling it we open the zip ourselves and accept
only what a plain `torch.export.save` of an ordinary module writes: JSON configs whose
payloads are all raw tensor bytes (`use_pickle: false`, `tensor_*` constants), the
program JSON, extra files, and sample inputs that torch's weights-only unpickler
reads. That closes the pickle and native-code paths known in torch 2.13, but the
deserializer is large and was not written for hostile input (it parses symbolic shape
expressions, for one): convert only .pt2 files from a source you trust.
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import torch

from neurocomp.errors import FormatError

_ALLOWED = re.compile(r"(archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id"
                      r"|models/\w+\.json|data/weights/(\w+_weights_config\.json|weight_\d+)"
                      r"|data/constants/(\w+_constants_config\.json|tensor_\d+)"
                      r"|data/sample_inputs/\w+\.pt|extra/[^/]+)")


def load_exported(path: str | Path) -> torch.export.ExportedProgram:
    path = Path(path)
    if path.suffix != ".pt2":
        raise FormatError(f"{path}: expected a .pt2 file written by torch.export.save")
    if not path.is_file():
        raise FormatError(f"{path}: no such file")
    _check_archive(path)
    try:
        return torch.export.load(path)
    except Exception as e:  # the deserializer raises many types on files it cannot read
        raise FormatError(f"{path}: torch.export.load failed: {type(e).__name__}: {' '.join(str(e).split())[:200]}") from None


def _check_archive(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if not n.endswith("/")]
            roots = {n.split("/", 1)[0] for n in names}
            if len(roots) != 1 or any("/" not in n for n in names):
                raise FormatError(f"{path}: not a torch.export archive (expected one root folder)")
            files = {n.split("/", 1)[1]: n for n in names}
            for rel in files:
                if not _ALLOWED.fullmatch(rel):
                    raise FormatError(f"{path}: refused: archive entry {rel!r} is not part of a plain torch.export.save "
                                      f"file (AOTInductor code, pickled or legacy payloads are not loaded)")
            for rel, full in files.items():
                if rel.endswith("_config.json"):
                    _check_config(path, rel, json.loads(z.read(full)))
                elif rel.startswith("data/sample_inputs/"):
                    _check_tensors_only(path, rel, z.read(full))
    except zipfile.BadZipFile:
        raise FormatError(f"{path}: not a .pt2 archive (not a zip file)") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as e:
        raise FormatError(f"{path}: corrupt archive config ({type(e).__name__})") from None


def _check_config(path: Path, rel: str, cfg: dict) -> None:
    for fqn, meta in cfg["config"].items():
        if meta.get("use_pickle") or not meta["path_name"].startswith(("weight_", "tensor_")):
            raise FormatError(f"{path}: refused: {fqn!r} in {rel} is stored with pickle or as a Python object")


def _check_tensors_only(path: Path, rel: str, data: bytes) -> None:
    if not data:
        return
    try:
        torch.load(io.BytesIO(data), weights_only=True)
    except Exception:  # any failure here would make torch retry with full unpickling
        raise FormatError(f"{path}: refused: {rel} holds more than tensors (needs full unpickling)") from None
