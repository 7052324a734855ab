"""Scale-out: run independent chunks of work (samples, clips, grid points) serially or on Ray, with resume.

One code path for both: a task is `fn(opened, payload)` where `opened` is what a program directory opens into
(a Program, a tracker) and `fn` is a module-level function, so a serial run and a Ray run call the same code on the
same chunks and give the same numbers. Chunks may come in groups that share a value prepared once per group (a
sweep point's compiled program: Pool.map_groups). For Ray the program directory's files go into the object store once
(ray.put); each worker process writes them to a private folder and opens them once (cached by digest). Chunks are
submitted lazily with at most two per worker in flight, so the driver streams its input instead of loading it
whole. A task whose worker process dies is retried by Ray (max_retries). With a state folder every finished chunk
is written there atomically (neurocomp.safewrite) and a rerun skips it: an interrupted run resumes without losing
or recounting a chunk. Ray is imported only here, and only when a Pool with workers > 1 or an address starts.
"""
from __future__ import annotations

import hashlib
import pickle
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np

from neurocomp.errors import UserError
from neurocomp.npz import marked_kind, write_npz
from neurocomp.safewrite import Kind, check, write_file

Arrays = dict[str, np.ndarray]
Task = Callable[[Any, Any], Arrays]       # (opened program, chunk payload) -> the chunk's result arrays
Prepare = Callable[[Any, Any], Any]       # (opened program, group payload) -> what the group's chunks share
GroupTask = Callable[[Any, Any, Any], Arrays]   # (opened program, prepared, chunk payload) -> result arrays
MAX_RETRIES = 3                           # Ray re-runs a task this often when its worker process dies
CHUNK_FORMAT = "neurocomp.chunk"


@dataclass(frozen=True)
class Work:
    """What every task shares: a program directory's files and the module-level function that opens them."""

    files: Mapping[str, bytes]
    opener: Callable[[Path], Any]

    @property
    def key(self) -> str:
        """Names this program and opener: the worker's cache key and part of a run's resume key."""
        h = hashlib.sha256(pickle.dumps(self.opener))
        for name in sorted(self.files):
            h.update(name.encode() + b"\0" + hashlib.sha256(self.files[name]).digest())
        return h.hexdigest()


def work_of(program_dir: Path, opener: Callable[[Path], Any]) -> Work:
    """A program directory's regular files (a program is flat) with its opener."""
    return Work({p.name: p.read_bytes() for p in sorted(program_dir.iterdir()) if p.is_file()}, opener)


_OPENED: dict[str, Any] = {}   # per worker process: Work.key -> its opened program, so each worker opens it once


def opened(work: Work, key: str | None = None) -> Any:
    """The opened program in this process: its files written to a private folder once, then opened. `key`:
    work.key when the caller has it (it hashes every file)."""
    key = key or work.key
    if key not in _OPENED:
        folder = Path(tempfile.mkdtemp(prefix="neurocomp-work-")) / "program"
        folder.mkdir()
        for name, data in work.files.items():
            (folder / name).write_bytes(data)
        _OPENED[key] = work.opener(folder)
    return _OPENED[key]


def _open(work: Work, key: str) -> None:
    """Open the program in this worker (a Ray task run once per local worker before the chunks)."""
    opened(work, key)


def _here(key: str, shared: list[Any]) -> Any:
    """The Work opened in this worker. `shared` holds the Work's object reference unresolved (Ray resolves only
    top-level references), so a worker that has the program open neither copies nor hashes its files again."""
    if key not in _OPENED:
        import ray

        opened(ray.get(shared[0]), key)
    return _OPENED[key]


def _call(key: str, shared: list[Any], fn: Task, payload: Any) -> Arrays:
    """The Ray task body: one chunk on this worker's opened program."""
    return fn(_here(key, shared), payload)


def _group_chunk(key: str, shared: list[Any], prepare: Prepare | None, fn: GroupTask, group: Any, prepared: Any,
                 payload: Any) -> tuple[Any, Arrays]:
    """A group's chunk, as (prepared value, arrays): the group's lead (`prepare` given) prepares it from `group`
    and returns that too, for the object store; another chunk gets `prepared` (the lead's first return, resolved
    by Ray as a top-level argument) and returns None. One function for both, so that Ray queues them as one kind
    of task, in the order they go out."""
    opened_here = _here(key, shared)
    if prepare is not None:
        prepared = prepare(opened_here, group)
    return (prepared if prepare is not None else None), fn(opened_here, prepared, payload)


