"""neurocomp.forked: pieces of one computation in forked processes, results in order, failures raised here."""
from __future__ import annotations

import os

import numpy as np
import pytest

from neurocomp.errors import ResourceError
from neurocomp.forked import available, forked_map


def test_each_piece_runs_once_in_its_own_process_and_results_keep_their_order():
    seen: list[int] = []

    def work(piece: list[int]) -> tuple[int, int]:
        seen.extend(piece)   # a child's list is its own copy: the parent sees its own piece only
        return os.getpid(), int(np.sum(np.square(piece)))
    pieces = [[1, 2], [3], [4, 5, 6]]
    results = forked_map(work, pieces)
    assert [total for _, total in results] == [5, 9, 77]
    pids = [pid for pid, _ in results]
    assert pids[0] == os.getpid() and len(set(pids)) == 3 and seen == [1, 2]


def test_a_childs_exception_is_raised_in_the_parent_after_every_child_ended():
    def work(piece: int) -> int:
        if piece == 2:
            raise ResourceError("layer x", "axons", 300, 256)
        return piece

    with pytest.raises(ResourceError, match="axons") as err:
        forked_map(work, [1, 2, 3])
    assert (err.value.used, err.value.allowed) == (300, 256)


def test_an_exception_that_does_not_pickle_comes_back_as_its_type_and_message():
    class Local(Exception):   # defined in a function: pickle cannot find it by name
        pass

    def work(piece: int) -> int:
        if piece:
            raise Local("no such core")
        return piece

    with pytest.raises(RuntimeError, match="Local: no such core"):
        forked_map(work, [0, 1])


def test_one_piece_runs_here():
    assert forked_map(lambda piece: os.getpid(), [0]) == [os.getpid()] and available() >= 1


def test_a_piece_the_system_will_not_fork_for_runs_here_in_order(monkeypatch):
    """Where fork fails (ENOMEM: no memory to charge a child with), that piece runs in this process; the others still
    fork, results keep their order and no pipe is left open."""
    real, calls = os.fork, []

    def fork() -> int:
        calls.append(1)
        if len(calls) == 2:
            raise OSError(12, "Cannot allocate memory")
        return real()
    monkeypatch.setattr(os, "fork", fork)
    open_fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    results = forked_map(lambda piece: (os.getpid(), piece * piece), [1, 2, 3, 4])
    assert [square for _, square in results] == [1, 4, 9, 16]
    pids = [pid for pid, _ in results]
    assert pids[0] == pids[2] == os.getpid() and len({pids[1], pids[3], os.getpid()}) == 3
    assert open_fds is None or len(os.listdir("/proc/self/fd")) == open_fds
