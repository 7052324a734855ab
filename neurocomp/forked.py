"""Independent pieces of one computation in forked processes, side by side.

A child made by fork shares the parent's memory as it is at the fork, so a piece reads a paper-size network's
quantised layers (gigabytes) without their being pickled; only its result travels back, through a pipe. Pieces
must not rely on each other: each child sees the parent as it was when the pieces started.
"""
from __future__ import annotations

import os
import pickle
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def available() -> int:
    """The processors this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def forked_map(work: Callable[[T], R], pieces: Sequence[T]) -> list[R]:
    """work(piece) for every piece, in order: the first here, each other one in a forked child at the same time.
    Where there is one piece or no fork (not POSIX) all run here in turn, and so does each piece whose fork the
    system refuses (no memory to charge the child with). A child's exception is raised here, once every child has
    ended."""
    if len(pieces) < 2 or not hasattr(os, "fork"):
        return [work(piece) for piece in pieces]
    children = [_started(work, piece) for piece in pieces[1:]]
    try:
        first = work(pieces[0])
        here = [(True, work(piece)) if child is None else None for piece, child in zip(pieces[1:], children)]
    finally:
        results = [None if child is None else _result(*child) for child in children]
    results = [mine if theirs is None else theirs for mine, theirs in zip(here, results)]
    for ok, value in results:
        if not ok:
            raise value
    return [first] + [value for _, value in results]


def _started(work: Callable[[T], R], piece: T) -> tuple[int, int] | None:
    """_start, or None where the system cannot fork (ENOMEM, EAGAIN): the piece then runs in this process."""
    try:
        return _start(work, piece)
    except OSError:
        return None


def _start(work: Callable[[T], R], piece: T) -> tuple[int, int]:
    """Fork a child that runs work(piece), pickles (ok, result or exception) into a pipe and exits at once (no
    cleanup of the parent's state: its files, bars and handlers stay the parent's)."""
    read, write = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read)
        os.close(write)
        raise
    if pid:
        os.close(write)
        return pid, read
    os.close(read)
    try:
        try:
            payload = pickle.dumps((True, work(piece)), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as err:   # every failure goes back to the parent
            payload = _pickled_error(err)
        with os.fdopen(write, "wb") as out:
            out.write(payload)
    finally:
        os._exit(0)


def _pickled_error(err: BaseException) -> bytes:
    """The exception pickled, where it also unpickles as itself; else a RuntimeError with its type and message."""
    try:
        payload = pickle.dumps((False, err), protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(payload)
        return payload
    except Exception:
        return pickle.dumps((False, RuntimeError(f"{type(err).__name__}: {err}")))


def _result(pid: int, fd: int) -> tuple[bool, object]:
    """Read a child's pickled result to the end (before waiting: a full pipe would block it), then reap it. The bytes
    are this process's own child's, through a pipe it made: never a file or anything a user hands in."""
    with os.fdopen(fd, "rb") as source:
        data = source.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        return False, RuntimeError(f"a forked worker ended without a result (wait status {status})")
    return pickle.loads(data)
