"""What a stored TrueNorth netlist's tables must look like, checked when a program is loaded."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from neurocomp.targets.truenorth.neuron import PARAMS

SYN_TABLES = {"axon_type": "axons"}   # each table's length counts these


def check_tables(params: Mapping[str, np.ndarray], tables: Mapping[str, np.ndarray],
                 count: Mapping[str, int]) -> str | None:
    """Why the neuron parameters and synapse tables cannot be a TrueNorth netlist (None: they can)."""
    if set(params) != set(PARAMS) | {"w"} or set(tables) != set(SYN_TABLES):
        return (f"TrueNorth needs neuron parameters {sorted(set(PARAMS) | {'w'})} and synapse tables "
                f"{sorted(SYN_TABLES)}; got {sorted(params)} and {sorted(tables)}")
    short = [k for k, v in params.items() if v.shape[0] != count["neurons"]]
    short += [k for k, counted in SYN_TABLES.items() if tables[k].shape[0] != count[counted]]
    if short:
        return f"tables {sorted(short)} need one row per neuron (parameters) or per axon (axon_type)"
    w, types = params["w"], tables["axon_type"]
    if w.ndim != 2 or any(v.ndim != 1 for k, v in params.items() if k != "w") or types.ndim != 1:
        return "'w' must be (neurons, axon types) and every other table 1-D"
    if types.size and (types.min() < 0 or types.max() >= w.shape[1]):
        return "axon types must index the columns of the (neurons, types) weight table 'w'"
    return None
