"""The neurocomp SNN `.pt` format: a Graph as plain dicts, lists, strings and tensors.

    {"format": "neurocomp.snn", "version": 1,
     "nodes": [{"type": "Conv2d", "name": "c1", "weight": <float64 tensor>, ...}, ...],
     "edges": [["in", "c1"], ...], "metadata": {"key": "value", ...}}

Every node dict holds `type`, `name` and the fields of that Graph node class; fields
with a default may be left out. Files are read with `torch.load(weights_only=True)`
only, so a file cannot run code: anything else it pickles is refused. Arrays are
stored as float64 tensors, so a round trip is bitwise exact. save_graph writes under
neurocomp.safewrite: an existing file is replaced only if its `format` field says it is one of these.
"""
from __future__ import annotations

import dataclasses
import os
import pickle
import pickletools
import re
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from neurocomp.errors import FormatError, GraphError
from neurocomp.memory import require
from neurocomp.ir.graph import (IF, LIF, Affine, Conv2d, Correlation, Crop, Flatten, Graph, Input, Node, Output, Readout,
                                Scale, SumPool2d)
from neurocomp.safewrite import Kind, write_file

FORMAT = "neurocomp.snn"
VERSION = 1
NODE_TYPES: dict[str, type[Node]] = {
    cls.__name__: cls for cls in (Input, Output, Affine, Conv2d, Correlation, Crop, SumPool2d, Flatten, Scale, IF, LIF,
                                  Readout)
}


def torch_kind(name: str, fmt: str) -> Kind:
    """A .pt artifact safewrite may replace only when its `format` field says it is one of ours."""
    def not_ours(path: Path) -> str | None:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # torch.load raises many types on files that are not its own
            return "not a readable torch file"
        return None if isinstance(data, dict) and data.get("format") == fmt else f"no format field {fmt!r}"

    return Kind(name, False, not_ours)


SNN_KIND = torch_kind("neurocomp SNN .pt", FORMAT)


def save_graph(graph: Graph, path: str | Path, inputs: Sequence[str | Path] = ()) -> None:
    """Write under the neurocomp.safewrite policy; `inputs`: files the output must not replace or contain."""
    save_torch(graph_to_dict(graph), path, SNN_KIND, inputs)


def save_torch(data: dict, path: str | Path, kind: Kind, inputs: Sequence[str | Path] = ()) -> None:
    """torch.save `data` (its `format` names `kind`) under the safewrite policy, synced before the rename."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            torch.save(data, f)
            f.flush()
            os.fsync(f.fileno())

    write_file(path, kind, write, inputs)


def load_graph(path: str | Path) -> Graph:
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such file")
    require(f"{path} (its unpacked tensors)", _declared_bytes(path))
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load raises many types (KeyError, EOFError, ...) on corrupt input
        raise FormatError(f"{path}: {_load_failure(path, e)}") from None
    try:
        return graph_from_dict(data)
    except FormatError as e:
        raise FormatError(f"{path}: {e}") from None
    except GraphError as e:
        raise GraphError(f"{path}: {e}") from None


def _load_failure(path: Path, e: Exception) -> str:
    """Why torch.load refused: a well-formed pickle the safe unpickler rejects is refused for safety, anything
    else is corruption."""
    msg = str(e)
    if isinstance(e, pickle.UnpicklingError) and "Weights only load failed" in msg and _is_pickle(path):
        found = re.search(r"GLOBAL ([\w.]+)", msg)
        what = f" ({found.group(1)})" if found else ""
        return (f"refused for safety: contains Python objects{what}; neurocomp only loads tensors "
                f"(save the network with neurocomp.frontend.save_graph)")
    return f"not a readable torch file (corrupt or another format: {type(e).__name__})"


def _declared_bytes(path: Path) -> int:
    """What torch.load would unpack: the sizes a torch archive declares for its members (a compressed member
    can be far larger than the file). 0 for anything else, which torch.load then reports."""
    try:
        with zipfile.ZipFile(path) as z:
            return sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return 0


def _is_pickle(path: Path) -> bool:
    """Whether the file (or a torch archive's data.pkl) is a well-formed pickle stream: parsed, never run."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
        else:
            data = path.read_bytes()
        for _ in pickletools.genops(data):
            pass
        return True
    except Exception:  # a corrupt archive or stream raises many types (ValueError, StopIteration, BadZipFile, ...)
        return False


def graph_to_dict(graph: Graph) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "nodes": [_node_to_dict(n) for n in graph.nodes],
        "edges": [[a, b] for a, b in graph.edges],
        "metadata": dict(graph.metadata),
    }


