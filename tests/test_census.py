"""The core census (neurocomp.compiler.census, `neurocomp check --census`): per layer the cores a compile builds,
counted without core tables; refused in one line on a target without one; the chips against the spec's."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from neurocomp.cli import main
from neurocomp.compiler import FRONT_END, CompileOptions, Values, census, compile_graph, resolved, run_stages
from neurocomp.forked import forked_map
from neurocomp.frontend.ptfile import load_graph
from neurocomp.ir.graph import IF, Affine, Conv2d, Correlation, Graph, Input, Output, Readout
from neurocomp.target import load_target
from neurocomp.targets.truenorth import census as tn_census
from neurocomp.targets.truenorth import mapping as tn_mapping

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.mark.parametrize("model, weights", [("siamsnn_micro_loihi.pt", None), ("digits_cnn_loihi.pt", None),
                                            ("siamsnn_micro3g_truenorth.pt", None), ("digits_cnn_truenorth.pt", "levels")])
def test_the_census_counts_the_cores_the_compile_builds(model, weights):
    graph, target = load_graph(MODELS / model), load_target(model.split("_")[-1].removesuffix(".pt"))
    counted = census(graph, target, CompileOptions(weights=weights))
    built = compile_graph(graph, target, CompileOptions(weights=weights)).program.netlist
    assert {c.layer: c.cores for c in counted.layers} == {m.name: len(m.cores) for m in built.layers}
    assert counted.cores == built.n_cores and counted.chips == -(-built.n_cores // target.spec.cores_per_chip)
    assert not counted.unmapped


def _runs_of_inputs(n: int, sizes: tuple[int, int], spread: bool = True, twin: int | None = None) -> Graph:
    """n neurons, each reading a run of `sizes` of 2,400 neurons (weights 1..4: one sign, so no partial sums below
    257 inputs; each of the 2,400 read by some 140 cores: copies), and 3 neurons reading all n (copies). `spread`:
    neighbours' runs start 97 or more apart, so no two fit a core's 256 axons, else at random; `twin`: that neuron
    reads as the one before it (the two fit one core)."""
    rng = np.random.default_rng(n)
    w = np.zeros((n, 2400))
    starts = np.arange(n) * 97 % 2143 if spread else rng.integers(0, 2400 - sizes[1], n)
    for row, (start, size) in enumerate(zip(starts, rng.integers(*sizes, n))):
        w[row, start:start + size] = rng.choice([1.0, 2.0, 3.0, 4.0], size)
    if twin is not None:
        w[twin] = w[twin - 1]
    return Graph([Input("x", (2400,)), Affine("i", np.eye(2400)), IF("before", threshold=1.0), Affine("a", w),
                  IF("alone", threshold=3.0), Affine("b", rng.choice([-1.0, 1.0], (3, n))), IF("after", threshold=3.0),
                  Output("o")],
                 [("x", "i"), ("i", "before"), ("before", "a"), ("a", "alone"), ("alone", "b"), ("b", "after"),
                  ("after", "o")])


def _score(channels: int, kernel: int, side: int) -> Graph:
    """A bound score kernel, split into one part per channel: 8 x 8 taps on 4 types each fill a core's 256 axons."""
    k = np.random.default_rng(5).integers(-2, 3, size=(1, channels, kernel, kernel)).astype(float)
    return Graph([Input("x", (channels, side, side), "spikes"), Correlation("corr", k), Readout("score"), Output("o")],
                 [("x", "corr"), ("corr", "score"), ("score", "o")])


def _counted(graph: Graph, monkeypatch, singles: bool) -> tuple[dict, dict[str, int]]:
    """Each _Count the TrueNorth census makes (layer, tile height, sampled or not): its cores, neurons, axons,
    binding resource and the axons it reads each source neuron with; and the rows of the first window of each layer
    _singles counted."""
    monkeypatch.undo()   # an earlier call's spies
    init, alone = tn_census._Count.__init__, tn_census._Count._singles
    seen: dict = {}
    took: dict[str, int] = {}

    def recording(self, layer, band, *args, **kwargs):
        init(self, layer, band, *args, **kwargs)
        seen[layer.name, band, len(args)] = (self.cores, self.neurons, self.axons, self.bind,
                                             {k: v.tolist() for k, v in self.reads.items()})

    def spied(self, *args):
        first = len(self.windows.get(0, 1)[0].levels)
        done = singles and alone(self, *args)
        if done:
            took[self.layer.name] = first
        return done
    monkeypatch.setattr(tn_census._Count, "__init__", recording)
    monkeypatch.setattr(tn_census._Count, "_singles", spied)
    monkeypatch.setattr(tn_census._Shifted, "alike", lambda self, *a: None)   # count every part
    census(graph, load_target("truenorth"), CompileOptions())
    return seen, took


