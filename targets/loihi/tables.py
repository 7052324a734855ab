"""What a stored Loihi netlist's tables must look like, checked when a program is loaded."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from neurocomp.targets.loihi.mapping import SIGN_CODES
from neurocomp.targets.loihi.neuron import PARAMS

SYN_TABLES = {"weight": "synapses", "sign_mode": "cores", "weight_exp": "cores"}   # each table's length counts these


def check_tables(params: Mapping[str, np.ndarray], tables: Mapping[str, np.ndarray],
                 count: Mapping[str, int]) -> str | None:
    """Why the neuron parameters and synapse tables cannot be a Loihi netlist (None: they can)."""
    if set(params) != set(PARAMS) or set(tables) != set(SYN_TABLES):
        return (f"Loihi needs neuron parameters {sorted(PARAMS)} and synapse tables {sorted(SYN_TABLES)}; "
                f"got {sorted(params)} and {sorted(tables)}")
    if any(v.ndim != 1 for v in (*params.values(), *tables.values())):
        return "every neuron parameter and synapse table must be 1-D"
    short = [k for k, v in params.items() if v.size != count["neurons"]]
    short += [k for k, counted in SYN_TABLES.items() if tables[k].size != count[counted]]
    if short:
        return f"tables {sorted(short)} need one entry per neuron, synapse or core"
    modes = tables["sign_mode"]
    if modes.size and (modes.min() < 0 or modes.max() > max(SIGN_CODES.values())):
        return f"sign_mode codes must be one of {sorted(SIGN_CODES.values())}"
    return None
