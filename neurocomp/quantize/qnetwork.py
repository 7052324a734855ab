"""The quantiser's result: the integer network and, per layer, its scale, target registers and exactness."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from neurocomp.ir.layers import Network


@dataclass(frozen=True)
class QLayer:
    name: str
    scale: float                        # float value of one integer unit of potential
    params: Mapping[str, np.ndarray]    # target registers per neuron, int64 (N,) or (N, k)
    weight_snr_db: float                # inf when the weights were represented exactly
    exact: bool                         # the integer layer computes the float layer exactly
    exact_ticks: float = math.inf       # ... for this many ticks (the target's range limits, `exact_ticks` hook)
    limit: str = ""                     # what ends exact_ticks


@dataclass(frozen=True)
class QNetwork:
    network: Network                    # the quantised (integer-valued) network
    layers: tuple[QLayer, ...]
    target: str

    def qlayer(self, name: str) -> QLayer:
        return next(q for q in self.layers if q.name == name)
