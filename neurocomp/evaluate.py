"""`neurocomp eval`: classification accuracy, spikes and energy per sample of a compiled program over a dataset,
in chunks of samples (serially or on Ray, neurocomp.scale), read from the .npz chunk by chunk.

Chunk k of `chunk` samples runs with seed + k, so the numbers depend on the chunk size, never on how many workers
ran the chunks or in which order they finished: the driver adds the chunks up in index order.
"""
from __future__ import annotations

import hashlib
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from neurocomp.errors import FormatError, UserError
from neurocomp.npz import marked_kind, write_npz
from neurocomp.program import Program
from neurocomp.safewrite import write_file
from neurocomp.scale import Arrays, ChunkStore, Pool, run_chunks, work_of

EVAL_FORMAT = "neurocomp.eval"


@dataclass(frozen=True)
class EvalOptions:
    labels: str = "labels"
    chunk: int = 64
    backend: str = "emulator"
    ticks: int | None = None
    seed: int = 0


def _member(zf: zipfile.ZipFile, path: Path, key: str) -> zipfile.ZipInfo:
    try:
        return zf.getinfo(key + ".npy")
    except KeyError:
        raise UserError(f"{path}: no array {key!r} (it holds {sorted(n.removesuffix('.npy') for n in zf.namelist())})") from None