def _warm() -> int:
    """Runs once per local worker as the pool starts: the imports every task needs (numpy, torch, the compiler
    and emulator), so that start-up is paid, and timed, before the work."""
    import os

    import neurocomp.compiler  # noqa: F401 - imported for its side effect: the modules are loaded
    import neurocomp.frontend.ptfile  # noqa: F401 - torch
    import neurocomp.runner  # noqa: F401

    return os.getpid()


def _probe() -> str:
    """Runs on a cluster worker: proves neurocomp imports there and says which version."""
    from neurocomp import __version__

    return __version__


@dataclass
class Pool:
    """Where chunks run: in this process (workers 1, no address) or on Ray (a local one of `workers` CPUs, or the
    cluster at `address`). `startup_s` is Ray's start-up (and, locally, its worker processes' imports), reported
    apart from the work."""

    workers: int = 1
    address: str | None = None
    startup_s: float = 0.0
    warmed: int = 0                                 # local worker processes started and warmed
    open_s: float = 0.0                             # the local workers opening programs, before their chunks
    _ray: Any = field(default=None, repr=False)     # the ray module while the pool is open
    _owned: Any = field(default=None, repr=False)   # the same when this pool started Ray (and so shuts it down)
    _tasks: Any = field(default=None, repr=False)   # (chunk task, open task): made remote once, not per map,
                                                    # so Ray exports each function to the workers once
    _open_keys: set[str] = field(default_factory=set, repr=False)   # programs the local workers have opened

    @property
    def uses_ray(self) -> bool:
        return self.workers > 1 or self.address is not None

    def __enter__(self) -> Pool:
        if self.uses_ray:
            start = time.perf_counter()
            self._owned = _start_ray(self.workers, self.address)
            import ray

            self._ray = ray
            retried = {"max_retries": MAX_RETRIES, "retry_exceptions": False}
            self._tasks = (ray.remote(_call).options(**retried), ray.remote(_open),
                           ray.remote(_group_chunk).options(num_returns=2, **retried))
            if self.address is None:
                self.warmed = len(set(ray.get([ray.remote(_warm).remote() for _ in range(self.workers)])))
            self.startup_s = time.perf_counter() - start
        return self

    def __exit__(self, *exc: object) -> None:
        if self._owned is not None:
            self._owned.shutdown()
        self._ray = self._owned = self._tasks = None
        self._open_keys.clear()

    def work_s(self, work_start: float) -> float:
        """Seconds of work since `work_start` (taken inside the pool), without the local workers opening the
        program: a serial run opens it before its work too."""
        return time.perf_counter() - work_start - self.open_s

    def figures(self, work_s: float, start: float) -> dict[str, Any]:
        """What eval, track --clips and sweep report about where the work ran and how long each part took."""
        return {"workers": self.workers, "address": self.address, "ray_startup_s": self.startup_s,
                "workers_open_s": self.open_s, "work_s": work_s, "total_s": time.perf_counter() - start}

    def map(self, work: Work, fn: Task, items: Iterable[tuple[int, Any]], local: Any) -> Iterator[tuple[int, Arrays]]:
        """(index, result) per item as each finishes. Serial runs use `local`, the program already opened here;
        local workers first open `work` side by side (timed as `open_s`, as a serial run opens it before its work)."""
        if not self.uses_ray:
            for index, payload in items:
                yield index, fn(local, payload)
            return
        shared, key, in_flight = self._shared(work)
        yield from _ray_map(self._ray, self._tasks[0], (key, [shared]), fn, items, in_flight)

    def map_groups(self, work: Work, prepare: Prepare, fn: GroupTask, groups: Iterable[Group], local: Any
                   ) -> Iterator[tuple[int, Arrays]]:
        """As `map`, for chunks that share a costly per-group value (a sweep point's compiled program): each group
        is prepared once, by the task that runs its first chunk, and its other chunks then run on any worker
        (_ray_groups). Work of uneven size (one point compiling and running for seconds, another for milliseconds)
        so spreads over the workers in chunk-sized pieces instead of whole groups. Groups with no chunks left are
        not prepared."""
        groups = (g for g in groups if g.chunks)
        if not self.uses_ray:
            for group in groups:
                prepared = prepare(local, group.payload)
                for index, payload in group.chunks:
                    yield index, fn(local, prepared, payload)
            return
        shared, key, _ = self._shared(work)
        yield from _ray_groups(self._ray, self._tasks[2], (key, [shared]), prepare, fn, groups, self.workers)

    def _shared(self, work: Work) -> tuple[Any, str, int]:
        """The Work's object reference (put once: every task gets this reference and key, not a copy), its key and
        how many tasks to keep in flight; local workers open it first, side by side (timed as `open_s`)."""
        shared, key = self._ray.put(work), work.key
        if self.address is None and key not in self._open_keys:
            start = time.perf_counter()
            self._ray.get([self._tasks[1].remote(shared, key) for _ in range(self.workers)])
            self.open_s += time.perf_counter() - start
            self._open_keys.add(key)
        return shared, key, 2 * max(self.workers, int(self._ray.cluster_resources().get("CPU", 1)))


