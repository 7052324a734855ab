"""Read-outs summed on the host.

A read-out layer whose neurons read more inputs than one core's axons becomes part
layers over disjoint groups of its inputs (neurocomp.partition.fanin). Its potential
is linear in its input, so the host adds the parts' potentials when it reads them: the
sum equals the unsplit layer's potential with no partial-sum neurons or extra tick (the
parts' potentials are integers times their layer scales, added in float64). The Graph records the parts under KEY in its metadata ("a=a.part0,a.part1;b=...");
the Netlist carries them in its notes as {name: [parts]}.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

KEY = "readout_sums"
Sums = Mapping[str, Sequence[str]]


def decode(metadata: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    text = metadata.get(KEY, "")
    return {name: tuple(parts.split(",")) for name, parts in (item.split("=") for item in text.split(";") if item)}


def encode(sums: Sums) -> str:
    return ";".join(f"{name}={','.join(parts)}" for name, parts in sums.items())


def named(names: Sequence[str], sums: Sums) -> list[str]:
    """Layer names with every part replaced by its sum (each sum once, where its first part was)."""
    owner = {part: name for name, parts in sums.items() for part in parts}
    out: list[str] = []
    for name in names:
        name = owner.get(name, name)
        if name not in out:
            out.append(name)
    return out


def expand(record: Sequence[str] | None, sums: Sums) -> list[str] | None:
    """The layers to record for `record` (None: all): a sum is recorded through its parts."""
    if record is None:
        return None
    return [part for name in record for part in sums.get(name, (name,))]


def add(potentials: Mapping[str, np.ndarray], sums: Sums) -> dict[str, np.ndarray]:
    """`potentials` plus each sum whose parts were all recorded."""
    out = dict(potentials)
    for name, parts in sums.items():
        if all(p in potentials for p in parts):
            total = np.array(potentials[parts[0]], dtype=np.float64)
            for p in parts[1:]:
                total += potentials[p]
            out[name] = total
    return out
