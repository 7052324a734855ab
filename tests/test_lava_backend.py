"""Lava backend: compiled programs run in Lava 0.10.0 equal the emulator bit for bit (spikes, read-out
potentials, per-core counters) on Loihi and TrueNorth programs; build() gives runnable processes; netx export."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

from neurocomp.backends import emulator, lava, lava_compat
from neurocomp.backends.emulator import COUNTERS, RunResult
from neurocomp.cli import main as cli
from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.errors import UserError
from neurocomp.frontend.ptfile import save_graph
from neurocomp.ir.graph import IF, Affine, Graph, Input, Output, Readout
from neurocomp.program import Program
from neurocomp.target import Target, load_target
from neurocomp.targets.loihi.netx import export_netx
from lavalib import needs_lava
from netlib import integer_cnn, random_spikes, wide_readout




# --- networks -----------------------------------------------------------------------------------------------

def dense_net(seed: int = 0) -> Graph:
    """12 -> 20 (mixed-sign weights, biases) -> 8 (excitatory) -> 4 read-out: every Loihi sign mode and a read-out."""
    rng = np.random.default_rng(seed)
    nodes = [Input("x", (12,)),
             Affine("a", rng.integers(-3, 4, (20, 12)).astype(float), rng.integers(-1, 2, 20).astype(float)),
             IF("h", threshold=3.0), Affine("b", rng.integers(0, 3, (8, 20)).astype(float)), IF("o", threshold=4.0),
             Affine("c", rng.integers(-2, 3, (4, 8)).astype(float)), Readout("r"), Output("out")]
    return Graph(nodes, [("x", "a"), ("a", "h"), ("h", "b"), ("b", "o"), ("o", "c"), ("c", "r"), ("r", "out")])


def split_net(seed: int = 0) -> Graph:
    """784 -> 256 needs two Loihi cores by synapse memory (LOIHI.md §2.1); the mixed-sign 10-neuron layer then
    reads both, i.e. one Dense per source core with weight_exp -1."""
    rng = np.random.default_rng(seed)
    nodes = [Input("x", (784,)), Affine("a", rng.integers(1, 100, (256, 784)).astype(float)), IF("n", threshold=3000.0),
             Affine("b", rng.integers(-3, 4, (10, 256)).astype(float)), IF("o", threshold=8.0), Output("out")]
    return Graph(nodes, [("x", "a"), ("a", "n"), ("n", "b"), ("b", "o"), ("o", "out")])


def hops_net(seed: int = 0) -> Graph:
    """tests/test_e2e.py::test_multi_core_hops_are_counted_from_placement: 2 + 2 TrueNorth cores."""
    rng = np.random.default_rng(seed)
    return Graph([Input("x", (16,)), Affine("a", rng.choice([1.0, 2.0], size=(100, 16))), IF("h", threshold=2.0),
                  Affine("b", rng.choice([-1.0, 1.0], size=(300, 100))), IF("o", threshold=3.0), Output("out")],
                 [("x", "a"), ("a", "h"), ("h", "b"), ("b", "o"), ("o", "out")])


def skip_net(seed: int = 0) -> Graph:
    """o reads the input and h: its LIF gets two Dense (one per source process), mixed-sign with weight_exp -1."""
    rng = np.random.default_rng(seed)
    return Graph([Input("x", (6,)), Affine("a", rng.integers(1, 3, (5, 6)).astype(float)), IF("h", threshold=2.0),
                  Affine("b", rng.integers(-2, 3, (4, 5)).astype(float)), Affine("s", rng.integers(1, 3, (4, 6)).astype(float)),
                  IF("o", threshold=3.0), Output("out")],
                 [("x", "a"), ("a", "h"), ("h", "b"), ("b", "o"), ("x", "s"), ("s", "o"), ("o", "out")])


def compiled(graph: Graph, target: str) -> tuple[Program, Target]:
    t = load_target(target)
    return compile_graph(graph, t, CompileOptions()).program, t


def assert_lava_equals_emulator(program: Program, target: Target, x: np.ndarray | dict[str, np.ndarray], seed: int = 0,
                                ticks: int | None = None) -> RunResult:
    """Every spike, read-out potential, counter and merge of a Lava run equals the emulator's."""
    inputs = x if isinstance(x, dict) else {"x": x}
    emu = emulator.run(program, target, inputs, ticks, seed=seed)
    got = lava.run(program, target, inputs, ticks, seed=seed)
    assert (got.ticks, got.batch) == (emu.ticks, emu.batch)
    assert got.spikes.keys() == emu.spikes.keys() and got.potentials.keys() == emu.potentials.keys()
    for name in emu.spikes:
        assert got.spikes[name].dtype == np.uint8
        np.testing.assert_array_equal(got.spikes[name], emu.spikes[name], err_msg=f"spikes of {name}")
    for name in emu.potentials:
        np.testing.assert_array_equal(got.potentials[name], emu.potentials[name], err_msg=f"potential of {name}")
    for key in COUNTERS:
        np.testing.assert_array_equal(got.core_counts[key], emu.core_counts[key], err_msg=key)
    assert got.merges == emu.merges == 0
    return emu


