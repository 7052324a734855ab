"""How long a Loihi tick takes: the slowest core's work plus the barrier (LOIHI.md §4)."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from neurocomp.target import TargetSpec

REALTIME_TICK_S = 1e-3  # the usual throttled real-time step (LOIHI.md §1); spec key timing.realtime_tick_s overrides


def tick_seconds(core_counts: Mapping[str, np.ndarray], spec: TargetSpec, n_routers: int,
                 n_chips: int = 1) -> tuple[float | np.ndarray, float | np.ndarray]:
    """Tick estimate: the slowest core's work plus the barrier (LOIHI.md §4), and the slack against the
    1 ms real-time tick, 1 - tick / 1 ms (negative: the tick overruns real time).

    Counts are (cores,) or (cores, ...) for many ticks at once (then one estimate per column). On
    several chips the barrier is the inter-chip one (LOIHI.md §1: 14.3-16.2 us, measured on 768 chips;
    no figure for smaller systems is published, so it is used for any multi-chip program).
    """
    busy = (core_counts["synaptic_events"] * spec["timing.synop_s"]
            + core_counts["neuron_active"] * spec["timing.neuron_update_active_s"]
            + core_counts["neuron_idle"] * spec["timing.neuron_update_idle_s"]
            + core_counts["spikes"] * spec["timing.spike_s"])
    if n_chips > 1:
        barrier = spec["timing.interchip_barrier_s"]
    else:
        span = min(max(n_routers, 1), 32) / 32
        barrier = spec["timing.barrier_min_s"] + span * (spec["timing.barrier_max_s"] - spec["timing.barrier_min_s"])
    tick = np.max(busy, axis=0, initial=0.0) + barrier
    slack = 1.0 - tick / float(spec.get("timing.realtime_tick_s", REALTIME_TICK_S))
    return (float(tick), float(slack)) if np.ndim(tick) == 0 else (tick, slack)
