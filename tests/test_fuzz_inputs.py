"""Loader fuzzing: whatever a user hands neurocomp as a model (.pt, .nir) or run input (.npz), it either
loads or is refused with one of neurocomp.errors' UserErrors; any other exception is a bug.

Inputs are mutations of small valid files: flipped, cut and inserted bytes; for .pt, a valid save_graph
dict with fields swapped for random tensors (shapes, dtypes, NaN/inf), numbers and strings; for .nir,
HDF5 datasets replaced by random arrays; for run inputs, .npz files with random dtypes, shapes and values.
Built-in target specs with values swapped for random TOML literals go through load_target the
same way. The default run takes a few hundred examples; `-m slow` runs over 10,000.
"""
from __future__ import annotations

import atexit
import io
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurocomp.cli import _load_inputs
from neurocomp.errors import UserError
from neurocomp.frontend import graph_to_dict, load_graph, load_nir, save_nir
from neurocomp.program import load
from neurocomp.target import load_spec, load_target
from netlib import integer_cnn

FAST = {"pt": 150, "nir": 80, "npz": 120, "spec": 120}
SLOW = {"pt": 4000, "nir": 3000, "npz": 3200, "spec": 2000}   # 12,200 in all
DTYPES = ("bool", "int8", "uint8", "int64", "float16", "float32", "float64", "complex64", "<U3", "datetime64[s]")
SPECIALS = (0.0, -1.0, 1.0, 0.5, 2.0, 1e308, -1e308, 5e-324, math.nan, math.inf, -math.inf)


