"""Loihi core builder: sparse synapse tables, one Dense block per core, resource model.

A core owns a chunk of one layer; its input axons are the distinct source neurons
its chunk reads. Each core is one Lava Dense (all its axons) + one LIF, so a core's
weight exponent and sign mode apply to the summed input exactly as in Lava.
Synapse memory follows nengo-loihi's cost model (LOIHI.md §2.1).
"""
from __future__ import annotations

import numpy as np

from neurocomp.distinct import count_distinct, renumbered
from neurocomp.errors import ResourceError
from neurocomp.ir.layers import Layer
from neurocomp.ir.netlist import LayerMap, Netlist
from neurocomp.ir.synapses import Synapses
from neurocomp.memory import require
from neurocomp.partition import LayerCount, cat, compact, neuron_order, outgrown, split
from neurocomp.partition.delays import timing
from neurocomp.partition.period import Run, runs
from neurocomp.partition.rows import OrderedRows, Windows, window_width
from neurocomp.quantize import QNetwork, stored_signs
from neurocomp.target import TargetSpec
from neurocomp.targets.loihi.quant import is_mixed

SIGN_CODES = {"excitatory": 0, "inhibitory": 1, "mixed": 2}
SHARED_LISTS = True   # a core repeating a cycle names its original's synapse list (_Builder.add_copy)
BY_CHANNEL = False    # depthwise convs tiled position-major (partition.split.conv_groups): few destination cores per core
LIST_BYTES = 40       # peak bytes per synapse of a new list while it is built (coo, ids, weights and their joins)