def assert_fires(result: RunResult) -> None:
    """The comparison only means something if every spiking layer fires, but not on every tick."""
    for name, s in result.spikes.items():
        assert 0 < s.mean() < 0.9, f"{name} fires at rate {s.mean():.2f}"


# --- emulator == Lava ---------------------------------------------------------------------------------------

CASES = {
    "loihi-dense": ("loihi", dense_net, (12,), 0.5, 16),
    "loihi-conv": ("loihi", integer_cnn, (2, 6, 6), 0.3, 16),
    "loihi-skip": ("loihi", skip_net, (6,), 0.4, 16),
    "loihi2-conv": ("loihi2", lambda: integer_cnn(1), (2, 6, 6), 0.3, 16),
    "truenorth-dense": ("truenorth", lambda: dense_net(1), (12,), 0.5, 16),
    "truenorth-conv": ("truenorth", integer_cnn, (2, 6, 6), 0.3, 16),
    "truenorth-multicore": ("truenorth", hops_net, (16,), 0.1, 12),
    "loihi-wide-readout": ("loihi", wide_readout, (5000,), 0.2, 6),
}


@pytest.mark.lava
@needs_lava
@pytest.mark.parametrize("case", list(CASES))
def test_lava_equals_emulator(case: str) -> None:
    target, net, shape, rate, ticks = CASES[case]
    program, t = compiled(net(), target)
    emu = assert_lava_equals_emulator(program, t, random_spikes(shape, batch=2, ticks=ticks, rate=rate, seed=3))
    assert_fires(emu)
    if case == "truenorth-multicore":
        assert [len(lm.cores) for lm in program.netlist.layers] == [2, 2]
    if case.endswith("dense") or case.endswith("readout"):
        assert np.abs(emu.potentials["r"]).sum() > 0


@pytest.mark.lava
@needs_lava
def test_loihi_layer_split_over_two_cores_equals_emulator() -> None:
    program, t = compiled(split_net(), "loihi")
    n = program.netlist.layer("n")
    assert len(n.cores) == 2 and n.binding == "synapse memory bits"
    x = random_spikes((784,), batch=1, ticks=12, rate=0.05, seed=4)
    net = lava.build(program, t, lava.encode(program, {"x": x})[0].T)
    into_o = [d for d in net.synapses if d.name.startswith("o_")]
    assert len(into_o) == 2 and all(d.proc_params["weight_exp"] == -1 for d in into_o)
    assert_fires(assert_lava_equals_emulator(program, t, x))


@pytest.mark.lava
@needs_lava
@pytest.mark.parametrize("synapses,batch", [(False, 2), (True, 1)])
def test_stochastic_truenorth_equals_emulator(synapses: bool, batch: int) -> None:
    """Stochastic leak and threshold: each Lava sample draws the emulator's whole-batch array and keeps its
    column. Stochastic synapses (binomial draws that depend on every sample's input): batch 1."""
    program, t = compiled(dense_net(2), "truenorth")
    n = program.netlist
    rng = np.random.default_rng(0)
    params = {**n.params, "c_lambda": np.ones(n.n_neurons, dtype=np.int64), "tm": np.full(n.n_neurons, 2, dtype=np.int64),
              "leak": rng.integers(-40, 40, n.n_neurons)}
    if synapses:
        params["stoch_syn"] = (rng.random((n.n_neurons, 4)) < 0.5).astype(np.int64)
    noisy = replace(program, netlist=replace(n, params=params))
    x = random_spikes((12,), batch=batch, ticks=12, rate=0.5, seed=5)
    emu = assert_lava_equals_emulator(noisy, t, x, seed=7)
    assert not np.array_equal(emu.spikes["h"], emulator.run(program, t, {"x": x}).spikes["h"])