def _settings(n: int) -> settings:
    return settings(max_examples=n, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _refused_or_loaded(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except UserError:
        pass


# One scratch folder per process (hypothesis examples cannot take pytest's function-scoped tmp_path).
SCRATCH = Path(tempfile.mkdtemp(prefix="nc_fuzz_"))
atexit.register(shutil.rmtree, SCRATCH, True)


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with a few bytes flipped, a span cut out or random bytes inserted, or cut short."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(("flip", "cut", "insert", "truncate")))
        at = draw(st.integers(0, max(len(buf) - 1, 0)))
        if kind == "flip" and buf:
            buf[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del buf[at:at + draw(st.integers(1, 64))]
        elif kind == "insert":
            buf[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            del buf[at:]
    return bytes(buf)


@st.composite
def arrays(draw: st.DrawFn, max_dims: int = 5) -> np.ndarray:
    """Random dtype, shape (sizes 0..4) and values, mostly the special ones."""
    shape = tuple(draw(st.lists(st.integers(0, 4), max_size=max_dims)))
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    values = np.array(draw(st.lists(st.sampled_from(SPECIALS), min_size=1, max_size=4)))
    flat = np.resize(values, math.prod(shape))
    if dtype.kind in "biu":
        flat = np.nan_to_num(flat, nan=0.0, posinf=1.0, neginf=-1.0).clip(-100, 100)
    if dtype.kind == "M":
        flat = np.zeros(flat.size)
    with np.errstate(all="ignore"):
        return (flat.astype(str) if dtype.kind == "U" else flat).astype(dtype).reshape(shape)


@st.composite
def tensors(draw: st.DrawFn) -> torch.Tensor:
    """Random tensors of every dtype torch holds (bool, ints, floats; complex, strings, dates become float)."""
    a = draw(arrays(4))
    if a.dtype.kind in "UMc":
        a = a.real.astype(np.float64) if a.dtype.kind == "c" else np.zeros(a.shape)
    return torch.from_numpy(np.ascontiguousarray(a))


@st.composite
def graph_dicts(draw: st.DrawFn, base: dict) -> dict:
    """A valid save_graph dict with one to three fields replaced by random values of random types."""
    d = {**base, "nodes": [dict(n) for n in base["nodes"]], "edges": [list(e) for e in base["edges"]]}
    for _ in range(draw(st.integers(1, 3))):
        node = draw(st.sampled_from(d["nodes"]))
        key = draw(st.sampled_from(sorted(node)))
        node[key] = draw(st.one_of(
            st.builds(lambda: None), st.integers(-2 ** 40, 2 ** 40), st.sampled_from(SPECIALS), st.text(max_size=5),
            st.lists(st.integers(-3, 10 ** 6), max_size=4), tensors()))
    if draw(st.booleans()):
        d["edges"] = draw(st.permutations(d["edges"]))[:draw(st.integers(0, len(d["edges"])))]
    return d


@pytest.fixture(scope="module")
def pt_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save(graph_to_dict(integer_cnn()), buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def nir_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("nir") / "cnn.nir"
    save_nir(integer_cnn(), path, bias_timing="early")
    return path


@pytest.fixture(scope="module")
def program_dir(tmp_path_factory) -> Path:
    from neurocomp.cli import main

    src = tmp_path_factory.mktemp("prog")
    torch.save(graph_to_dict(integer_cnn()), src / "cnn.pt")
    assert main(["compile", str(src / "cnn.pt"), "--target", "loihi", "-o", str(src / "p"), "--json"]) == 0
    return src / "p"


def _fuzz_pt_bytes(pt_bytes: bytes, n: int) -> None:
    @_settings(n)
    @given(st.one_of(mutated(pt_bytes), st.builds(_saved, graph_dicts(torch.load(io.BytesIO(pt_bytes), weights_only=True)))))
    def check(data: bytes) -> None:
        path = SCRATCH / "m.pt"
        path.write_bytes(data)
        _refused_or_loaded(lambda: load_graph(path))

    check()


def _saved(d: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(d, buf)
    return buf.getvalue()


def _fuzz_nir(nir_path: Path, n: int) -> None:
    with h5py.File(nir_path, "r") as f:
        names: list[str] = []
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)

    @_settings(n)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        path = SCRATCH / "m.nir"
        if data.draw(st.booleans()):
            path.write_bytes(data.draw(mutated(nir_path.read_bytes())))
        else:
            path.write_bytes(nir_path.read_bytes())
            with h5py.File(path, "a") as f:
                for name in data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)):
                    new = data.draw(arrays(4))
                    del f[name]
                    f.create_dataset(name, data=new.astype("S3") if new.dtype.kind == "U" else
                                     new.astype(np.int64) if new.dtype.kind == "M" else new)
        _refused_or_loaded(lambda: load_nir(path))

    check()


def _fuzz_npz(program_dir: Path, n: int) -> None:
    program = load(program_dir)
    shape = dict(program.netlist.inputs)["x"]

    @_settings(n)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        path = SCRATCH / "in.npz"
        right = (data.draw(st.integers(0, 2)),) + ((data.draw(st.integers(0, 3)),) if data.draw(st.booleans()) else ())
        x = data.draw(st.one_of(arrays(), st.builds(lambda a: np.resize(a, right + shape) if a.size else a, arrays(2))))
        buf = io.BytesIO()
        np.savez(buf, **{data.draw(st.sampled_from(("input", "x", "other"))): x})
        raw = buf.getvalue()
        path.write_bytes(data.draw(mutated(raw)) if data.draw(st.integers(0, 3)) == 0 else raw)

        def run() -> None:
            inputs = _load_inputs(path, ["x"])
            program.run(inputs, ticks=data.draw(st.one_of(st.none(), st.integers(1, 4))))

        _refused_or_loaded(run)

    check()


def test_fuzz_pt_loader(pt_bytes):
    _fuzz_pt_bytes(pt_bytes, FAST["pt"])


def test_fuzz_nir_loader(nir_path):
    _fuzz_nir(nir_path, FAST["nir"])


def test_fuzz_run_inputs(program_dir):
    _fuzz_npz(program_dir, FAST["npz"])




# ------------------------------------------------------------------ target specs

LITERALS = ('"x"', "[1, 2]", "{ a = 1 }", "1e400", "nan", "-inf", "0", "-1", "0.0", "true", "2.5",
            "1" + "0" * 30, "-9223372036854775808", '""', "[]")


@st.composite
def spec_texts(draw: st.DrawFn) -> bytes:
    """A built-in spec with values swapped for random TOML literals, lines dropped, or bytes mutated."""
    lines = load_spec(draw(st.sampled_from(("truenorth", "loihi", "loihi2")))).text.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(("value", "drop", "key")))
        if kind == "value" and "value = " in lines[i]:
            head, _, tail = lines[i].partition("value = ")
            lines[i] = f"{head}value = {draw(st.sampled_from(LITERALS))},{tail.partition(',')[2]}"
        elif kind == "drop":
            del lines[i]
        else:
            lines[i] = draw(st.sampled_from(("[chip]", "[other]", "target = 1", "core = 3", "x = { value = 1, source = \"\" }")))
    text = "\n".join(lines).encode()
    return draw(mutated(text)) if draw(st.integers(0, 4)) == 0 else text


def _fuzz_specs(n: int) -> None:
    @_settings(n)
    @given(spec_texts())
    def check(text: bytes) -> None:
        path = SCRATCH / "spec.toml"
        path.write_bytes(text)
        _refused_or_loaded(lambda: load_target(str(path)))

    check()


def test_fuzz_target_specs():
    _fuzz_specs(FAST["spec"])


@pytest.mark.slow
def test_fuzz_loaders_10k(pt_bytes, nir_path, program_dir):
    _fuzz_pt_bytes(pt_bytes, SLOW["pt"])
    _fuzz_nir(nir_path, SLOW["nir"])
    _fuzz_npz(program_dir, SLOW["npz"])
    _fuzz_specs(SLOW["spec"])
