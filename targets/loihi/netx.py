"""Export a compiled Loihi program as a lava-dl netx HDF5 network (LOIHI.md §11, PEERS.md §1.7).

Layout (what `lava.lib.dl.netx.hdf5.Network` reads): group `layer`, one subgroup `layer/<i>` per graph layer
in order, each with `type` = "dense", `shape` = (neurons,), `inFeatures`, `outFeatures`, `weight`
(outFeatures x inFeatures integers), `bias` (per neuron, when any is non-zero) and a `neuron` group of CUBA
hardware integers: `type` = "CUBA", `iDecay` = du + 1, `vDecay` = dv, `vThMant` = vth, `refDelay` = 1,
`gradedSpike` = False (netx builds `LIF(du=iDecay - 1, dv=vDecay, vth=vThMant, bias_mant=bias, bias_exp=6)`).
Attributes (ignored by netx) keep the graph layer's name, shape, kind and float scale.

The weights are the integers one input spike adds to u in units of 64, reassembled from the cores:
each core's Lava-prepared weights (sign mode, clip, LSB drop) times 2**weight_exp. netx chooses its own
sign mode, exponent and weight bits per layer from them, so per-core weight exponents and sign modes are not
stored; they are representable only when exact: a negative exponent must divide every weight (it does for the
mapper's doubled mixed-sign weights). Conv and pooled layers are written as their exact dense matrix (netx's
conv import ignores weight exponents and has no pooling). Columns follow the graph's flattened (C, H, W) order
of the previous layer, or of the input for layer 0.

Not representable, each a UserError naming the layer: layers that are not a chain (netx layer i reads only
layer i - 1; layer 0 reads the one input), du / dv / vth differing within a layer (netx keeps one per layer),
bias exponents other than 6, non-zero initial u or v, weights outside netx's 8-bit range, and edges with
delays other than one tick. lava-dl does not install on Python 3.11, so the file is tested with h5py.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import scipy.sparse as sp

from neurocomp.errors import UserError
from neurocomp.ir.netlist import LayerMap, Netlist
from neurocomp.program import Program
from neurocomp.safewrite import Kind, write_file
from neurocomp.targets.loihi.emulation import synapse_matrix
from neurocomp.targets.loihi.neuron import PARAMS

NETX_BIAS_EXP = 6                  # netx builds every LIF with bias_exp = 6
LAYER_SCALARS = ("du", "dv", "vth")


def export_netx(program: Program, path: str | Path) -> None:
    """Write `path` under neurocomp.safewrite (temporary sibling + rename)."""
    n = program.netlist
    if not set(PARAMS) <= set(n.params) or "sign_mode" not in n.core_tables:
        raise UserError(f"netx export needs a Loihi program; this one targets {n.target!r}")
    weights = _effective_weights(n)

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            f.attrs.update({"generator": "neurocomp", "target": n.target, "input_shape": _input_shape(n)})
            group = f.create_group("layer")
            previous = np.arange(n.n_inputs)
            for i, lm in enumerate(n.layers):
                _write_layer(group.create_group(str(i)), n, lm, _layer_weights(n, lm, weights, previous))
                previous = n.n_inputs + lm.neurons

    write_file(path, NETX_KIND, write)


def _not_netx(path: Path) -> str | None:
    """safewrite's test for a file export_netx may replace: an HDF5 file neurocomp generated."""
    try:
        with h5py.File(path, "r") as f:
            return None if f.attrs.get("generator") == "neurocomp" else "no generator attribute 'neurocomp'"
    except OSError:
        return "not an HDF5 file"


NETX_KIND = Kind("neurocomp netx network", False, _not_netx)


def _input_shape(n: Netlist) -> np.ndarray:
    if len(n.inputs) != 1:
        names = ", ".join(k for k, _ in n.inputs)
        raise UserError(f"netx networks have one input; this program has {len(n.inputs)} ({names})")
    return np.array(n.inputs[0][1], dtype=np.int64)


def _layer_of_core(n: Netlist, core: int) -> str:
    layer = int(n.core_layer[core])
    return n.layers[layer].name if layer >= 0 else f"(helper core {core})"


