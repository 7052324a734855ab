"""Refuse work that cannot fit in memory before allocating it.

A 10^9-neuron layer or `--ticks 10**12` would otherwise die in MemoryError (or be killed by
the OS) minutes in; `require` compares an estimate, made from shapes alone, with what the
machine has available and raises a MemoryLimitError (a ResourceError) naming the culprit and both numbers.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

from neurocomp.errors import MemoryLimitError


def available_bytes() -> int:
    """Memory this process can still take: psutil's or /proc/meminfo's available memory (else free pages),
    capped by a cgroup memory limit when one is set."""
    try:
        import psutil

        free = int(psutil.virtual_memory().available)
    except ImportError:
        free = _meminfo_available()
    return min(free, _cgroup_room())


def _meminfo_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 1 << 62  # no way to tell: do not refuse


def _cgroup_room() -> int:
    """cgroup v2 limit minus usage; unlimited (or unknown) gives a huge number."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
    except (OSError, ValueError):
        return 1 << 62
    return 1 << 62 if limit == "max" else max(int(limit) - used, 0)


def require(where: str, estimate: float, hint: str = "") -> None:
    """Raise a MemoryLimitError when `estimate` bytes exceed the available memory."""
    room = available_bytes()
    if estimate > room:
        raise MemoryLimitError(where, estimate, room, hint)


def require_run(n_neurons: int, channels: int, batch: int, ticks: int, neuron_bytes: int = 1) -> None:
    """Refuse a run whose per-tick buffers cannot fit: the encoded input of `channels` values (float64 draws,
    then uint8 spikes and their concatenation) and `neuron_bytes` of record per neuron (the emulator's uint8
    spikes: 1; the float reference's potentials, inputs and outputs: 32), per sample and tick."""
    per_tick = 10 * channels + neuron_bytes * n_neurons
    require(f"run of {ticks:,} ticks x {batch:,} samples", float(batch) * ticks * per_tick,
            "use fewer ticks or a smaller batch")


def batch_of(inputs: Mapping[str, np.ndarray]) -> int:
    """Samples in a run's input (the first axis of its first array; 1 for a scalar)."""
    first = np.shape(next(iter(inputs.values())))
    return first[0] if first else 1
