"""Refuse work that cannot fit in memory before allocating it.

A 10^9-neuron layer or `--ticks 10**12` would otherwise die in MemoryError (or be killed by
the OS) minutes in; `require` compares an estimate, made from shapes alone, with what the
machine has available and raises a MemoryLimitError (a ResourceError) naming the culprit and both numbers.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np

from neurocomp.errors import MemoryLimitError

if TYPE_CHECKING:
    from neurocomp.ir.graph import Graph


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


# Peak bytes a compile takes per neuron and per synapse (index, weight and partition arrays and
# their temporaries), set below what compiles measure so that only work that cannot fit is refused.
COMPILE_NEURON_BYTES = 200
COMPILE_SYNAPSE_BYTES = 40
EXPORT_NEURON_BYTES = 96


def layer_sizes(graph: Graph) -> dict[str, tuple[int, int]]:
    """Neurons and incoming synapses per neuron node, from shapes alone (Python ints: no overflow).
    A linear op's synapses count towards the neuron nodes it feeds."""
    from neurocomp.ir.graph import NEURONS, Affine, Conv2d, Input, SumPool2d

    nodes = graph.node_map

    def synapses(name: str) -> int:
        node, out = nodes[name], math.prod(graph.shape(name))
        if isinstance(node, Input):
            return 0
        if isinstance(node, Affine):
            return node.weight.size
        if isinstance(node, Conv2d):
            return out * math.prod(node.weight.shape[1:])
        if isinstance(node, SumPool2d):
            return out * math.prod(node.kernel)
        return out

    sizes: dict[str, tuple[int, int]] = {}
    for node in graph.nodes:
        if isinstance(node, NEURONS):
            todo, seen, syn = list(graph.predecessors(node.name)), set(), 0
            while todo:
                name = todo.pop()
                if name in seen:
                    continue
                seen.add(name)
                if not isinstance(nodes[name], NEURONS):
                    syn += synapses(name)
                    todo += graph.predecessors(name)
            sizes[node.name] = (math.prod(graph.shape(node.name)), syn)
    return sizes


def require_compile(graph: Graph) -> None:
    """Refuse a graph whose compile cannot fit in memory, naming its largest layer."""
    _require_layers(graph, COMPILE_NEURON_BYTES, COMPILE_SYNAPSE_BYTES, "compiling")


def require_export(graph: Graph) -> None:
    """Refuse a NIR export that cannot fit: NIR holds every neuron parameter (about a dozen) as a full
    float64 array, where our Graph keeps a uniform one as a scalar."""
    _require_layers(graph, EXPORT_NEURON_BYTES, 0, "exporting to NIR")


def _require_layers(graph: Graph, neuron_bytes: int, synapse_bytes: int, what: str) -> None:
    sizes = layer_sizes(graph)
    cost = {k: n * neuron_bytes + s * synapse_bytes for k, (n, s) in sizes.items()}
    if cost:
        big = max(cost, key=cost.get)
        n, s = sizes[big]
        require(f"layer {big} ({n:,} neurons, {s:,} synapses)", sum(cost.values()),
                f"the estimate covers {what} every layer; shrink the largest")


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