def npz_header(path: Path, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """An array's shape and dtype, read from its header only."""
    try:
        with zipfile.ZipFile(path) as zf, zf.open(_member(zf, path, key)) as f:
            shape, fortran, dtype = _read_header(f)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise FormatError(f"{path}: not a readable .npz ({type(exc).__name__}: {exc})") from None
    if fortran or dtype.hasobject:
        raise FormatError(f"{path}: array {key!r} is Fortran-ordered or holds objects; save it with np.savez")
    return shape, dtype


def _read_header(f: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    fmt = np.lib.format
    version = fmt.read_magic(f)
    return (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(f)


def npz_rows(path: Path, key: str, chunk: int, skip: set[int]) -> Iterator[tuple[int, np.ndarray]]:
    """(k, rows k*chunk ...) of one array, read from the archive chunk by chunk (chunks in `skip` read past)."""
    with zipfile.ZipFile(path) as zf, zf.open(_member(zf, path, key)) as f:
        shape, _, dtype = _read_header(f)
        row_bytes = math.prod(shape[1:]) * dtype.itemsize
        for k in range(math.ceil(shape[0] / chunk)):
            n = min(chunk, shape[0] - k * chunk)
            data = f.read(n * row_bytes)
            if len(data) != n * row_bytes:
                raise FormatError(f"{path}: array {key!r} ends early")
            if k not in skip:
                yield k, np.frombuffer(data, dtype).reshape((n, *shape[1:]))


def _keys(program: Program, path: Path) -> dict[str, str]:
    """Input name -> its key in the .npz (as `run`: 'input' for a single input, else the name)."""
    names = [name for name, _ in program.netlist.inputs]
    if len(names) == 1:
        with zipfile.ZipFile(path) as zf:
            return {names[0]: "input" if "input.npy" in zf.namelist() else names[0]}
    return {n: n for n in names}


def check_data(program: Program, path: Path, opts: EvalOptions) -> tuple[int, dict[str, str]]:
    """Samples in the dataset and the input keys, or UserError before any work: a missing key, a shape that
    is not the program's input (analog (N, *shape) or spikes (N, T, *shape)), labels that are not (N,) integers."""
    if not zipfile.is_zipfile(path):
        raise FormatError(f"{path}: not an .npz archive" if path.is_file() else f"input file {path} not found")
    keys = _keys(program, path)
    counts = set()
    for name, shape in program.netlist.inputs:
        got, _ = npz_header(path, keys[name])
        if tuple(got[1:]) != tuple(shape) and tuple(got[2:]) != tuple(shape):
            raise UserError(f"{path}: {keys[name]!r} has shape {got}; the program's input {name!r} takes "
                            f"(samples, {', '.join(map(str, shape))}) or (samples, ticks, {', '.join(map(str, shape))})")
        counts.add(got[0])
    labels, dtype = npz_header(path, opts.labels)
    if len(labels) != 1 or dtype.kind not in "iu" or {labels[0]} != counts:
        raise UserError(f"{path}: labels {opts.labels!r} have shape {labels} ({dtype}); expected ({min(counts)},) integers")
    if not counts or min(counts) == 0:
        raise UserError(f"{path}: no samples")
    return min(counts), keys


def classes(output: np.ndarray) -> np.ndarray:
    """Class per sample: the read-out's last potential, or the output spike counts."""
    return output[:, -1].argmax(-1) if output.dtype.kind == "f" else output.sum(axis=1).argmax(-1)


def eval_chunk(program: Program, payload: tuple[dict[str, np.ndarray], EvalOptions, int]) -> Arrays:
    """One chunk: predictions and recorded spikes per sample, the chip's spikes and energy summed over the chunk
    (shape (1,), as a chunk file gives them back)."""
    inputs, opts, k = payload
    result = program.run(inputs, backend=opts.backend, ticks=opts.ticks, seed=opts.seed + k)
    n = len(result.output)
    spikes = sum((v.reshape(n, -1).sum(axis=1, dtype=np.int64) for v in result.spikes.values()), np.zeros(n, np.int64))
    energy = result.energy or {}
    return {"prediction": classes(result.output).astype(np.int64), "spikes": spikes,
            "chip_spikes": np.array([result.summary.get("counts", {}).get("spikes", 0.0)]),
            "energy_j": np.array([energy.get("per_inference_j", 0.0) * n]),
            "dynamic_j": np.array([energy.get("dynamic_per_inference_j", 0.0) * n])}


def run_key(program_dir: Path, data: Path, opts: EvalOptions, work_key: str) -> str:
    """What a chunk file must match to be reused: program, data bytes, options."""
    h = hashlib.sha256(json.dumps([work_key, opts.__dict__], sort_keys=True).encode())
    with open(data, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def evaluate(program_dir: Path, data: Path, opts: EvalOptions, pool: Pool, state: Path | None = None,
             on_done: Callable[[int], None] = lambda _k: None, program: Program | None = None) -> tuple[dict[str, Any], Arrays]:
    """The summary (accuracy, spikes and energy per sample) and per-sample arrays (prediction, label, spikes)."""
    program = program or Program.load(program_dir)
    samples, keys = check_data(program, data, opts)
    with np.load(data, allow_pickle=False) as z:
        labels = z[opts.labels].astype(np.int64)
    work = work_of(program_dir, Program.load)
    store = ChunkStore(state, run_key(program_dir, data, opts, work.key)) if state is not None else None

    def items(skip: set[int]) -> Iterator[tuple[int, Any]]:
        streams = {name: npz_rows(data, key, opts.chunk, skip) for name, key in keys.items()}
        for parts in zip(*streams.values()):
            k = parts[0][0]
            yield k, ({name: rows for name, (_, rows) in zip(streams, parts)}, opts, k)

    chunks = run_chunks(pool, work, eval_chunk, items, math.ceil(samples / opts.chunk), program, store, on_done)
    per_sample = {"prediction": np.concatenate([c["prediction"] for c in chunks]), "label": labels,
                  "spikes": np.concatenate([c["spikes"] for c in chunks])}
    total = lambda key: float(sum(float(c[key][0]) for c in chunks))  # noqa: E731 - chunk order: the same sum every run
    summary = {"samples": samples, "accuracy": float((per_sample["prediction"] == labels).mean()),
               "correct": int((per_sample["prediction"] == labels).sum()),
               "spikes_per_sample": float(per_sample["spikes"].mean()),
               "chip_spikes_per_sample": total("chip_spikes") / samples,
               "energy_per_sample_j": total("energy_j") / samples, "dynamic_per_sample_j": total("dynamic_j") / samples,
               "chunks": len(chunks), "chunk": opts.chunk, "backend": opts.backend, "seed": opts.seed}
    return summary, per_sample


EVAL_KIND = marked_kind("neurocomp eval output .npz", EVAL_FORMAT)


def write_eval(path: Path, per_sample: Arrays, inputs: list[Path]) -> None:
    """Per-sample prediction, label and recorded spikes, reproducibly (the same bytes for the same numbers)."""
    write_file(path, EVAL_KIND, lambda tmp: write_npz(tmp, {**per_sample, "format": np.array([EVAL_FORMAT])}), inputs)
