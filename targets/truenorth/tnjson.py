"""Export a compiled TrueNorth program as IBM's model JSON and its input as NSCS text spikes (TRUENORTH.md §10).

The model file describes the real chip: `Netlist.expanded()` gives one neuron per fan-out copy, and core c
of the file is netlist core c, its neuron j hardware neuron `neuron_ptr[c] + j` of the expanded netlist (the
program's layer maps locate graph positions there). It is an ordered stream, written by hand, not by
json.dump of a dict: `{"model", "crossbarTypes", "neuronTypes", then one "core" per core under a repeated key}`.

Mapping choices:
* Registers -> NeuronGeneral fields: w[:, G] = sigma_G * s_G (sigma_G = +1 where w = 0); the b flags are the
  optional `stoch_syn` table (absent: false); leak = sigma_lambda * lambda (sigma_lambda = -1 where leak <= 0,
  pytruenorth's default); c_lambda, epsilon, alpha, beta, TM (= tm), gamma, kappa as they are; reset R =
  sigma_VR * (2^VR - 1), anything else is refused; V = v_init. Flags are JSON booleans, as CPE writes them.
* neuronTypes are the distinct parameter tuples (numpy unique over all neurons), named N%08X from 1 in the
  order of first use; a core's `types` hold those numbers (NeMo reads the name as hex). A core with fewer than
  256 neurons is padded with an "off" type (no weights, no leak, alpha 1, V 0: it never fires), destination -1.
* crossbarTypes are the distinct crossbars (rows of 32 space-separated hex bytes as CPE writes them, MSB of the
  first byte = neuron 0; row type S0..S3 = the axon's type, S0 and no synapses for an unused axon), named
  coreProt%07d from 1; every core names its prototype (`useCrossbarPrototypes`).
* Destinations: a neuron's one edge gives destCore (netlist core id), destAxon (core-local) and destDelay
  (1..15). A neuron without an edge in an output layer sends to -32 (NSCS's output, pytruenorth's
  NEURON_DEST_OUT) with destAxon = its core-local index; any other neuron without an edge gets -1 (CPE's
  unused neuron) and delay 1. Splitter cores are ordinary cores (metadata coreletClass "splitter").
* Per core: `metadata` (coreletClass = the layer's name or "splitter", coreletId = the layer's index or the
  number of layers for splitters, coreNumber = rank among that corelet's cores, parentCoreletId [-1], and the
  placement's chip, x, y), `timeScaleExponent` 0, `rngSeed` = numpy SeedSequence(compile seed) words, one per
  core (IBM's PRNG is not public: deterministic programs never use it).
* Integer arrays are compressed where that is shorter: a run of >= 3 equal values as "vxn", a progression
  of >= 3 values with step 1 as "a:b", any other step as "a:step:b"; other values stay plain integers.
* The model's `buildKey64` is "neurocomp-truenorth-model-1": the mark by which a later export recognises its
  own file (neurocomp.safewrite never replaces a file without it).

Input spikes (.sfti): a header line {"class":"SpikeWriter","encoding":"TEXT","nscsVersion":"1.4.0",
"generator":"neurocomp"}, a version line {"version":"sfti1.0","defaultDestinationDelay":1}, then one
{"spike":{"srcTime":t,"destCore":c,"destAxon":a}} per line, sorted. The input is encoded as `neurocomp run`
encodes it (the manifest's encodings, the run seed); a spike of input channel k at emulator tick t reaches
every axon of k's input edges at tick t + d (the edge's delay), so it is written with srcTime t + d - 1:
with the default delay of 1 NSCS integrates it at tick t + d, the emulator's tick. One file is one run:
one sample of the input's batch.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from neurocomp.errors import UserError
from neurocomp.ir.netlist import Netlist, ranks
from neurocomp.memory import batch_of, require_run
from neurocomp.program import Placed, Program
from neurocomp.realtime import message_bits
from neurocomp.runner import default_ticks, encode_inputs, specs_of
from neurocomp.safewrite import Kind, write_file

CORE_SIZE = 256          # TrueNorth's crossbar: axons and neurons per core
DELAY_MAX = 15
UINT8_MAX = 255
DEST_OUTPUT, DEST_NONE = -32, -1
BUILD_KEY = "neurocomp-truenorth-model-1"
SFTI_HEADER = {"class": "SpikeWriter", "encoding": "TEXT", "nscsVersion": "1.4.0", "generator": "neurocomp"}
SFTI_VERSION = {"version": "sfti1.0", "defaultDestinationDelay": 1}
FIELDS = ("sigma0", "sigma1", "sigma2", "sigma3", "s0", "s1", "s2", "s3", "b0", "b1", "b2", "b3", "sigma_lambda",
          "lambda", "c_lambda", "epsilon", "alpha", "beta", "TM", "gamma", "kappa", "sigma_VR", "VR", "V")
FLAGS = frozenset({"b0", "b1", "b2", "b3", "c_lambda", "epsilon", "kappa"})
OFF = (1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, -1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0)   # the padding neuron: never fires
MARK_BYTES = 4096


def _not_model(path: Path) -> str | None:
    """safewrite's test: a model file of ours carries BUILD_KEY in its first section."""
    with open(path, "rb") as f:
        head = f.read(MARK_BYTES)
    return None if f'"buildKey64":"{BUILD_KEY}"'.encode() in head else f"no buildKey64 {BUILD_KEY!r}"


