"""Output routing tables: the entries each core needs, one per distinct (neuron, destination core)."""
from __future__ import annotations

import numpy as np

from neurocomp.distinct import count_distinct


def routing_tables(src_core: np.ndarray, src_neuron: np.ndarray, dst_core: np.ndarray, n_cores: int) -> np.ndarray:
    """Entries in each core's output routing table: one per distinct (neuron, destination core), the
    messages a spike of that neuron sends (Loihi's output axons; TrueNorth holds one per neuron)."""
    if src_neuron.size == 0:
        return np.zeros(n_cores, dtype=np.int64)
    n = int(src_neuron.max()) + 1
    bits = max(n - 1, 1).bit_length()
    key = dst_core.astype(np.int64)   # one int64 key a pair, led by the destination core: a netlist's edges come
    key <<= bits                      # grouped by it, so the keys are runs that timsort merges; the neuron in the
    key |= src_neuron                 # low bits, read back with a mask, then its core
    owner = np.zeros(n, dtype=np.int64)
    owner[src_neuron] = src_core

    def core(keys: np.ndarray) -> None:
        keys &= (1 << bits) - 1
        np.take(owner, keys, out=keys, mode="clip")

    return count_distinct(key, core, n_cores)


def table_report(entries: np.ndarray, limit: int | None) -> dict[str, object]:
    """Largest and mean routing table, the core that holds the largest, and the target's limit if it has one."""
    worst = int(np.argmax(entries)) if entries.size else -1
    return {"max_entries": int(entries.max(initial=0)), "mean_entries": float(entries.mean()) if entries.size else 0.0,
            "core": worst, "limit": limit}