def _effective_weights(n: Netlist) -> sp.csr_matrix:
    """(neurons x (channels + neurons)) integer weights: prepared weight times 2**weight_exp, axons replaced by
    their sources (two axons from one source add up, exactly as their spikes would)."""
    axon_core = n.axon_core()
    hits = np.bincount(np.concatenate([n.in_axon, n.edge_axon]), minlength=n.n_axons)
    if hits.max(initial=0) > 1:
        layer = _layer_of_core(n, int(axon_core[np.argmax(hits)]))
        raise UserError(f"layer {layer}: an input axon has several sources, which netx cannot express")
    delay, axon = np.concatenate([n.in_delay, n.edge_delay]), np.concatenate([n.in_axon, n.edge_axon])
    if np.any(delay != 1):
        layer = _layer_of_core(n, int(axon_core[axon[np.argmax(delay != 1)]]))
        raise UserError(f"layer {layer}: input delays other than one tick cannot be exported to netx")
    src = np.full(n.n_axons, -1, dtype=np.int64)
    src[n.in_axon] = n.in_channel
    src[n.edge_axon] = n.n_inputs + n.edge_src
    s = synapse_matrix(n).tocoo()
    keep = src[s.col] >= 0
    row, col, w = s.row[keep], src[s.col[keep]], s.data[keep].astype(np.int64)
    exp = np.asarray(n.params["weight_exp"], dtype=np.int64)[row]
    inexact = (exp < 0) & (w % (1 << np.maximum(-exp, 0)) != 0)
    if inexact.any():
        layer = _layer_of_core(n, int(n.neuron_core()[row[np.argmax(inexact)]]))
        raise UserError(f"layer {layer}: weight_exp {int(exp[np.argmax(inexact)])} floors the summed input, "
                        "which no netx integer weight reproduces for its weights")
    w = np.where(exp >= 0, w << np.maximum(exp, 0), w >> np.maximum(-exp, 0))
    return sp.csr_matrix((w, (row, col)), shape=(n.n_neurons, n.n_inputs + n.n_neurons))


def _layer_weights(n: Netlist, lm: LayerMap, weights: sp.csr_matrix, previous: np.ndarray) -> np.ndarray:
    """The layer's dense (neurons x previous) matrix; any weight from elsewhere breaks netx's chain."""
    rows = weights[lm.neurons]
    inside = rows[:, previous]
    if inside.count_nonzero() != rows.count_nonzero():
        raise UserError(f"layer {lm.name}: reads from a source other than the previous layer "
                        "(netx networks are a chain of layers)")
    dense = inside.toarray()
    mixed = dense.min(initial=0) < 0 < dense.max(initial=0)
    hi = 254 if mixed else 255
    if dense.size and (dense.min() < -256 or dense.max() > hi):
        raise UserError(f"layer {lm.name}: weights span [{dense.min()}, {dense.max()}], outside netx's [-256, {hi}]")
    return dense.astype(np.int16)


def _write_layer(g: h5py.Group, n: Netlist, lm: LayerMap, weight: np.ndarray) -> None:
    p = {k: np.asarray(n.params[k], dtype=np.int64)[lm.neurons] for k in PARAMS}
    for key in LAYER_SCALARS:
        if np.unique(p[key]).size > 1:
            raise UserError(f"layer {lm.name}: {key} differs between its neurons ({np.unique(p[key]).size} values); "
                            "netx keeps one per layer")
    if np.any(p["bias_exp"] != NETX_BIAS_EXP):
        raise UserError(f"layer {lm.name}: bias exponent {int(p['bias_exp'][0])}, netx uses {NETX_BIAS_EXP}")
    if np.any(p["u_init"] != 0) or np.any(p["v_init"] != 0):
        raise UserError(f"layer {lm.name}: non-zero initial potential; netx networks start from rest")
    g.attrs.update({"name": lm.name, "graph_shape": np.array(lm.shape, dtype=np.int64), "kind": lm.kind,
                    "scale": lm.scale})
    g.create_dataset("type", (1,), "S10", [b"dense"])
    g.create_dataset("shape", data=np.array([lm.neurons.size], dtype=np.int64))
    g.create_dataset("inFeatures", data=weight.shape[1])
    g.create_dataset("outFeatures", data=weight.shape[0])
    g.create_dataset("weight", data=weight)
    if np.any(p["bias_mant"] != 0):
        g.create_dataset("bias", data=p["bias_mant"].astype(np.int16))
    neuron = g.create_group("neuron")
    neuron.create_dataset("type", (1,), "S10", [b"CUBA"])
    neuron.create_dataset("iDecay", data=int(p["du"][0]) + 1)
    neuron.create_dataset("vDecay", data=int(p["dv"][0]))
    neuron.create_dataset("vThMant", data=int(p["vth"][0]))
    neuron.create_dataset("refDelay", data=1)
    neuron.create_dataset("gradedSpike", data=False)
