"""Output routing tables: the entries each core needs, one per distinct (neuron, destination core)."""
from __future__ import annotations

import numpy as np

from neurocomp.distinct import distinct


def routing_tables(src_core: np.ndarray, src_neuron: np.ndarray, dst_core: np.ndarray, n_cores: int) -> np.ndarray:
    """Entries in each core's output routing table: one per distinct (neuron, destination core), the
    messages a spike of that neuron sends (Loihi's output axons; TrueNorth holds one per neuron)."""
    if src_neuron.size == 0:
        return np.zeros(n_cores, dtype=np.int64)
    n = int(src_neuron.max()) + 1
    key = dst_core.astype(np.int64)   # one int64 key a pair, led by the destination core: a netlist's edges come
    key *= n                          # grouped by it, so the keys are runs that timsort merges (distinct's `runs`)
    key += src_neuron
    owner = np.zeros(n, dtype=np.int64)
    owner[src_neuron] = src_core
    return np.bincount(owner[distinct(key, runs=True) % n], minlength=n_cores)


def table_report(entries: np.ndarray, limit: int | None) -> dict[str, object]:
    """Largest and mean routing table, the core that holds the largest, and the target's limit if it has one."""
    worst = int(np.argmax(entries)) if entries.size else -1
    return {"max_entries": int(entries.max(initial=0)), "mean_entries": float(entries.mean()) if entries.size else 0.0,
            "core": worst, "limit": limit}
