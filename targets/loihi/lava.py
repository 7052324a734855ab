"""Loihi programs as Lava processes (neurocomp.backends.lava builds and runs them): per core one LIF per
compartment group -- the core's neurons sharing du, dv and vth, which Lava's LIF holds as one scalar each -- and
per (source process, LIF) one Dense holding exactly that core's netlist weights (see neurocomp/backends/lava.py)."""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from neurocomp.backends.lava import Built
from neurocomp.errors import UserError
from neurocomp.ir.netlist import Netlist
from neurocomp.target import Target
from neurocomp.targets.loihi.emulation import SIGN_NAMES
from neurocomp.targets.loihi.neuron import prepare_weights

LIF_SCALARS = ("du", "dv", "vth", "weight_exp")  # one value per Lava LIF (or its Dense), so they split a core


def _source_of_axons(n: Netlist) -> np.ndarray:
    """Per axon the one source driving it: channel c as c, neuron j as n_inputs + j, -1 if none."""
    hits = np.bincount(np.concatenate([n.in_axon, n.edge_axon]), minlength=n.n_axons)
    if hits.max(initial=0) > 1:
        a = int(np.argmax(hits))
        raise UserError(f"axon {a} (core {int(n.axon_core()[a])}) has {int(hits[a])} sources; a Lava Dense would add "
                        "their spikes where the chip merges them")
    if np.any(n.edge_delay != 1) or np.any(n.in_delay != 1):
        raise UserError("Loihi edges with delays other than one tick have no Dense equivalent in this backend")
    src = np.full(n.n_axons, -1, dtype=np.int64)
    src[n.in_axon] = n.in_channel
    src[n.edge_axon] = n.n_inputs + n.edge_src
    return src


def _copies(n: Netlist, src: np.ndarray) -> np.ndarray:
    """Per axon, how many earlier axons of its core carry the same source. A layer reading one source through
    parallel projections has one axon per projection; Lava's Dense has one column per source, so each copy
    becomes a Dense of its own (their sum is the chip's, weights prepared one axon at a time as on the chip)."""
    core = n.axon_core()
    order = np.lexsort((np.arange(n.n_axons), src, core))
    new = np.ones(n.n_axons, dtype=bool)
    new[1:] = (core[order][1:] != core[order][:-1]) | (src[order][1:] != src[order][:-1])
    start = np.maximum.accumulate(np.where(new, np.arange(n.n_axons), 0))
    copy = np.empty(n.n_axons, dtype=np.int64)
    copy[order] = np.arange(n.n_axons) - start
    return copy


def _source_weights(n: Netlist) -> list[sp.csr_matrix]:
    """Per axon copy (see _copies), (neurons x sources) netlist weights, each axon replaced by its source."""
    src = _source_of_axons(n)
    copy = _copies(n, src)[n.syn_axon]
    keep = src[n.syn_axon] >= 0
    shape = (n.n_neurons, n.n_inputs + n.n_neurons)
    weight = n.syn_tables["weight"].astype(np.int64)   # stored narrow (int16)
    return [sp.csr_matrix((weight[sel], (n.syn_neuron[sel], src[n.syn_axon[sel]])), shape=shape)
            for sel in (keep & (copy == c) for c in range(int(copy.max(initial=0)) + 1))]


def _groups(n: Netlist) -> list[np.ndarray]:
    """Global neuron ids per LIF: each core's neurons split by the values Lava keeps per process."""
    keys = np.stack([n.neuron_core()] + [np.asarray(n.params[k]) for k in LIF_SCALARS], axis=1)
    inv = np.unique(keys, axis=0, return_inverse=True)[1].ravel()
    return np.split(np.argsort(inv, kind="stable"), np.cumsum(np.bincount(inv))[:-1])


def _lif(n: Netlist, ids: np.ndarray, name: str) -> Any:
    from lava.proc.lif.process import LIF

    p = {k: np.asarray(v)[ids] for k, v in n.params.items()}
    return LIF(shape=(ids.size,), du=int(p["du"][0]), dv=int(p["dv"][0]), vth=int(p["vth"][0]),
               bias_mant=p["bias_mant"], bias_exp=p["bias_exp"], u=p["u_init"], v=p["v_init"], name=name)


def _dense_inputs(n: Netlist, weights: list[sp.csr_matrix], ids: np.ndarray, owner: np.ndarray,
                  members: list[np.ndarray], ports: list[Any], lif: Any, message_bits: int) -> list[Any]:
    """One Dense per (axon copy, source process) feeding this LIF, each with its core's weight_exp and sign mode;
    those reading the input (port 0) take `message_bits`-bit graded payloads."""
    from lava.proc.dense.process import Dense
    from lava.utils.weightutils import SignMode

    core = int(n.neuron_core()[ids[0]])
    mode, wexp = SIGN_NAMES[int(n.syn_tables["sign_mode"][core])], int(n.params["weight_exp"][ids[0]])
    feeding = [(c, int(k)) for c, w in enumerate(weights) for k in np.unique(owner[w.indices])]
    data = np.concatenate([w.data for w in weights])
    if len(feeding) > 1 and wexp < 0 and np.any(prepare_weights(data, sign_mode=mode) % (1 << -wexp)):
        raise UserError(f"core {core}: weight_exp {wexp} would shift each of its {len(feeding)} per-source Dense sums "
                        "(Lava 0.10 cannot concatenate ports) instead of their total, which is not exact for its weights")
    denses = []
    for c, k in feeding:
        dense = Dense(weights=weights[c][:, members[k]].toarray(), weight_exp=wexp, num_weight_bits=8,
                      sign_mode=SignMode[mode.upper()], num_message_bits=message_bits if k == 0 else 0,
                      name=f"{lif.name}_from{k}" + (f"_copy{c}" if c else ""))
        ports[k].connect(dense.s_in)
        dense.a_out.connect(lif.a_in)
        denses.append(dense)
    return denses


def processes(n: Netlist, target: Target, input_port: Any, seed: int, column: tuple[int, int]) -> Built:
    """Deterministic model: `seed` and `column` are unused."""
    weights, groups = _source_weights(n), _groups(n)
    layer_of = n.core_layer[n.neuron_core()]
    lifs = [_lif(n, ids, f"{n.layers[layer_of[ids[0]]].name}_core{n.neuron_core()[ids[0]]}_lif{k}")
            for k, ids in enumerate(groups)]
    owner = np.zeros(n.n_inputs + n.n_neurons, dtype=np.int64)   # source id -> index into ports
    members = [np.arange(n.n_inputs)]                           # source ids of each port, in port order
    for k, ids in enumerate(groups):
        owner[n.n_inputs + ids] = k + 1
        members.append(n.n_inputs + ids)
    ports = [input_port] + [lif.s_out for lif in lifs]
    bits = int(target.spec.get("core.message_bits", 0))
    denses = [d for ids, lif in zip(groups, lifs)
              for d in _dense_inputs(n, [w[ids] for w in weights], ids, owner, members, ports, lif, bits)]
    return tuple(denses), tuple(lifs), tuple(groups), {}