@dataclass(frozen=True)
class Group:
    """Chunks that share one prepared value: the payload `prepare` gets and the (index, payload) of each chunk."""

    payload: Any
    chunks: list[tuple[int, Any]]


def _start_ray(workers: int, address: str | None) -> Any:
    """Ray started in this process (local) or connected to a cluster (the ray module; None if Ray was already
    running here); UserError before any work on a bad address
    or a cluster whose workers cannot import this neurocomp."""
    if address is not None:
        _reachable(address)
    import ray

    if ray.is_initialized():   # the caller's own Ray (a test's, a notebook's): used as it is, left running
        return None
    if address is None:
        # "local": a new Ray of our own, even where `ray start` left a cluster running on this machine
        ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    else:
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise UserError(f"--address {address}: cannot join the Ray cluster there ({' '.join(str(exc).split())[:200]}); "
                            "a cluster with token authentication needs RAY_AUTH_MODE=token here too "
                            "(docs/CLUSTER.md)") from None
        _check_cluster(ray, address)
    return ray


def _reachable(address: str) -> None:
    """A quick TCP connect, since ray.init waits minutes on an address where nothing listens."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address {address}: expected HOST:PORT of a Ray head node (ray start --head prints it)")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise UserError(f"--address {address}: cannot reach a Ray head node there ({exc.strerror or exc})") from None


def _check_cluster(ray: Any, address: str) -> None:
    from neurocomp import __version__

    try:
        theirs = ray.get(ray.remote(_probe).options(max_retries=0).remote(), timeout=120)
    except Exception as exc:  # noqa: BLE001 - any failure here means the workers cannot run neurocomp
        ray.shutdown()
        raise UserError(f"--address {address}: the cluster's workers cannot import neurocomp (install this project "
                        f"on every node: pip install 'neurocomp[cluster]'; {type(exc).__name__})") from None
    if theirs != __version__:
        ray.shutdown()
        raise UserError(f"--address {address}: the cluster runs neurocomp {theirs}, this is {__version__}")


def _ray_map(ray: Any, remote: Any, shared: tuple[str, list[Any]], fn: Task, items: Iterable[tuple[int, Any]],
             in_flight: int) -> Iterator[tuple[int, Arrays]]:
    """Submit `remote` (the chunk task) lazily (at most `in_flight` pending), each task handed `shared`, the Work's
    key and its reference in the object store; yield results as they finish."""
    pending: dict[Any, int] = {}
    source = iter(items)
    exhausted = False
    while pending or not exhausted:
        while not exhausted and len(pending) < in_flight:
            item = next(source, None)
            if item is None:
                exhausted = True
            else:
                pending[remote.remote(*shared, fn, item[1])] = item[0]
        if pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            yield pending.pop(ref), _result(ray, ref)


def _ray_groups(ray: Any, task: Any, shared: tuple[str, list[Any]], prepare: Prepare, fn: GroupTask,
                groups: Iterator[Group], workers: int) -> Iterator[tuple[int, Arrays]]:
    """Per group, a lead task that prepares it and runs its first chunk; once it finishes, one task for each other
    chunk, taking the prepared value (kept in the object store) as an argument. Leads go out first, for up to
    4 x `workers` groups at once: every costly prepare starts early, a group of one chunk is one task, and the run
    ends on chunks, which spread over the workers. Results are yielded as they finish."""
    pending: dict[Any, tuple[int, int]] = {}   # a task's result -> (its chunk's index, its group's number)
    leads: dict[Any, tuple[Any, Group]] = {}   # a lead's result -> (its group's prepared value, the group)
    left: dict[int, int] = {}                  # group number -> its chunks not yet finished
    numbered = enumerate(groups)
    while True:
        while len(left) < 4 * workers and (item := next(numbered, None)) is not None:
            number, group = item
            prepared, result = task.remote(*shared, prepare, fn, group.payload, None, group.chunks[0][1])
            pending[result], leads[result], left[number] = (group.chunks[0][0], number), (prepared, group), len(group.chunks)
        if not pending:
            return
        (done,), _ = ray.wait(list(pending), num_returns=1)
        index, number = pending.pop(done)
        if done in leads:
            prepared, group = leads.pop(done)
            pending.update({task.remote(*shared, None, fn, None, prepared, payload)[1]: (i, number)
                            for i, payload in group.chunks[1:]})
        left[number] -= 1
        if not left[number]:
            del left[number]
        yield index, _result(ray, done)


def _result(ray: Any, ref: Any) -> Arrays:
    """The task's arrays; a UserError raised in a worker (or in the prepare task a chunk depends on) is raised here
    as itself."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause
        while isinstance(cause, ray.exceptions.RayTaskError):
            cause = cause.cause
        if isinstance(cause, UserError):
            raise cause from None
        raise