# The rows of the first window of `_runs_of_inputs(1500, (200, 257))`'s layer "alone": WINDOW_SYNAPSES over its
# first rows' some 226 inputs, // GROWTH (the test below checks it).
FIRST = 145


@pytest.mark.parametrize("graph, alone", [(_runs_of_inputs(1500, (200, 257)), {"alone": FIRST}),
                                          (_runs_of_inputs(1500, (200, 257), twin=FIRST), {}),
                                          (_runs_of_inputs(1500, (200, 257), twin=1300), {}),
                                          (_runs_of_inputs(300, (60, 200), spread=False), {}),
                                          (_score(3, 8, 14), {"score.part0": 49, "score.part1": 49,
                                                              "score.part2": 49})],
                         ids=["no-pair-fits", "a-pair-across-windows-fits", "a-pair-in-the-second-window-fits",
                              "pairs-fit", "score-parts"])
def test_layers_whose_neurons_fill_a_core_alone_count_as_split_does(graph, alone, monkeypatch):
    """Where no two neighbouring neurons fit one core, the census counts one core per neuron from per-row and
    per-pair axon counts, not split's search; where some pair fits (in the first window, across the first two, in
    the second), split counts it. Either way each count equals split's, to the axons each source neuron is read
    with; and the census equals the compile's cores. A small layer (a score part of 7 x 7) is one window."""
    searched, none = _counted(graph, monkeypatch, singles=False)
    counted, took = _counted(graph, monkeypatch, singles=True)
    assert counted == searched and not none and took == alone
    monkeypatch.undo()
    target = load_target("truenorth")
    built = compile_graph(graph, target, CompileOptions(place_effort=1, place_anneal=0)).program.netlist   # cores only
    assert census(graph, target, CompileOptions()).cores == built.n_cores


def _pooled(seed: int, unread: bool = False) -> Graph:
    """A depthwise 3 x 3 pool (784 neurons) of a layer, read by a 128-channel conv: each pool neuron is read by the
    conv's cores of nine positions on its weight levels' axon types, so its copies fill a core at a few neurons.
    `unread`: the conv reads 2 of the 4 channels, so the others' neurons have one copy each and their cores fill
    with axons (the pool's inputs)."""
    rng = np.random.default_rng(seed)
    w = rng.choice([-2.0, -1.0, 1.0, 2.0], size=(128, 4, 3, 3))
    w[:, 2:] *= not unread
    return Graph([Input("x", (4, 30, 30), "spikes"), Conv2d("id", np.ones((4, 1, 1, 1)), groups=4),
                  IF("a", threshold=1.0), Conv2d("pool", np.ones((4, 1, 3, 3)), stride=2, groups=4),
                  IF("p", threshold=9.0), Conv2d("c", w), IF("q", threshold=6.0), Output("o")],
                 [("x", "id"), ("id", "a"), ("a", "pool"), ("pool", "p"), ("p", "c"), ("c", "q"), ("q", "o")])


def _counts(graph: Graph, monkeypatch, slots: bool) -> tuple[dict, list[tuple[str, bool]]]:
    """Each _Count of the TrueNorth census (layer, tile height, sampled or not): cores, neurons, axons, binding and
    the axons it reads each source neuron with; and the counts _slot_bound made (layer, sampled; none where `slots`
    is False)."""
    init, bound = tn_census._Count.__init__, tn_census._Count._slot_bound
    seen: dict = {}
    took: list[str] = []

    def recording(self, layer, band, *args, **kwargs):
        init(self, layer, band, *args, **kwargs)
        seen[layer.name, band, len(args)] = (self.cores, self.neurons, self.axons, self.bind,
                                             {k: v.tolist() for k, v in self.reads.items()})

    def spied(self, *args):
        done = slots and bound(self, *args)
        took.extend([(self.layer.name, args[-1] is not None)] if done else [])   # (layer, sampled)
        return done
    with monkeypatch.context() as m:
        m.setattr(tn_census._Count, "__init__", recording)
        m.setattr(tn_census._Count, "_slot_bound", spied)
        census(graph, load_target("truenorth"), CompileOptions())
    return seen, took


