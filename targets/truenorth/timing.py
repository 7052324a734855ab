"""How long a TrueNorth tick takes: a fixed 1 ms in real-time mode."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from neurocomp.target import TargetSpec


def tick_seconds(core_counts: Mapping[str, np.ndarray], spec: TargetSpec, n_routers: int,
                 n_chips: int = 1) -> tuple[float | np.ndarray, None]:
    """TrueNorth ticks at a fixed 1 ms in real-time mode, on one chip or many; per-core work times are
    not published, so the slack against that tick is unknown (None). Counts may carry extra axes
    (per tick); the tick is the same for all of them."""
    tick = float(spec["timing.tick_s"])
    extra = np.shape(next(iter(core_counts.values()), np.zeros(1)))[1:]
    return (np.full(extra, tick) if extra else tick), None