@pytest.mark.lava
@needs_lava
def test_build_gives_processes_a_user_can_connect_and_run() -> None:
    """integer_cnn on loihi: n1 is one LIF; n2's thresholds differ, so its core holds two LIFs (vth is one scalar
    per Lava LIF). Dense weights are the netlist's own; a user-attached sink sees the emulator's spikes."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.utils.weightutils import SignMode

    program, t = compiled(integer_cnn(0), "loihi")
    n = program.netlist
    x = random_spikes((2, 6, 6), batch=1, ticks=10, rate=0.3, seed=6)
    net = lava.build(program, t, lava.encode(program, {"x": x})[0].T, record=["n2"])
    assert len(net.neurons) == 3 and len(net.synapses) == 3 and net.ticks == 10
    assert sorted(int(lif.vth.get()) for lif in net.neurons[1:]) == sorted(set(n.params["vth"][n.layer("n2").neurons]))
    assert net.spike_sinks[0] is None and all(s is not None for s in net.spike_sinks[1:])
    first = net.synapses[0]
    in_core0 = n.axon_core()[n.syn_axon] == 0
    expected = np.zeros((n.layer("n1").neurons.size, n.n_inputs), dtype=np.int64)
    channel = np.full(n.n_axons, -1)
    channel[n.in_axon] = n.in_channel
    expected[n.syn_neuron[in_core0], channel[n.syn_axon[in_core0]]] = n.syn_tables["weight"][in_core0]
    np.testing.assert_array_equal(first.weights.get(), expected)
    assert first.proc_params["weight_exp"] == n.syn_tables["weight_exp"][0] == -1
    assert first.proc_params["sign_mode"] == SignMode.MIXED and first.proc_params["num_weight_bits"] == 8
    mine = [Sink(shape=lif.s_out.shape, buffer=10) for lif in net.neurons[1:]]
    for lif, sink in zip(net.neurons[1:], mine):
        lif.s_out.connect(sink.a_in)
    got = np.zeros((10, n.n_neurons), dtype=np.uint8)
    try:
        net.source.run(condition=RunSteps(num_steps=10), run_cfg=lava.run_config(net))
        for ids, sink in zip(net.neuron_ids[1:], mine):
            got[:, ids] = sink.data.get().T != 0
    finally:
        net.source.stop()
    emu = emulator.run(program, t, {"x": x})
    np.testing.assert_array_equal(got[:, n.layer("n2").neurons], emu.spikes["n2"][0])
    assert emu.spikes["n2"].sum() > 0


@pytest.mark.lava
@needs_lava
def test_cli_run_with_lava_backend_writes_the_emulators_outputs(tmp_path: Path) -> None:
    model, prog, inp = tmp_path / "net.pt", tmp_path / "prog", tmp_path / "in.npz"
    save_graph(integer_cnn(3), model)
    np.savez(inp, input=random_spikes((2, 6, 6), batch=1, ticks=12, rate=0.3, seed=8))
    assert cli(["compile", str(model), "--target", "truenorth", "-o", str(prog)]) == 0
    for backend in ("emulator", "lava"):
        out = tmp_path / f"{backend}.npz"
        assert cli(["run", str(prog), "--input", str(inp), "--backend", backend, "--out", str(out)]) == 0
    with np.load(tmp_path / "emulator.npz") as e, np.load(tmp_path / "lava.npz") as g:
        assert sorted(e.files) == sorted(g.files)
        for key in e.files:
            np.testing.assert_array_equal(g[key], e[key], err_msg=key)


@pytest.mark.lava
@needs_lava
def test_a_failing_process_raises_instead_of_hanging() -> None:
    """Lava waits for every process each step and its stop() waits for workers that already died: a broken
    TrueNorthCores must still end with an error (run in a subprocess so a regression times out, not hangs)."""
    code = ("import numpy as np, sys\n"
            "sys.path.insert(0, 'tests')\n"
            "from test_lava_backend import compiled, integer_cnn\n"
            "from neurocomp.backends import lava\n"
            "program, t = compiled(integer_cnn(0), 'truenorth')\n"
            "net = lava.build(program, t, np.zeros((program.netlist.n_inputs, 4), np.uint8))\n"
            "net.neurons[0].proc_params.overwrite('opts', None)\n"
            "try:\n    lava.execute(net, program.netlist.n_neurons)\nexcept RuntimeError as exc:\n    print('raised', exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert "raised 1 Exception(s) occurred" in out.stdout, out.stderr[-2000:]


def test_missing_lava_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    program, t = compiled(dense_net(), "loihi")
    monkeypatch.setattr(lava_compat.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match="lava-nc is not installed"):
        lava.run(program, t, {"x": random_spikes((12,), batch=1, ticks=4, rate=0.5)})


# --- heavier runs -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits_model():
    """The bundled digits SNN as `make models` builds it (about 10 s), and four of its test digits."""
    from neurocomp.models import digits

    x, y, xt, _ = digits.dataset()
    return digits.to_snn(digits.train(x, y), x), xt[:4]


@pytest.mark.lava
@pytest.mark.slow
@needs_lava
@pytest.mark.parametrize("target", ["loihi", "truenorth"])
def test_digits_model_equals_emulator(target: str, digits_model) -> None:
    graph, test = digits_model
    t = load_target(target)
    program = compile_graph(graph, t, CompileOptions()).program
    x = {graph.inputs[0].name: test}
    emu = assert_lava_equals_emulator(program, t, x, ticks=35)
    assert all(s.sum() > 0 for s in emu.spikes.values())


@pytest.mark.lava
@pytest.mark.slow
@needs_lava
def test_loihi_layer_over_1024_neurons_equals_emulator() -> None:
    rng = np.random.default_rng(9)
    g = Graph([Input("x", (64,)), Affine("a", rng.integers(-2, 4, (1100, 64)).astype(float)), IF("n", threshold=6.0),
               Affine("b", rng.integers(-1, 2, (16, 1100)).astype(float)), IF("o", threshold=10.0), Output("out")],
              [("x", "a"), ("a", "n"), ("n", "b"), ("b", "o"), ("o", "out")])
    program, t = compiled(g, "loihi")
    assert len(program.netlist.layer("n").cores) == 2 and program.netlist.layer("n").binding == "neurons"
    emu = assert_lava_equals_emulator(program, t, random_spikes((64,), batch=2, ticks=30, rate=0.3, seed=10))
    assert_fires(emu)


# --- netx export (h5py only; lava-dl does not install on Python 3.11) -----------------------------------------

def chain_net() -> Graph:
    rng = np.random.default_rng(11)
    return Graph([Input("x", (12,)),
                  Affine("a", rng.integers(-3, 4, (20, 12)).astype(float), rng.integers(-2, 3, 20).astype(float)),
                  IF("h", threshold=3.0), Affine("b", rng.integers(0, 5, (5, 20)).astype(float)), IF("o", threshold=4.0),
                  Output("out")], [("x", "a"), ("a", "h"), ("h", "b"), ("b", "o"), ("o", "out")])


def test_netx_export_layout_and_values(tmp_path: Path) -> None:
    g = chain_net()
    program, _ = compiled(g, "loihi")
    path = tmp_path / "net.h5"
    export_netx(program, path)
    nodes = {node.name: node for node in g.nodes}
    with h5py.File(path, "r") as f:
        assert list(f["layer"]) == ["0", "1"]
        assert f.attrs["input_shape"].tolist() == [12]
        for i, (layer, affine, n_in) in enumerate((("h", "a", 12), ("o", "b", 20))):
            grp, lm = f[f"layer/{i}"], program.netlist.layer(layer)
            assert grp["type"][0] == b"dense" and grp["neuron/type"][0] == b"CUBA"
            assert grp["shape"][()].tolist() == [lm.neurons.size] and grp.attrs["name"] == layer
            assert (grp["inFeatures"][()], grp["outFeatures"][()]) == (n_in, lm.neurons.size)
            w = grp["weight"][()]
            assert w.dtype.kind == "i" and w.shape == (lm.neurons.size, n_in)
            np.testing.assert_array_equal(w * lm.scale, nodes[affine].weight)
            assert grp["neuron/vThMant"][()] == round(float(nodes[layer].threshold) / lm.scale) - 1
            assert (grp["neuron/iDecay"][()], grp["neuron/vDecay"][()], grp["neuron/refDelay"][()]) == (4096, 0, 1)
            assert not grp["neuron/gradedSpike"][()]
        np.testing.assert_array_equal(f["layer/0/bias"][()] * program.netlist.layer("h").scale, nodes["a"].bias)
        assert "bias" not in f["layer/1"]


def test_netx_export_names_the_layer_it_cannot_represent(tmp_path: Path) -> None:
    program, _ = compiled(integer_cnn(0), "loihi")
    path = tmp_path / "net.h5"
    with pytest.raises(UserError, match="layer n2: vth differs"):
        export_netx(program, path)
    assert list(tmp_path.iterdir()) == []


def test_netx_export_rejects_a_layer_outside_the_chain(tmp_path: Path) -> None:
    program, _ = compiled(skip_net(), "loihi")
    with pytest.raises(UserError, match="layer o: reads from a source other than the previous layer"):
        export_netx(program, tmp_path / "net.h5")


def test_netx_export_rejects_truenorth_programs(tmp_path: Path) -> None:
    program, _ = compiled(chain_net(), "truenorth")
    with pytest.raises(UserError, match="needs a Loihi program"):
        export_netx(program, tmp_path / "net.h5")