@pytest.mark.parametrize("sampled", [False, True])
@pytest.mark.parametrize("seed, unread", [(0, False), (1, False), (0, True)])
def test_a_layer_whose_copies_fill_its_cores_counts_as_split_does(seed, unread, sampled, monkeypatch):
    """A pool whose neurons' copies fill a core at a few neurons is counted from its slots (_slot_bound) in the tile
    heights where every such span's rows open few enough axons even counted apart, by split's search in the others,
    in a pool half of whose neurons fill cores with axons (unread: a later window fails), and in the conv reading
    it; either way every count (in full, and on its first 300 neurons when sampled) equals the search's, to the
    axons each source neuron is read with, and the census equals the compile's cores."""
    if sampled:
        monkeypatch.setattr(tn_mapping, "SAMPLED_LAYER", 100)
        monkeypatch.setattr(tn_census, "SAMPLE_NEURONS", 300)
    graph = _pooled(seed, unread)
    searched, none = _counts(graph, monkeypatch, slots=False)
    counted, took = _counts(graph, monkeypatch, slots=True)
    assert counted == searched and not none and (("p", False) in took) != unread and "q" not in dict(took)
    assert all(axons > 0 and reads["a"].count(0) < 900   # its axons and reads count: it reads a layer
               for (layer, _, n_args), (_, _, axons, _, reads) in searched.items()
               if layer == "p" and n_args == 5)   # counted in full
    target = load_target("truenorth")
    built = compile_graph(graph, target, CompileOptions(place_effort=1, place_anneal=0)).program.netlist
    assert census(graph, target, CompileOptions()).cores == built.n_cores


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2 ** 16), spread=st.sampled_from([2, 6, 40]), spiking=st.booleans())
def test_a_bound_parts_levels_read_off_its_kernel_are_its_rows_levels(seed, spread, spiking):
    """_Shifted compares parts by their neurons' weight levels: without padding it reads them off the kernel's live
    weights; they equal those of every neuron's own row (row_levels of chunk_rows), whatever the kernel's values."""
    from neurocomp.partition.rows import chunk_rows
    from neurocomp.targets.truenorth.mapping import Typing, row_levels
    rng = np.random.default_rng(seed)
    k = rng.integers(-spread, spread + 1, size=(1, 4, 8, 8)).astype(np.float64) * (rng.random((1, 4, 8, 8)) < 0.7)
    neuron = IF("score", threshold=3.0) if spiking else Readout("score")
    graph = Graph([Input("x", (4, 14, 14), "spikes"), Conv2d("id", np.ones((4, 1, 1, 1)), groups=4),
                   IF("e", threshold=1.0), Correlation("corr", k), neuron, Output("o")],
                  [("x", "id"), ("id", "e"), ("e", "corr"), ("corr", "score"), ("score", "o")])
    target = load_target("truenorth")
    v = run_stages(FRONT_END[:3], Values(graph, target, resolved(CompileOptions(), graph, target), None, ""))
    parts = [layer for layer in v.qnet.network.layers if ".part" in layer.name]
    assert parts
    for layer in parts:
        table, cnt = row_levels(chunk_rows(layer, np.arange(layer.size)), layer.size)
        rows = Typing.of(table, cnt, int(target.spec["core.weight_max"])).need
        assert np.array_equal(tn_census._levels(layer, target.spec), rows)


