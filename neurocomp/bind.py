"""Bind a run-time kernel (a Correlation's weights) into a compiled program.

Only the layers a Correlation feeds that the caller reads (and the partial layers a target
splits them into) are rebuilt: a subgraph of those layers, their sources turned into inputs,
goes through legalize, quantise and partition, and its cores' tables are written over the
program's cores of the same layers. Routes, delays and placement are kept. The structure
comes from the kernel's shape, never its values: the partitioner plans a bound layer on its
structural support (partition.rows.support: TrueNorth opens every axon type of every input
it may read, Loihi keeps zero-weight synapses), so any kernel of the compiled shape fits the
cores planned for it; one of another shape is refused before anything is written.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from neurocomp.compiler import FRONT_END, CompileOptions, Values, check_spiking_inputs, run_stages
from neurocomp.errors import UserError
from neurocomp.ir.graph import LINEAR_OPS, NEURONS, Correlation, Graph, Input, Output
from neurocomp.ir.layers import lower
from neurocomp.ir.netlist import Netlist, spans
from neurocomp.program import Program, build
from neurocomp.target import Target


@dataclass(frozen=True)
class Bound:
    program: Program
    changed_cores: np.ndarray   # ids of the cores whose tables were rewritten
    layers: tuple[str, ...]     # the netlist layers those cores serve


def bound_layers(g: Graph) -> tuple[str, ...]:
    """Neuron layers fed through a Correlation: the only ones a binding may rewrite."""
    return tuple(lay.name for lay in lower(g).layers
                 if any(isinstance(op, Correlation) for p in lay.projections for op in p.chain))


def bind(program: Program, graph: Graph, target: Target, also: tuple[str, ...] = (),
         read: tuple[str, ...] | None = None) -> Bound:
    """`program` with the tables of `graph` (the compiled graph with new Correlation kernels);
    `also` names further layers whose registers the host may rewrite (e.g. timing gates);
    `read` (None: all) the layers the host reads: bound layers it does not read keep their
    old tables, so a binding costs only what is used."""
    check_spiking_inputs(graph, target)
    roots = tuple(name for name in bound_layers(graph) if read is None or name in read) + tuple(also)
    if not roots:
        return Bound(program, np.zeros(0, dtype=np.int64), ())
    sub = _subgraph(graph, roots)
    mode = program.manifest["options"].get("weights", "levels")   # rebuild with the weight mode it compiled with
    new = run_stages(FRONT_END, Values(sub, target, CompileOptions(weights=mode))).netlist
    cores, rebuilt = _core_pairs(program.netlist, new)
    netlist = _splice(program.netlist, new, cores, rebuilt)
    changed = _changed_cores(program.netlist, netlist, cores)
    layers = tuple(sorted({netlist.layers[i].name for i in np.unique(netlist.core_layer[changed]) if i >= 0}))
    fields = {k: v for k, v in program.manifest.items() if k in ("options", "model_sha256", "target_spec_sha256",
                                                                 "placement")}
    return Bound(build(fields, netlist, program.placed, program.target), changed, layers)


def _subgraph(g: Graph, roots: tuple[str, ...]) -> Graph:
    """The root layers with their linear chains; every other source becomes a spiking Input."""
    nodes = g.node_map
    keep: set[str] = set(roots)
    for root in roots:
        for pred in g.predecessors(root):
            cur = pred
            while isinstance(nodes[cur], LINEAR_OPS):
                keep.add(cur)
                cur = g.predecessors(cur)[0]
            keep.add(cur)
    keep |= {b for a, b in g.edges if a in roots and isinstance(nodes[b], Output)}
    sources = {n for n in keep if n not in roots and isinstance(nodes[n], NEURONS + (Input,))}
    made = tuple(Input(n.name, g.shape(n.name), "spikes") if n.name in sources else n
                 for n in g.nodes if n.name in keep)
    return Graph(made, tuple((a, b) for a, b in g.edges if a in keep and b in keep and b not in sources), g.metadata)


def _core_pairs(old: Netlist, new: Netlist) -> tuple[np.ndarray, np.ndarray]:
    """(program cores, rebuilt cores): every core of the rebuilt layers and its place in the program; their
    neuron and axon counts must agree."""
    by_name = {lm.name: lm for lm in old.layers}
    a, b = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for lm in new.layers:
        before = by_name[lm.name].cores if lm.name in by_name else ()
        if len(before) != len(lm.cores):
            raise UserError(f"the bound kernel needs {len(lm.cores)} cores for {lm.name}, the program has "
                            f"{len(before)}; recompile with this kernel instead")
        a.append(np.asarray(before, dtype=np.int64))
        b.append(np.asarray(lm.cores, dtype=np.int64))
    pa, pb = np.concatenate(a), np.concatenate(b)
    for ptr in ("neuron_ptr", "axon_ptr"):
        o, n = np.diff(getattr(old, ptr))[pa], np.diff(getattr(new, ptr))[pb]
        if np.any(o != n):
            k = int(np.flatnonzero(o != n)[0])
            raise UserError(f"the bound kernel changes core {pa[k]}'s {ptr.split('_')[0]} count "
                            f"({n[k]} vs {o[k]}); recompile with this kernel instead")
    return pa, pb


def _splice(old: Netlist, new: Netlist, a: np.ndarray, b: np.ndarray) -> Netlist:
    """`old` with cores `a`'s parameters, synapses and tables taken from `new`'s cores `b`."""
    neu_o, neu_n = spans(old.neuron_ptr, a), spans(new.neuron_ptr, b)
    ax_o, ax_n = spans(old.axon_ptr, a), spans(new.axon_ptr, b)
    params = {key: arr.copy() for key, arr in old.params.items()}
    for key, arr in params.items():
        arr[neu_o] = new.params[key][neu_n]
    neuron_map = np.full(new.n_neurons, -1, dtype=np.int64)
    neuron_map[neu_n] = neu_o
    axon_map = np.full(new.n_axons, -1, dtype=np.int64)
    axon_map[ax_n] = ax_o
    old_core = old.axon_core()
    keep = ~np.isin(old_core[old.syn_axon], a)
    take = np.isin(new.axon_core()[new.syn_axon], b)
    syn_axon = np.concatenate([old.syn_axon[keep], axon_map[new.syn_axon[take]]])
    order = np.argsort(old_core[syn_axon], kind="stable")
    per_synapse = {key: np.concatenate([old.syn_tables[key][keep], new.syn_tables[key][take]])[order]
                   for key in old.per_synapse}
    core_tables = {}
    for key, arr in old.core_tables.items():
        core_tables[key] = arr.copy()
        idx_o, idx_n = (ax_o, ax_n) if arr.shape == (old.n_axons,) else (a, b)
        core_tables[key][idx_o] = new.core_tables[key][idx_n]
    syn_neuron = np.concatenate([old.syn_neuron[keep], neuron_map[new.syn_neuron[take]]])[order]
    scale = {lm.name: lm.scale for lm in new.layers}   # a kernel sets its layers' scales: read-outs are read in them
    layers = tuple(dataclasses.replace(lm, scale=scale.get(lm.name, lm.scale)) for lm in old.layers)
    return old.with_synapses(syn_axon[order], syn_neuron, per_synapse, params=params, core_tables=core_tables,
                             layers=layers)


def _changed_cores(old: Netlist, new: Netlist, spliced: np.ndarray) -> np.ndarray:
    """Cores whose neuron parameters, synapses or synapse/axon tables differ (`new` is `old` with the `spliced`
    cores rewritten: only their synapse lists are compared)."""
    changed = np.zeros(old.n_cores, dtype=bool)
    cores = old.neuron_core()
    for key, arr in old.params.items():
        changed[cores[np.any((arr != new.params[key]).reshape(len(arr), -1), axis=1)]] = True
    axon_core = old.axon_core()
    for key, arr in old.core_tables.items():
        if arr.shape == (old.n_axons,):
            changed[axon_core[arr != new.core_tables[key]]] = True
        else:
            changed |= arr != new.core_tables[key]
    return np.flatnonzero(changed | _synapse_changes(old, new, axon_core, spliced))


def _synapse_changes(old: Netlist, new: Netlist, axon_core: np.ndarray, spliced: np.ndarray) -> np.ndarray:
    """Per core: does its synapse list (with any per-synapse table) differ? Only the spliced cores' synapses
    are sorted (the rest are old's own); axon ids are contiguous per core, so sorting by (axon, neuron) lines
    up equal-sized cores."""
    count = lambda n: np.bincount(axon_core[n.syn_axon], minlength=n.n_cores)  # noqa: E731
    changed = count(old) != count(new)
    inside = np.zeros(old.n_cores, dtype=bool)
    inside[spliced] = True
    cols = []
    for n in (old, new):
        sel = np.flatnonzero(inside[axon_core[n.syn_axon]])
        order = sel[np.lexsort((n.syn_neuron[sel], n.syn_axon[sel]))]
        keep = ~changed[axon_core[n.syn_axon[order]]]
        per_syn = [n.syn_tables[k] for k in n.per_synapse]
        cols.append(np.stack([n.syn_axon, n.syn_neuron, *per_syn])[:, order][:, keep])
    mismatch = np.any(cols[0] != cols[1], axis=0)
    changed[axon_core[cols[0][0][mismatch]]] = True
    return changed