CHUNK_KIND = marked_kind("neurocomp chunk result", CHUNK_FORMAT)


@dataclass(frozen=True)
class ChunkStore:
    """Finished chunks of one run in `folder` (chunk-000012.npz), each stamped with the run's key."""

    folder: Path
    key: str

    def path(self, index: int) -> Path:
        return self.folder / f"chunk-{index:06d}.npz"

    def finished(self) -> dict[int, Arrays]:
        """The chunks a previous try of this run finished; UserError if the folder holds another run's."""
        if not self.folder.is_dir():
            return {}
        done: dict[int, Arrays] = {}
        for path in sorted(self.folder.glob("chunk-*.npz")):
            if CHUNK_KIND.not_ours(path) is not None:
                continue
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            if arrays.pop("run_key").tolist() != [self.key]:
                raise UserError(f"--state {self.folder} holds chunks of another run (other program, data or options); "
                                "name a new folder or remove that one")
            arrays.pop("format")
            done[int(path.stem.removeprefix("chunk-"))] = arrays
        return done

    def put(self, index: int, arrays: Arrays) -> None:
        """The chunk's arrays, written atomically: a reader sees the whole file or none."""
        marks = {"format": np.array([CHUNK_FORMAT]), "run_key": np.array([self.key])}
        write_file(self.path(index), CHUNK_KIND, lambda tmp: write_npz(tmp, {**arrays, **marks}))


def check_state(folder: Path, inputs: Iterable[Path]) -> None:
    """Refuse (UserError, nothing touched) a state folder safewrite would not let chunks be written into."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--state {folder}: not a directory")
    check(folder / "chunk-000000.npz", CHUNK_KIND, list(inputs))


def check_outputs(out: str | None, kind: Kind, state: str | None, inputs: list[Path]) -> None:
    """What a chunked command (eval, track --clips, sweep) would write, refused before any work: its --out of
    `kind` and its --state folder (either may be None)."""
    if out:
        check(Path(out), kind, inputs)
    if state:
        check_state(Path(state), inputs)


def run_chunks(pool: Pool, work: Work, fn: Task, items: Callable[[set[int]], Iterable[tuple[int, Any]]], total: int,
               local: Any, store: ChunkStore | None = None, on_done: Callable[[int], None] = lambda _i: None
               ) -> list[Arrays]:
    """Every chunk's arrays in index order. `items(skip)` yields (index, payload) for the chunks not in `skip`
    (those the store already holds); each finished chunk is stored before it counts as done."""
    return _collected(lambda skip: pool.map(work, fn, items(skip), local), total, store, on_done)


def run_groups(pool: Pool, work: Work, prepare: Prepare, fn: GroupTask, groups: Callable[[set[int]], Iterable[Group]],
               total: int, local: Any, store: ChunkStore | None = None, on_done: Callable[[int], None] = lambda _i: None
               ) -> list[Arrays]:
    """As run_chunks, for chunks in groups that share a prepared value (Pool.map_groups); `groups(skip)` leaves
    the chunks in `skip` out, and a group left without chunks is never prepared."""
    return _collected(lambda skip: pool.map_groups(work, prepare, fn, groups(skip), local), total, store, on_done)


def _collected(results_of: Callable[[set[int]], Iterable[tuple[int, Arrays]]], total: int, store: ChunkStore | None,
               on_done: Callable[[int], None]) -> list[Arrays]:
    results = store.finished() if store is not None else {}
    for index in results:
        on_done(index)
    for index, arrays in results_of(set(results)):
        if store is not None:
            store.put(index, arrays)
        results[index] = arrays
        on_done(index)
    return [results[i] for i in range(total)]