def _not_sfti(path: Path) -> str | None:
    """safewrite's test: a spike file of ours starts with SFTI_HEADER."""
    with open(path, "rb") as f:
        head = f.readline(MARK_BYTES)
    return None if head.rstrip(b"\n") == _line(SFTI_HEADER).encode() else "not a neurocomp .sfti header"


MODEL_KIND = Kind("neurocomp TrueNorth model .json", False, _not_model)
SFTI_KIND = Kind("neurocomp NSCS input spike .sfti", False, _not_sfti)


def _line(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def compress(values: np.ndarray) -> list[int | str]:
    """An integer array in the model format's compressed form: greedy over runs of one step, each written
    as a token where that is shorter than its values (see the module docstring)."""
    a = np.asarray(values, dtype=np.int64)
    if a.size < 3:
        return a.tolist()
    step = np.diff(a)
    seg_end = np.append(np.flatnonzero(step[1:] != step[:-1]) + 1, step.size)   # segments of equal step
    end = np.repeat(seg_end, np.diff(np.concatenate([[0], seg_end])))           # end[i]: last index of i's run
    out: list[int | str] = []
    i = 0
    while i < a.size:
        j = int(end[i]) if i < step.size else i
        token = _token(int(a[i]), int(step[i]), int(a[j]), j - i + 1) if j - i >= 2 else None
        if token is not None and len(token) + 2 < len(",".join(map(str, a[i:j + 1].tolist()))):
            out.append(token)
            i = j + 1
        else:
            out.append(int(a[i]))
            i += 1
    return out


def _token(first: int, step: int, last: int, count: int) -> str:
    return f"{first}x{count}" if step == 0 else f"{first}:{last}" if step == 1 else f"{first}:{step}:{last}"


def neuron_fields(n: Netlist) -> np.ndarray:
    """(N, 24) NeuronGeneral fields (FIELDS order) of every neuron of an expanded netlist."""
    p = {k: np.asarray(v, dtype=np.int64) for k, v in n.params.items()}
    w = p["w"]
    b = p.get("stoch_syn", np.zeros_like(w)) != 0
    reset = p["reset"]
    vr = np.round(np.log2(np.abs(reset) + 1)).astype(np.int64)
    bad = np.flatnonzero((1 << vr) - 1 != np.abs(reset))
    if bad.size:
        raise UserError(f"neuron {bad[0]}: reset potential {reset[bad[0]]} is not +-(2^VR - 1), "
                        f"the only values a TrueNorth model file can state")
    for name, mag in (("weight", np.abs(w).max(axis=1, initial=0)), ("leak", np.abs(p["leak"]))):
        over = np.flatnonzero(mag > UINT8_MAX)
        if over.size:
            raise UserError(f"neuron {over[0]}: {name} magnitude {mag[over[0]]} exceeds the model file's 8 bits")
    cols = [np.where(w < 0, -1, 1), np.abs(w), b, np.where(p["leak"] > 0, 1, -1)[:, None], np.abs(p["leak"])[:, None]]
    cols += [p[k][:, None] for k in ("c_lambda", "epsilon", "alpha", "beta", "tm", "gamma", "kappa")]
    cols += [np.where(reset < 0, -1, 1)[:, None], vr[:, None], p["v_init"][:, None]]
    return np.concatenate([c.astype(np.int64) for c in cols], axis=1)


def _core_tables(n: Netlist, outputs: np.ndarray) -> dict[str, np.ndarray]:
    """(C, 256) per core slot: its neuron (-1: padding), destination core, axon and delay."""
    C = n.n_cores
    if np.diff(n.neuron_ptr).max(initial=0) > CORE_SIZE or np.diff(n.axon_ptr).max(initial=0) > CORE_SIZE:
        raise UserError(f"a core has more than {CORE_SIZE} neurons or axons: a TrueNorth model has "
                        f"{CORE_SIZE} x {CORE_SIZE} cores (this target's spec allows larger ones)")
    core = n.neuron_core()
    slot = np.arange(n.n_neurons) - n.neuron_ptr[core]
    if n.edge_delay.size and (n.edge_delay.min() < 1 or n.edge_delay.max() > DELAY_MAX):
        raise UserError(f"an axon delay outside 1..{DELAY_MAX} ticks cannot be written as destDelay")
    dest_core = np.full(n.n_neurons, DEST_NONE, dtype=np.int64)
    dest_axon = np.full(n.n_neurons, DEST_NONE, dtype=np.int64)
    delay = np.ones(n.n_neurons, dtype=np.int64)
    dest_core[outputs], dest_axon[outputs] = DEST_OUTPUT, slot[outputs]
    acore = n.axon_core()[n.edge_axon]
    dest_core[n.edge_src], dest_axon[n.edge_src] = acore, n.edge_axon - n.axon_ptr[acore]
    delay[n.edge_src] = n.edge_delay
    out = {"neuron": np.full((C, CORE_SIZE), -1, dtype=np.int64), "dest_core": np.full((C, CORE_SIZE), DEST_NONE),
           "dest_axon": np.full((C, CORE_SIZE), DEST_NONE), "delay": np.ones((C, CORE_SIZE), dtype=np.int64)}
    for key, val in (("neuron", np.arange(n.n_neurons)), ("dest_core", dest_core), ("dest_axon", dest_axon),
                     ("delay", delay)):
        out[key][core, slot] = val
    return out


def _type_ids(fields: np.ndarray, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct parameter tuples in order of first use over the core slots (each slot's neuron, or the
    OFF padding where -1), and each slot's 1-based type number."""
    rows = np.concatenate([fields, np.array([OFF], dtype=np.int64)])[np.where(slots < 0, len(fields), slots).ravel()]
    order = np.lexsort(rows.T[::-1])              # 24 stable passes: far faster than unique(axis=0)'s row sort
    ordered = rows[order]
    new = np.ones(len(rows), dtype=bool)
    new[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    group = np.empty(len(rows), dtype=np.int64)
    group[order] = np.cumsum(new) - 1
    first = np.minimum.reduceat(order, np.flatnonzero(new))       # each group's first slot
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first)] = np.arange(first.size)
    return rows[np.sort(first)], (rank[group] + 1).reshape(slots.shape)


class _Crossbars:
    """Each core's crossbar: row types and packed rows (MSB of byte 0 = neuron 0), and its 1-based prototype
    number among the distinct crossbars (`first[k - 1]`: the core that first uses prototype k)."""

    def __init__(self, n: Netlist) -> None:
        self.n, acore = n, n.axon_core()
        self.types = np.zeros((n.n_cores, CORE_SIZE), dtype=np.int64)
        self.types[acore, np.arange(n.n_axons) - n.axon_ptr[acore]] = n.syn_tables["axon_type"]
        score = acore[n.syn_axon]
        self.order = np.argsort(score, kind="stable")
        self.bounds = np.searchsorted(score[self.order], np.arange(n.n_cores + 1))
        seen: dict[bytes, int] = {}
        self.ids = np.array([seen.setdefault(self.types[c].tobytes() + self.packed(c).tobytes(), len(seen) + 1)
                             for c in range(n.n_cores)], dtype=np.int64)
        self.first = np.unique(self.ids, return_index=True)[1]

    def packed(self, c: int) -> np.ndarray:
        """(256, 32) uint8: core c's crossbar, one row per axon."""
        n, syn = self.n, self.order[self.bounds[c]:self.bounds[c + 1]]
        bits = np.zeros((CORE_SIZE, CORE_SIZE), dtype=bool)
        bits[n.syn_axon[syn] - n.axon_ptr[c], n.syn_neuron[syn] - n.neuron_ptr[c]] = True
        return np.packbits(bits, axis=1)

    def text(self, k: int) -> str:
        """Prototype k as a crossbarTypes entry."""
        c = int(self.first[k - 1])
        rows = ",\n".join(f'{{"type":"S{t}","synapses":"{row.tobytes().hex(" ").upper()}"}}'
                           for t, row in zip(self.types[c].tolist(), self.packed(c)))
        return f'{{"name":"coreProt{k:07d}","crossbar":{{"rows":[\n{rows}\n]}}}}'


def _type_json(k: int, row: np.ndarray) -> str:
    """neuronTypes entry k (1-based) with flags as JSON booleans, as CPE writes them."""
    body = {"name": f"N{k:08X}", "class": "NeuronGeneral"}
    body |= {f: bool(v) if f in FLAGS else int(v) for f, v in zip(FIELDS, row)}
    return _line(body)


def _metadata(n: Netlist, placed: Placed) -> list[dict[str, Any]]:
    """Per core: its corelet (layer, or all splitters as one), rank in it and placement."""
    corelet = np.where(n.core_layer < 0, len(n.layers), n.core_layer)
    order = np.argsort(corelet, kind="stable")
    number = np.empty(n.n_cores, dtype=np.int64)
    number[order] = ranks(np.bincount(corelet, minlength=len(n.layers) + 1))
    names = [lm.name for lm in n.layers] + ["splitter"]
    where = zip(corelet.tolist(), number.tolist(), placed.chip.tolist(), placed.x.tolist(), placed.y.tolist())
    return [{"coreletClass": names[li], "coreletId": li, "coreNumber": k, "parentCoreletId": [-1], "chip": ch, "x": x,
             "y": y} for li, k, ch, x, y in where]


def _output_neurons(n: Netlist) -> np.ndarray:
    """Neurons of the output layers (and the read-outs summed into them) that have no edge: they send to -32."""
    names = set(n.outputs) | {part for parts in n.notes.get("readout_sums", {}).values() for part in parts}
    found = [lm.neurons for lm in n.layers if lm.name in names]
    neurons = np.concatenate(found).astype(np.int64) if found else np.zeros(0, dtype=np.int64)
    return neurons[np.isin(neurons, n.edge_src, invert=True)]


def model_lines(program: Program) -> Iterator[str]:
    """The model file, piece by piece (an ordered stream with a repeated "core" key)."""
    n = program.netlist.expanded()
    tables = _core_tables(n, _output_neurons(n))
    types, type_id = _type_ids(neuron_fields(n), tables["neuron"])
    crossbars = _Crossbars(n)
    seeds = np.random.SeedSequence(int(program.manifest["options"].get("seed", 0))).generate_state(n.n_cores)
    model = {"coreCount": n.n_cores, "neuronclass": "NeuronGeneral", "crossbarSize": CORE_SIZE,
             "crossbarclass": "CrossbarBinary", "buildKey64": BUILD_KEY, "networking": "INTRA",
             "useCrossbarPrototypes": True}
    yield f'{{\n"model":{_line(model)},\n"crossbarTypes":[\n'
    yield ",\n".join(crossbars.text(k) for k in range(1, len(crossbars.first) + 1))
    yield '\n],\n"neuronTypes":[\n'
    yield ",\n".join(_type_json(k + 1, row) for k, row in enumerate(types))
    yield "\n]"
    for c, meta in enumerate(_metadata(n, program.placed)):
        neurons = {"dendrites": compress(np.arange(CORE_SIZE)), "types": compress(type_id[c]),
                   "destCores": compress(tables["dest_core"][c]), "destAxons": compress(tables["dest_axon"][c]),
                   "destDelays": compress(tables["delay"][c])}
        core = {"metadata": meta, "id": c, "timeScaleExponent": 0, "rngSeed": int(seeds[c]), "neurons": neurons,
                "crossbar": {"name": f"coreProt{crossbars.ids[c]:07d}"}}
        yield f',\n"core":{_line(core)}'
    yield "\n}\n"


def write_model(program: Program, path: str | Path, inputs: Sequence[str | Path] = ()) -> int:
    """Write the model file under neurocomp.safewrite, streamed piece by piece; returns its size in bytes."""
    size = 0

    def write(tmp: Path) -> None:
        nonlocal size
        with open(tmp, "w", encoding="ascii", newline="\n") as f:
            for piece in model_lines(program):
                size += f.write(piece)

    write_file(path, MODEL_KIND, write, inputs)
    return size


def input_records(program: Program, inputs: Mapping[str, np.ndarray], ticks: int | None = None, seed: int = 0,
                  sample: int = 0) -> tuple[np.ndarray, int]:
    """(S, 3) sorted (srcTime, destCore, destAxon) of one sample's input spikes as `neurocomp run` encodes
    them, and the ticks encoded."""
    n = program.netlist
    ticks = default_ticks(program, inputs) if ticks is None else ticks
    batch = batch_of(inputs)
    if not 0 <= sample < batch:
        raise UserError(f"sample {sample} is not in the input's batch of {batch}")
    require_run(n.n_neurons, n.n_inputs, batch, ticks)
    encodings = program.manifest.get("encodings") or {}
    specs = [(name, shape, encodings[name]) for name, shape in n.inputs] if encodings else \
        specs_of(program.source_graph())
    spikes = encode_inputs(specs, inputs, ticks, seed, message_bits(program.target))
    x = np.concatenate([spikes[name][sample].reshape(ticks, -1) for name, _ in n.inputs], axis=1)
    if np.any((x != 0) & (x != 1)):
        raise UserError("an input is not binary spikes after encoding (current input): "
                        "an .sfti file holds 0/1 spikes only")
    t, ch = np.nonzero(x)
    order = np.argsort(n.in_channel, kind="stable")
    per = np.bincount(n.in_channel, minlength=x.shape[1])[ch]            # input edges of each spike's channel
    edge = order[np.repeat(np.searchsorted(n.in_channel[order], ch), per) + ranks(per)]
    src_t = np.repeat(t, per) + n.in_delay[edge] - SFTI_VERSION["defaultDestinationDelay"]
    core = n.axon_core()[n.in_axon[edge]]
    rec = np.stack([src_t, core, n.in_axon[edge] - n.axon_ptr[core]], axis=1).astype(np.int64)
    return rec[np.lexsort(rec.T[::-1])], ticks


def write_spikes(path: str | Path, records: np.ndarray, inputs: Sequence[str | Path] = ()) -> None:
    """Write (srcTime, destCore, destAxon) records as an NSCS text input spike file under neurocomp.safewrite."""
    lines = [_line(SFTI_HEADER), _line(SFTI_VERSION)]
    lines += [f'{{"spike":{{"srcTime":{t},"destCore":{c},"destAxon":{a}}}}}' for t, c, a in records.tolist()]
    text = "\n".join(lines) + "\n"
    write_file(path, SFTI_KIND, lambda tmp: tmp.write_text(text), inputs)
