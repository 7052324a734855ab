"""End to end: compile, place, route, emulate; equal to the reference; hand-counted events and energy."""
import numpy as np
import pytest

from neurocomp.backends import emulator, reference
from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.ir.layers import lower
from neurocomp.report.energy import energy
from neurocomp.target import TargetSpec, load_target
from netlib import integer_cnn, random_spikes, tiny

TARGETS = ["truenorth", "loihi", "loihi2"]


@pytest.mark.parametrize("name", TARGETS)
@pytest.mark.parametrize("seed", [0, 1])
def test_emulator_equals_reference_on_integer_net(name, seed):
    target = load_target(name)
    g = integer_cnn(seed)
    x = random_spikes((2, 6, 6), batch=3, ticks=24, rate=0.3, seed=seed)
    ref = reference.run(lower(g), {"x": x})
    emu = emulator.run(compile_graph(g, target, CompileOptions()).program, target, {"x": x})
    for layer in ("n1", "n2"):
        assert ref.spikes[layer].sum() > 10, "test input should make the layer fire"
        assert np.array_equal(emu.spikes[layer], ref.spikes[layer]), layer
    assert emu.merges == 0


def test_rate_coded_analog_input_matches_reference():
    target = load_target("truenorth")
    g = integer_cnn(2)
    rng = np.random.default_rng(5)
    x = {"x": rng.random((2, 2, 6, 6))}
    ref = reference.run(lower(g), x, ticks=30)
    emu = emulator.run(compile_graph(g, target, CompileOptions()).program, target, x, ticks=30)
    assert np.array_equal(emu.spikes["n2"], ref.spikes["n2"])


X_TINY = np.array([[[1, 1], [1, 0], [0, 0], [0, 0]]], dtype=np.uint8)  # (batch 1, 4 ticks, 2 inputs)


def _tiny_counts(name: str) -> tuple[dict[str, float], TargetSpec]:
    """Input at tick t reaches the neuron at t+1: tick 1 gets 2 events (v=2 fires), tick 2 one (v=1)."""
    target = load_target(name)
    run = emulator.run(compile_graph(tiny(), target, CompileOptions()).program, target, {"x": X_TINY})
    assert run.spikes["n"][0, :, 0].tolist() == [0, 1, 0, 0]
    return {k: float(v.sum()) for k, v in run.core_counts.items()}, target.spec


def test_tiny_truenorth_counts_and_energy_by_hand():
    c, spec = _tiny_counts("truenorth")
    assert c == {"synaptic_events": 3.0, "neuron_active": 2.0, "neuron_idle": 2.0, "spikes": 1.0,
                 "hops_ew": 0.0, "hops_ns": 0.0, "interchip": 0.0}
    e = energy(c, spec, seconds=4 * 1e-3, chips=1, inferences=1)
    assert e["breakdown_j"]["synaptic_events"] == pytest.approx(3 * 26e-12)
    assert e["breakdown_j"]["static"] == pytest.approx(0.042 * 4e-3)
    assert e["per_inference_j"] == pytest.approx(3 * 26e-12 + 0.042 * 4e-3)


def test_tiny_loihi_counts_and_energy_by_hand():
    c, spec = _tiny_counts("loihi")
    assert (c["synaptic_events"], c["neuron_active"], c["neuron_idle"], c["spikes"]) == (3.0, 2.0, 2.0, 1.0)
    e = energy(c, spec, seconds=0.0, chips=1, inferences=1)
    assert e["per_inference_j"] == pytest.approx(3 * 23.6e-12 + 2 * 81e-12 + 2 * 52e-12 + 1.7e-12)