@pytest.mark.parametrize("spiking, padding", [(False, 0), (True, 0), (False, 1)])
def test_a_bound_part_like_one_counted_before_takes_its_count_moved(spiking, padding, monkeypatch):
    """A score's parts read one channel each of an embedding through its Correlation (a spiking score: a + and a -
    part per channel). A part whose reach, copies and weight levels equal an earlier one's takes its count and its reads
    moved to its own channel (_Shifted); one whose levels differ (channel 3: three weights, not two) is counted.
    Without padding every neuron has the first one's levels; with it, the border's differ.
    Rows and the axons read of every neuron equal the count without it, and the census equals the compile."""
    k = np.ones((1, 6, 8, 8))
    k[0, :, ::2] = 2.0
    k[0, 3, 0, 0] = -1.0
    neuron = IF("score", threshold=3.0) if spiking else Readout("score")
    graph = Graph([Input("x", (6, 14, 14), "spikes"), Conv2d("id", np.ones((6, 1, 1, 1)), groups=6),
                   IF("e", threshold=1.0), Correlation("corr", k, padding=padding), neuron, Output("o")],
                  [("x", "id"), ("id", "e"), ("e", "corr"), ("corr", "score"), ("score", "o")])
    target = load_target("truenorth")
    v = run_stages(FRONT_END[:3], Values(graph, target, resolved(CompileOptions(), graph, target), None, ""))
    alike = tn_census._Shifted.alike
    took: list[str] = []

    def spied(self, layer, copies, relayed, spec):
        found = alike(self, layer, copies, relayed, spec)
        took.extend([layer.name] if found is not None else [])
        return found

    def counted() -> tuple:
        reads = {layer.name: np.zeros(layer.size, np.int64) for layer in v.qnet.network.layers}
        rows = tn_census.count_from(v.qnet, target.spec, len(v.qnet.network.layers) - 1, reads, workers=1)
        return rows, {name: r.tolist() for name, r in reads.items()}
    with monkeypatch.context() as m:
        m.setattr(tn_census._Shifted, "alike", lambda self, *a: None)
        each = counted()
    monkeypatch.setattr(tn_census._Shifted, "alike", spied)
    assert counted() == each and sum(each[1]["e"]) > 0   # the parts' reads of the embedding
    parts = [layer.name for layer in v.qnet.network.layers if ".part" in layer.name]
    three = [name for name in parts if ".part3" in name]
    assert len(parts) == (12 if spiking else 6) and not set(three) & set(took)
    assert len(took) == len(parts) - len(three) - 1   # the first (the last channel's; - and + are alike) is counted
    built = compile_graph(graph, target, CompileOptions(place_effort=1, place_anneal=0)).program.netlist
    assert sum(r.cores for r in each[0]) == built.n_cores


def test_a_splits_parts_counted_in_two_processes_count_as_in_one(monkeypatch):
    """The micro tracker's three scores are split into 16 parts each (FORKED_RUN): counted in two forked processes
    or here in turn, every layer's row, the order each layer is told and the axons read of every neuron agree. The
    forked count ran once per split, each split's first part counted here before it: its tile height, which the
    parts after it take untried, is then the serial count's."""
    graph, target = load_graph(MODELS / "siamsnn_micro_truenorth.pt"), load_target("truenorth")
    v = run_stages(FRONT_END[:3], Values(graph, target, resolved(CompileOptions(), graph, target), None, ""))
    told: list[str] = []
    forks: list[tuple[int, str]] = []
    monkeypatch.setattr(tn_census, "forked_map",
                        lambda work, pieces: forks.append((len(pieces), told[-1])) or forked_map(work, pieces))

    def counted(workers: int) -> tuple:
        told.clear()
        reads = {layer.name: np.zeros(layer.size, np.int64) for layer in v.qnet.network.layers}
        rows = tn_census.count_from(v.qnet, target.spec, len(v.qnet.network.layers) - 1, reads, told.append,
                                    workers=workers)
        return rows, list(told), {name: r.tolist() for name, r in reads.items()}
    serial = counted(1)
    assert forks == [] and counted(2) == serial
    assert forks == [(2, f"score@{k}.part15") for k in (2, 1, 0)]   # counted last first; each reads its own source
    assert sum(r.cores for r in serial[0]) == 7722 and len(serial[1]) == len(v.qnet.network.layers)


def test_a_few_large_parts_counted_side_by_side_count_as_in_turn(monkeypatch):
    """A read-out split into 4 parts of 17,956 neurons (FORKED_NEURONS lowered to 10^4) is counted in two processes,
    and the conv of 152,352 neurons before it (over SAMPLED_LAYER) samples its three tile heights here (3 rows cost
    least): rows, the order layers are told and the axons read of every neuron equal the serial count's."""
    rng = np.random.default_rng(5)
    graph = Graph([Input("x", (2, 140, 140), "spikes"), Conv2d("c1", rng.choice([-1.0, 1.0, 2.0], size=(8, 2, 3, 3))),
                   IF("a", threshold=4.0), Conv2d("c2", rng.choice([-2.0, -1.0, 1.0, 2.0], size=(1, 8, 5, 5))),
                   Readout("r"), Output("o")],
                  [("x", "c1"), ("c1", "a"), ("a", "c2"), ("c2", "r"), ("r", "o")])
    target = load_target("truenorth")
    v = run_stages(FRONT_END[:3], Values(graph, target, resolved(CompileOptions(), graph, target), None, ""))
    assert [layer.size for layer in v.qnet.network.layers] == [152352] + [17956] * 4
    monkeypatch.setattr(tn_census, "FORKED_NEURONS", 10 ** 4)
    forks: list[int] = []
    monkeypatch.setattr(tn_census, "forked_map",
                        lambda work, pieces: forks.append(len(pieces)) or forked_map(work, pieces))
    bands: list[int] = []
    kept = tn_census.TileHeights.kept
    monkeypatch.setattr(tn_census.TileHeights, "kept",
                        lambda self, layer, band: bands.append(band) or kept(self, layer, band))

    def counted(workers: int) -> tuple:
        told: list[str] = []
        bands.clear()
        reads = {layer.name: np.zeros(layer.size, np.int64) for layer in v.qnet.network.layers}
        rows = tn_census.count_from(v.qnet, target.spec, len(v.qnet.network.layers) - 1, reads, told.append,
                                    workers=workers)
        return rows, told, {name: r.tolist() for name, r in reads.items()}, bands[-1]
    serial = counted(1)
    assert forks == [] and counted(2) == serial and serial[-1] == 3
    assert forks == [2]   # the parts (their first counted here); the conv's heights in turn
    assert sum(r.cores for r in serial[0]) == census(graph, target, CompileOptions()).cores