def axon_bits(per_axon: np.ndarray, core_neurons: np.ndarray, spec: TargetSpec) -> np.ndarray:
    """Synapse-memory bits per axon: chunks of <= 64 synapses, each rounded up to 64-bit words;
    dense format (no index bits) when the axon reaches every neuron of its core."""
    wbits, chunk, extra = spec["core.weight_bits"], spec["core.synapses_per_chunk"], spec["core.synapse_chunk_overhead_bits"]
    idx_bits = np.maximum(np.ceil(np.log2(np.maximum(core_neurons, 2))), 1).astype(np.int64)
    words = lambda bits: -(-bits // 64) * 64  # noqa: E731
    full, rem = per_axon // chunk, per_axon % chunk
    sparse = full * words(chunk * (wbits + idx_bits) + extra) + (rem > 0) * words(rem * (wbits + idx_bits) + extra)
    dense = full * words(chunk * wbits + extra) + (rem > 0) * words(rem * wbits + extra)
    return np.where(per_axon == core_neurons, np.minimum(dense, sparse), sparse)


def synapse_bits(axon: np.ndarray, n_axons: int, n_neurons: int, spec: TargetSpec) -> int:
    per = np.bincount(axon, minlength=n_axons)
    return int(axon_bits(per, np.full(n_axons, n_neurons), spec).sum())


def _fits(windows: Windows[OrderedRows], spec: TargetSpec):
    n_max, a_max, b_max = spec["core.neurons"], spec["core.axons"], spec["core.synapse_bits"]

    def fits(lo: int, hi: int) -> tuple[bool, str, float, float]:
        rows, off = windows.get(lo, hi)
        lo, hi = lo - off, hi - off
        per_axon = rows.per_input(lo, hi)
        bits = int(axon_bits(per_axon, np.full(per_axon.size, hi - lo), spec).sum())
        usage = [("neurons", hi - lo, n_max), ("input axons", per_axon.size, a_max), ("synapse memory bits", bits, b_max)]
        worst = max(usage, key=lambda u: u[1] / u[2])
        return all(u[1] <= u[2] for u in usage), *worst

    return fits


def _core_tables(rows: OrderedRows, lo: int, hi: int, mixed: bool):
    """Local synapse table of one core (int32: a core has at most a few thousand axons and neurons, and 9-bit
    weights) and the global sources of its axons."""
    axon_src, syn_a, syn_n, syn_w, offset = [], [], [], [], 0
    for source, m in rows.rows:
        first, last = m.indptr[lo], m.indptr[hi]
        used, local = renumbered(m.indices[first:last])
        axon_src.append((source, used, offset))
        syn_a.append(local.astype(np.int32) + np.int32(offset))
        syn_n.append(np.repeat(np.arange(hi - lo, dtype=np.int32), np.diff(m.indptr[lo:hi + 1])))
        syn_w.append(m.data[first:last].astype(np.int32) << np.int32(mixed))
        offset += len(used)
    return axon_src, offset, *(parts[0] if len(parts) == 1 else cat(parts, np.int32) for parts in (syn_a, syn_n, syn_w))


def _hint(name: str):
    """What to change when one neuron of layer `name` fits no Loihi core."""
    def hint(resource: str, used: float, allowed: float) -> str:
        if resource == "input axons":
            return (f"{name} reads {used:g} inputs per neuron and a core has {allowed:g} input axons: use conv groups or a "
                    f"smaller kernel, or split its input channels over several layers")
        return f"{name}'s synapses alone exceed one core's {resource}: reduce its fan-in"
    return hint


def _windows(layer: Layer, spec: TargetSpec) -> Windows[OrderedRows]:
    order = neuron_order(layer, 1, BY_CHANNEL)
    return Windows(layer.size, lambda lo, hi: OrderedRows(layer, order[lo:hi], keep_support=True),
                   window_width(layer, order, int(spec["core.neurons"])))


def count_cores(qnet: QNetwork, spec: TargetSpec) -> list[LayerCount]:
    """The cores build_netlist would cut each layer into, with no core tables kept: memory stays at one
    window of rows, so networks whose synapse tables would not fit in memory can still be sized."""
    return [_count_layer(layer, spec) for layer in qnet.network.layers]


def _count_layer(layer: Layer, spec: TargetSpec) -> LayerCount:
    try:
        spans, bound = split(layer, _fits(_windows(layer, spec), spec), _hint(layer.name),
                             runs=runs(layer, 1, by_channel=BY_CHANNEL))
    except ResourceError as err:
        return LayerCount(layer.name, layer.size, 0, err.resource, err.used, err.allowed, str(err))
    return LayerCount(layer.name, layer.size, len(spans), *bound)


def _within_chips(layers: tuple[Layer, ...], li: int, cores: int, spec: TargetSpec) -> None:
    """Refuse as soon as layers 0..li outgrow the chips, rather than after building the rest: those are counted by
    the census, so the refusal gives the network's exact total."""
    if cores > spec.max_cores:
        rest = sum(_count_layer(layer, spec).cores for layer in layers[li + 1:])
        counted = (layers[li + 1].name, layers[-1].name) if li + 1 < len(layers) else None
        raise outgrown(spec, cores + rest, li + 1, len(layers), counted)


class _Builder:
    """The netlist's arrays, appended to core by core as the partitioner finalises spans; a core that repeats an
    earlier one's span names that core's synapse list (neurocomp.ir.synapses)."""

    def __init__(self, qnet: QNetwork) -> None:
        self.offsets, off = {}, 0
        for inp in qnet.network.inputs:
            self.offsets[inp.name] = off
            off += int(np.prod(inp.shape))
        self.n_ptr, self.a_ptr = [0], [0]
        self.acc: dict[str, list] = {k: [] for k in ("core_layer", "template", "syn_a", "syn_n", "syn_w", "e_src", "e_ax",
                                                     "i_ch", "i_ax", "sign", "wexp")}
        self.params: dict[str, list[np.ndarray]] = {}
        self.axon_src: list[list[tuple[str, np.ndarray, int]]] = []   # per core: (source, inputs, first axon) per projection

    def add_core(self, rows: OrderedRows, lo: int, hi: int, li: int, q, mixed: bool, ids: np.ndarray) -> int:
        """Append the core holding window rows [lo, hi) with a list of its own; records its neurons' global ids in
        `ids`."""
        axon_src, n_axons, sa, sn, sw = _core_tables(rows, lo, hi, mixed)
        sign = "mixed" if mixed else ("inhibitory" if sw.size and sw.max() <= 0 and sw.min() < 0 else "excitatory")
        acc = self.acc
        acc["syn_a"].append(compact(sa, np.int16))
        acc["syn_n"].append(compact(sn, np.int16))
        acc["syn_w"].append(compact(sw, np.int16))   # 9-bit once verified
        return self._append(rows.order[lo:hi], axon_src, n_axons, len(acc["syn_a"]) - 1, li, SIGN_CODES[sign],
                            -int(mixed), q, ids)

    def add_copy(self, core: int, chunk: np.ndarray, shifts: list[int], q, ids: np.ndarray) -> int:
        """Append a core with `core`'s synapse list, its neurons `chunk` and each projection's inputs moved by
        `shifts` (a span of a cycle that recurs, partition.period): nothing is searched or built again."""
        acc = self.acc
        axon_src = [(source, used + shift, offset) for (source, used, offset), shift in zip(self.axon_src[core], shifts)]
        return self._append(chunk, axon_src, self.a_ptr[core + 1] - self.a_ptr[core], acc["template"][core],
                            acc["core_layer"][core], acc["sign"][core], acc["wexp"][core], q, ids)

    def _append(self, chunk: np.ndarray, axon_src: list, n_axons: int, template: int, li: int, sign: int, wexp: int, q,
                ids: np.ndarray) -> int:
        acc, n0, a0 = self.acc, self.n_ptr[-1], self.a_ptr[-1]
        ids[chunk] = n0 + np.arange(len(chunk))
        for source, used, offset in axon_src:
            axons = a0 + offset + np.arange(len(used))
            if source in self.offsets:
                acc["i_ch"].append(self.offsets[source] + used)
                acc["i_ax"].append(axons)
            else:  # resolved once every layer has its ids: a recurrent source may come later
                acc["e_src"].append((source, used))
                acc["e_ax"].append(axons)
        self.axon_src.append(axon_src)
        acc["template"].append(template)
        acc["core_layer"].append(li)
        acc["sign"].append(sign)
        acc["wexp"].append(wexp)
        for key, arr in q.params.items():
            val = np.full(len(chunk), wexp, dtype=np.int64) if key == "weight_exp" else arr[chunk]
            self.params.setdefault(key, []).append(val)
        self.n_ptr.append(n0 + len(chunk))
        self.a_ptr.append(a0 + n_axons)
        return len(self.n_ptr) - 2

    def synapses(self) -> Synapses:
        acc = self.acc
        ptr = np.concatenate([[0], np.cumsum([a.size for a in acc["syn_a"]])]).astype(np.int64)
        return Synapses(np.array(acc["template"], dtype=np.int64), ptr, _joined(acc["syn_a"]), _joined(acc["syn_n"]),
                        {"weight": _joined(acc["syn_w"])})


def build_netlist(qnet: QNetwork, spec: TargetSpec) -> Netlist:
    net, out = qnet.network, _Builder(qnet)
    firsts: dict[str, np.ndarray] = {}
    maps = []
    for li, layer in enumerate(net.layers):
        q = qnet.layers[li]
        mixed = is_mixed(stored_signs(layer))   # per layer, as the quantiser sized its weights
        windows = _windows(layer, spec)
        ids = np.empty(layer.size, dtype=np.int64)
        core_ids: list[int] = []

        def emit(lo: int, hi: int, li: int = li, q=q, mixed: bool = mixed, windows: Windows[OrderedRows] = windows,
                 ids: np.ndarray = ids, core_ids: list[int] = core_ids, name: str = layer.name) -> None:
            rows, off = windows.get(lo, hi)
            synapses = sum(int(m.indptr[hi - off] - m.indptr[lo - off]) for _, m in rows.rows)
            require(f"layer {name}, core {len(core_ids)} ({synapses:,} synapses)", LIST_BYTES * synapses,
                    "shrink the layer's fan-in, or size the network with `neurocomp check MODEL --target T --census`")
            core_ids.append(out.add_core(rows, lo - off, hi - off, li, q, mixed, ids))

        def repeat(cycle: list[tuple[int, int]], run: Run, steps: int, times: int, q=q, ids: np.ndarray = ids,
                   core_ids: list[int] = core_ids, order: np.ndarray = neuron_order(layer, 1, BY_CHANNEL)) -> None:
            cores = core_ids[-len(cycle):]
            shift = cycle[-1][1] - cycle[0][0]
            for k in range(1, times + 1):
                for core, (lo, hi) in zip(cores, cycle):
                    chunk = order[lo + k * shift:hi + k * shift]
                    core_ids.append(out.add_copy(core, chunk, [k * steps * m for m in run.shifts], q, ids))

        _, bound = split(layer, _fits(windows, spec), _hint(layer.name), emit, runs=runs(layer, 1, by_channel=BY_CHANNEL),
                         repeat=repeat)
        firsts[layer.name] = ids
        maps.append(LayerMap(layer.name, layer.shape, ids, layer.kind, q.scale, tuple(core_ids), *bound))
        _within_chips(net.layers, li, len(out.n_ptr) - 1, spec)
    acc = out.acc
    wide = np.int32 if max(out.n_ptr[-1], out.a_ptr[-1]) < 2 ** 31 else np.int64   # edges: one per axon, the most
    e_src, i_ax = cat([firsts[source][used] for source, used in acc["e_src"]], wide), cat(acc["i_ax"])
    return Netlist(
        target=spec.name, neuron_ptr=np.array(out.n_ptr, dtype=np.int64), axon_ptr=np.array(out.a_ptr, dtype=np.int64),
        core_layer=np.array(acc["core_layer"], dtype=np.int64), params={k: cat(v) for k, v in out.params.items()},
        synapses=out.synapses(), core_tables={"sign_mode": np.array(acc["sign"], dtype=np.int64),
                                              "weight_exp": np.array(acc["wexp"], dtype=np.int64)},
        edge_src=e_src, edge_axon=cat(acc["e_ax"], wide), edge_delay=np.ones(len(e_src), dtype=wide),
        in_channel=cat(acc["i_ch"]), in_axon=i_ax, in_delay=np.ones(len(i_ax), dtype=np.int64),
        inputs=tuple((i.name, i.shape) for i in net.inputs), layers=tuple(maps), outputs=net.outputs,
        notes={"latency": timing(net).latency},
    )


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """Per-core arrays as one, in the widest of their dtypes (numpy's promotion). Consumes `parts`, freeing each
    once copied: the peak is the result plus one core's part, not the result twice over."""
    if not parts:
        return np.zeros(0, np.int32)
    out = np.empty(sum(p.size for p in parts), np.result_type(*{p.dtype for p in parts}))
    parts.reverse()
    at = 0
    while parts:
        part = parts.pop()
        out[at:at + part.size] = part
        at += part.size
    return out


def _per_core_distinct(core: np.ndarray, keys: list[np.ndarray], n_cores: int) -> np.ndarray:
    """Distinct key tuples per core (a lexsort: numpy's unique over axis 1 is many times slower)."""
    order = np.lexsort(keys[::-1] + [core])
    rows = np.stack([core] + keys)[:, order]
    new = np.ones(core.size, dtype=bool)
    new[1:] = np.any(rows[:, 1:] != rows[:, :-1], axis=0)
    return np.bincount(rows[0][new], minlength=n_cores)


def _destination_cores(n: Netlist) -> np.ndarray:
    """(C,) distinct destination cores of each core's edges: one sorted key per edge (Netlist.core_pair_keys), not a
    lexsort of stacked columns (a paper-size net has 6 x 10^7 edges)."""
    key = n.core_pair_keys()
    return count_distinct(key, lambda keys: np.remainder(keys, key.dtype.type(n.n_cores), out=keys), n.n_cores)


def _core_bits(n: Netlist, spec: TargetSpec) -> np.ndarray:
    """(C,) synapse-memory bits per core, computed once per synapse list (the cores naming a list have its axon
    and neuron counts: Synapses.problem)."""
    syn = n.synapses
    per_axon, base = n.list_axon_counts
    axons = np.diff(base)
    neurons = np.repeat(syn.template_sizes(n.neuron_ptr), axons)
    per_list = np.bincount(np.repeat(np.arange(syn.n_templates), axons), weights=axon_bits(per_axon, neurons, spec),
                           minlength=syn.n_templates)
    return per_list[syn.core_template]


def verify_netlist(n: Netlist, spec: TargetSpec) -> None:
    """Per-core limits the generic check does not know: output axons, synapse memory, config registers."""
    core_of = n.neuron_core()
    out_axons = _destination_cores(n)
    bits = _core_bits(n, spec)
    vth = _per_core_distinct(core_of, [n.params["vth"]], n.n_cores)
    cx = _per_core_distinct(core_of, [n.params[k] for k in ("du", "dv", "bias_exp")], n.n_cores)
    checks = (("output axons", out_axons, spec["core.output_axons"],
               "a core's neurons feed too many distinct (core, axon) destinations: give the consuming layers fewer, larger cores"),
              ("synapse memory bits", bits, spec["core.synapse_bits"], "reduce the layer's fan-in or its weights' distinct values"),
              ("threshold config registers", vth, spec["core.vth_configs"],
               "a core may use at most this many distinct thresholds: round the layer's per-neuron thresholds to fewer values"),
              ("compartment config registers", cx, spec["core.compartment_configs"],
               "a core may use at most this many distinct (du, dv, bias_exp): give the layer's neurons fewer distinct decays"))
    for resource, used, allowed, hint in checks:
        bad = np.flatnonzero(used > allowed)
        if bad.size:
            c = int(bad[0])
            raise ResourceError(f"core {c} (layer {n.layers[n.core_layer[c]].name})", resource, float(used[c]), allowed, hint)
    syn = n.synapses
    w = syn.tables["weight"]
    bad = np.flatnonzero((w < -256) | (w > 255))
    if bad.size:   # composed weights of a chain the quantiser could not size (several full-range weighted ops)
        c = int(np.flatnonzero(syn.core_template == np.searchsorted(syn.ptr, bad[0], side="right") - 1)[0])
        raise ResourceError(f"core {c} (layer {n.layers[n.core_layer[c]].name})", "Dense weight", float(abs(w[bad[0]])),
                            255, "its chain of weighted ops composes weights beyond 8 bits: fold or rescale them")