def test_multi_core_hops_are_counted_from_placement():
    """A layer split over several cores: every spike that crosses routers adds its Manhattan hops."""
    target = load_target("truenorth")
    rng = np.random.default_rng(0)
    from neurocomp.ir.graph import IF, Affine, Graph, Input, Output

    # o (300 neurons) needs 2 cores; each reads all of h on 2 typed axons -> 4 copies per h neuron -> h needs 2 cores
    g = Graph([Input("x", (16,)), Affine("a", rng.choice([1.0, 2.0], size=(100, 16))), IF("h", threshold=2.0),
               Affine("b", rng.choice([-1.0, 1.0], size=(300, 100))), IF("o", threshold=3.0), Output("out")],
              [("x", "a"), ("a", "h"), ("h", "b"), ("b", "o"), ("o", "out")])
    compiled = compile_graph(g, target, CompileOptions())
    program = compiled.program
    x = random_spikes((16,), batch=2, ticks=10, rate=0.5)
    run = emulator.run(program, target, {"x": x})
    n, p = program.netlist, program.placed
    sc, dc = n.core_traffic_edges()
    dist = np.abs(p.gx()[sc] - p.gx()[dc]) + np.abs(p.gy()[sc] - p.gy()[dc])
    per_neuron = np.bincount(n.edge_src, weights=dist, minlength=n.n_neurons)
    assert [len(lm.cores) for lm in n.layers] == [2, 2]
    ref = reference.run(lower(g), {"x": x})
    assert np.array_equal(run.spikes["h"], ref.spikes["h"]) and np.array_equal(run.spikes["o"], ref.spikes["o"])
    # hops = spikes of every sending neuron (copies included) x its edge distance; recompute from a second run
    hops = run.core_counts["hops_ew"].sum() + run.core_counts["hops_ns"].sum()
    assert hops > 0
    assert hops == pytest.approx(float(_spikes_per_neuron(program, target, x) @ per_neuron))


def _spikes_per_neuron(program, target, x) -> np.ndarray:
    """Spikes of every physical neuron, counted by a plain loop over ticks (independent of the counters)."""
    n = program.netlist
    S = target.hooks.synapse_matrix(n).toarray()
    state = target.hooks.init_state(n, target.spec, x.shape[0])
    axon_now = np.zeros((n.n_axons, x.shape[0]), dtype=np.int64)
    total = np.zeros(n.n_neurons)
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    for t in range(x.shape[1]):
        spikes = target.hooks.neuron_step(n.params, state, S @ axon_now, None)
        total += spikes.sum(axis=1)
        nxt = np.zeros_like(axon_now)
        nxt[n.edge_axon] += spikes[n.edge_src]
        nxt[n.in_axon] += flat[:, t, n.in_channel].T
        axon_now = nxt
    return total


def test_fan_in_split_program_equals_reference_of_the_legalized_graph():
    """The split is an approximation of the original graph, but the chip computes the rewritten graph exactly."""
    from neurocomp.ir.graph import IF, Affine, Graph, Input, Output

    target = load_target("truenorth")
    rng = np.random.default_rng(4)
    g = Graph([Input("x", (200,)), Affine("a", rng.choice([-1.0, 1.0, 2.0], size=(6, 200))),
               IF("n", threshold=8.0, reset="subtract"), Output("out")], [("x", "a"), ("a", "n"), ("n", "out")])
    x = random_spikes((200,), batch=2, ticks=60, rate=0.05, seed=3)
    legal = target.hooks.legalize(lower(g), target.spec)
    assert len(legal.layers) > 1
    ref = reference.run(legal, {"x": x})
    emu = emulator.run(compile_graph(g, target, CompileOptions()).program, target, {"x": x})
    assert emu.spikes["n"].sum() > 5
    assert np.array_equal(emu.spikes["n"], ref.spikes["n"])
    original = reference.run(lower(g), {"x": x}).spikes["n"].sum(axis=1).astype(int)
    split = emu.spikes["n"].sum(axis=1).astype(int)
    assert original.min() >= 40
    # one tick later and with < 1 threshold of charge waiting in each partial: a few spikes fewer at most
    assert np.all(split <= original) and np.all(split >= original - 3)