def _node_to_dict(node: Node) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(node).__name__}
    for f in dataclasses.fields(node):
        out[f.name] = _encode(getattr(node, f.name))
    return out


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value, dtype=np.float64))
    if isinstance(value, tuple):
        return [int(v) for v in value]
    return value


def graph_from_dict(d: Any) -> Graph:
    if not isinstance(d, dict):
        raise FormatError(f"expected a dict with format {FORMAT!r}, got {type(d).__name__}")
    if "format" not in d:
        raise FormatError(f"no 'format' key: not a {FORMAT} file (a plain state_dict or checkpoint?)")
    if not isinstance(d["format"], str) or d["format"] != FORMAT:
        raise FormatError(f"format is {d['format']!r}, expected {FORMAT!r}")
    if not _is_int(d.get("version")) or d["version"] != VERSION:
        raise FormatError(f"unsupported {FORMAT} version {d.get('version')!r}; this neurocomp reads version {VERSION}")
    extra = set(d) - {"format", "version", "nodes", "edges", "metadata"}
    if extra:
        raise FormatError(f"unknown top-level keys {sorted(extra, key=str)}")
    nodes = [_node_from_dict(i, n) for i, n in enumerate(_list(d, "nodes"))]
    edges = [_edge(e) for e in _list(d, "edges")]
    metadata = d.get("metadata", {})
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise FormatError("metadata must be a dict of strings to strings")
    return Graph(tuple(nodes), tuple(edges), metadata)


def _list(d: dict, key: str) -> list:
    if not isinstance(d.get(key), list):
        raise FormatError(f"{key!r} must be a list, got {type(d.get(key)).__name__}")
    return d[key]


def _edge(e: Any) -> tuple[str, str]:
    if not (isinstance(e, (list, tuple)) and len(e) == 2 and all(isinstance(x, str) for x in e)):
        raise FormatError(f"edge {e!r} is not a pair of node names")
    return (e[0], e[1])


def _node_from_dict(index: int, nd: Any) -> Node:
    if not isinstance(nd, dict):
        raise FormatError(f"node #{index} is a {type(nd).__name__}, expected a dict")
    kind, name = nd.get("type"), nd.get("name")
    if not isinstance(name, str):
        raise FormatError(f"node #{index} has no string 'name'")
    if not isinstance(kind, str) or kind not in NODE_TYPES:
        raise FormatError(f"node {name!r}: unknown node type {kind!r}; known: {', '.join(NODE_TYPES)}")
    cls = NODE_TYPES[kind]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    extra = set(nd) - set(fields) - {"type"}
    if extra:
        raise FormatError(f"node {name!r} ({kind}): unknown field(s) {sorted(extra, key=str)}")
    missing = [k for k, f in fields.items() if k not in nd and _required(f)]
    if missing:
        raise FormatError(f"node {name!r} ({kind}): missing field(s) {missing}")
    kwargs = {k: _decode(f"node {name!r} ({kind}) field {k!r}", k, fields[k].type, v)
              for k, v in nd.items() if k != "type"}
    return cls(**kwargs)


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _decode(where: str, field: str, annotation: str, value: Any) -> Any:
    """Check a stored value against the Graph field's annotation and convert it."""
    if annotation.endswith(" | None"):
        return None if value is None else _decode(where, field, annotation[: -len(" | None")], value)
    if annotation == "np.ndarray":
        if not isinstance(value, torch.Tensor) or not value.is_floating_point() or value.layout != torch.strided:
            got = f"a {value.dtype} tensor" if isinstance(value, torch.Tensor) else type(value).__name__
            raise FormatError(f"{where}: expected a dense float tensor, got {got}")
        return value.detach().to(torch.float64).numpy()
    if annotation.startswith("tuple[int"):
        low = 0 if field == "padding" else 1  # shapes, kernels and strides are positive
        if not isinstance(value, (list, tuple)) or not all(_is_int(v) and v >= low for v in value):
            raise FormatError(f"{where}: expected a list of ints >= {low}, got {value!r}")
        return tuple(value)
    if annotation == "int":
        if not _is_int(value):
            raise FormatError(f"{where}: expected an int, got {value!r}")
        return value
    if annotation == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise FormatError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation == "str":
        if not isinstance(value, str):
            raise FormatError(f"{where}: expected a string, got {type(value).__name__}")
        return value
    raise TypeError(f"{where}: no decoder for field type {annotation!r}; update ptfile._decode")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