@pytest.mark.parametrize("model", ["siamsnn_micro_loihi.pt", "siamsnn_micro3g_truenorth.pt"])
def test_the_census_tells_progress_each_stage_then_each_layer_once(model):
    """A paper-size census takes a minute: its bar names the front-end stage, then each layer with how many are
    counted of how many (TrueNorth counts from the last layer, Loihi from the first)."""
    graph, target = load_graph(MODELS / model), load_target(model.split("_")[-1].removesuffix(".pt"))
    told: list[str] = []
    counted = census(graph, target, CompileOptions(), told.append)
    names = [c.layer for c in counted.layers if not c.layer.endswith(".splitters")]
    n = len(names)
    assert told[:3] == ["lower", "legalize", "quantize"] and len(told) == 3 + n
    order = names[::-1] if target.name == "truenorth" else names
    assert told[3:] == [f"{name} ({k} of {n} layers)" for k, name in enumerate(order, 1)]


@pytest.mark.parametrize("model, target, cores", [("siamsnn_micro_loihi.pt", "loihi", 91),
                                                  ("siamsnn_micro_truenorth.pt", "truenorth", 7722)])
def test_check_census_prints_the_count(model, target, cores, capsys):
    assert main(["check", str(MODELS / model), "--target", target, "--census", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)["census"]
    per_chip = load_target(target).spec.cores_per_chip
    assert (data["cores"], data["chips"], data["fits"]) == (cores, -(-cores // per_chip), True)
    assert sum(r["cores"] for r in data["layers"]) == cores


def test_check_census_lists_a_splits_parts_in_one_row_and_the_json_each(capsys, monkeypatch):
    """The micro tracker's three score layers are split into 16 parts each on TrueNorth: the table gives one row per
    split, with the parts' neurons and cores summed; the JSON keeps all 48 parts."""
    monkeypatch.setenv("COLUMNS", "200")
    model = str(MODELS / "siamsnn_micro_truenorth.pt")
    assert main(["check", model, "--target", "truenorth", "--census", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["census"]["layers"]
    parts = [r for r in rows if r["layer"].startswith("score@1.part")]
    assert len(parts) == 16 and len([r for r in rows if ".part" in r["layer"]]) == 48
    assert main(["check", model, "--target", "truenorth", "--census"]) == 0
    table = capsys.readouterr().out
    row = next(line for line in table.splitlines() if "score@1.part*" in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[:3] == [f"score@1.part* (16 parts, {parts[0]['cores']} cores each)",
                         f"{sum(r['neurons'] for r in parts):,}", f"{sum(r['cores'] for r in parts):,}"]
    assert "score@1.part3 " not in table and table.count(".part*") == 3
    assert "if1@0 " in table and "embedding " in table


def test_a_compile_refused_for_memory_points_to_the_census(tmp_path, capsys, monkeypatch):
    import neurocomp.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 1 << 20)   # above the file's unpacked size, below the compile's
    argv = ["compile", str(MODELS / "siamsnn_micro_loihi.pt"), "--target", "loihi", "-o", str(tmp_path / "p")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "needs about" in err and "neurocomp check MODEL --target T --census" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p").exists()


def test_weights_without_census_is_one_line(capsys):
    assert main(["check", str(MODELS / "digits_cnn_loihi.pt"), "--target", "loihi", "--weights", "levels"]) == 2
    err = capsys.readouterr().err
    assert "goes with --census" in err and len(err.strip().splitlines()) == 1
