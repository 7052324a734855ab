"""Graded spike messages on loihi2: "current" inputs travel as 8-bit signed payloads, the compiler divides the
first layer's weights by the payload scale, the emulator multiplies weights by payloads, and Lava's Dense with
num_message_bits > 0 does the same bit for bit. Loihi 1 keeps binary spikes."""
from __future__ import annotations

import numpy as np
import pytest

from neurocomp.backends import emulator, lava, lava_compat, reference
from neurocomp.backends.emulator import COUNTERS
from neurocomp.backends.emulator.plan import build
from neurocomp.cli import main as cli
from neurocomp.compiler import CompileOptions, compile_graph
from neurocomp.encoding import graded_payload, input_spikes, payload_max
from neurocomp.errors import UserError
from neurocomp.frontend.ptfile import save_graph
from neurocomp.ir.graph import IF, Affine, Conv2d, Graph, Input, Output, Readout
from neurocomp.ir.layers import lower
from neurocomp.target import load_target
from lavalib import needs_lava

BITS = 8
TICKS = 16


def graded_net(seed: int = 0, full: bool = False) -> Graph:
    """12 analog inputs -> 20 (mixed-sign weights, biases) -> 8 -> 4 read-out, integer weights and thresholds.
    `full`: no zero weight into the first layer (the emulator's "any" block instead of a "packed" one)."""
    rng = np.random.default_rng(seed)
    first = rng.choice([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0], (20, 12)) if full else rng.integers(-3, 4, (20, 12)).astype(float)
    nodes = [Input("x", (12,), encoding="current"), Affine("a", first, rng.integers(-1, 2, 20).astype(float)),
             IF("h", threshold=3.0), Affine("b", rng.integers(0, 3, (8, 20)).astype(float)), IF("o", threshold=4.0),
             Affine("c", rng.integers(-2, 3, (4, 8)).astype(float)), Readout("r"), Output("out")]
    return Graph(nodes, [("x", "a"), ("a", "h"), ("h", "b"), ("b", "o"), ("o", "c"), ("c", "r"), ("r", "out")])


def payloads(batch: int, seed: int = 3) -> np.ndarray:
    x = np.random.default_rng(seed).uniform(-1, 1, (batch, 12))
    return input_spikes(x, (12,), TICKS, "current", message_bits=BITS)


def test_payload_quantisation_and_range() -> None:
    assert payload_max(BITS) == 127 and payload_max(0) == 1
    np.testing.assert_array_equal(graded_payload(np.array([-2.0, -0.5, 0.004, 1.0]), BITS), [-127, -64, 1, 127])
    assert input_spikes(np.full((1, 3), 0.5), (3,), 2, "current", message_bits=BITS).tolist() == [[[64] * 3] * 2]
    with pytest.raises(UserError, match=r"integer payloads in \[-127, 127\]"):
        input_spikes(np.full((1, 2, 3), 128), (3,), None, message_bits=BITS)
    with pytest.raises(UserError, match="only 0 and 1"):
        input_spikes(np.full((1, 2, 3), 2), (3,), None)


def test_only_loihi2_takes_current_inputs() -> None:
    assert load_target("loihi2").spec["core.message_bits"] == BITS
    with pytest.raises(UserError, match="loihi cores receive binary spikes only"):
        compile_graph(graded_net(), load_target("loihi"), CompileOptions())


@pytest.mark.parametrize("full", [False, True])
def test_emulator_equals_reference_on_the_full_or_sparse_first_layer(full: bool) -> None:
    t = load_target("loihi2")
    c = compile_graph(graded_net(1, full), t, CompileOptions())
    assert [b.mode for b in build(c.program, t).blocks if b.payload is not None] == ["any" if full else "packed"]
    p = payloads(batch=2)
    p[:, ::3, :5] = 0                             # channels that send nothing on some ticks
    emu, ref = emulator.run(c.program, t, {"x": p}), reference.run(c.qnet.network, {"x": p.astype(np.float64)})
    for name in ("h", "o"):
        np.testing.assert_array_equal(emu.spikes[name], ref.spikes[name], err_msg=name)
        assert 0 < emu.spikes[name].mean() < 0.9
    # a synaptic event per synapse of a channel whose payload (of either sign) is not 0 and lands by the last tick
    n = c.program.netlist
    per_channel = np.bincount(n.in_channel, np.bincount(n.syn_axon, minlength=n.n_axons)[n.in_axon], n.n_inputs)
    assert emu.layer_counts["h"]["synaptic_events"] == per_channel @ (p[:, :-1] != 0).sum(axis=(0, 1)) > 0


def test_emulator_equals_reference_on_the_quantised_graded_graph() -> None:
    """The first layer's weights carry 1/127: the quantised graph fed the payloads is what the chip computes."""
    t = load_target("loihi2")
    c = compile_graph(graded_net(), t, CompileOptions())
    first = c.qnet.network.layers[0].projections[0].chain[0]
    # |w| = 3/127 would sit on 127 at a scale of 3/127**2, but the bias 1 then needs 5376 > 4095 units: one bit
    # coarser, and a whole threshold of 3 / scale = 8064 units
    assert np.abs(first.weight).max() == 63 and c.qnet.qlayer("h").scale == pytest.approx(1 / 2688)
    p = payloads(batch=3)
    assert np.abs(p).max() == 127 and np.unique(p).size == 34   # 36 analog values, all kinds of payload
    emu = emulator.run(c.program, t, {"x": p})
    ref = reference.run(c.qnet.network, {"x": p.astype(np.float64)})
    for name in ("h", "o"):
        np.testing.assert_array_equal(emu.spikes[name], ref.spikes[name], err_msg=name)
    scale = next(lm.scale for lm in c.program.netlist.layers if lm.name == "r")
    np.testing.assert_array_equal(emu.potentials["r"] / scale, ref.potentials["r"])
    assert emu.spikes["h"].sum() == 328 and emu.spikes["o"].sum() > 0   # of 3 x 16 x 20
    assert emu.core_counts["synaptic_events"].sum() > 0
    # the float graph with real currents differs only by the payload rounding
    flt = reference.run(lower(graded_net()), {"x": np.random.default_rng(3).uniform(-1, 1, (3, 12))}, TICKS)
    assert (flt.spikes["h"] != emu.spikes["h"]).mean() < 0.02


@pytest.mark.lava
@needs_lava
def test_lava_dense_with_graded_messages_equals_emulator() -> None:
    t = load_target("loihi2")
    program = compile_graph(graded_net(), t, CompileOptions()).program
    p = payloads(batch=2)
    emu = emulator.run(program, t, {"x": p})
    got = lava.run(program, t, {"x": p})
    for name in emu.spikes:
        np.testing.assert_array_equal(got.spikes[name], emu.spikes[name], err_msg=name)
        assert 0 < emu.spikes[name].mean() < 0.9
    np.testing.assert_array_equal(got.potentials["r"], emu.potentials["r"])
    for key in COUNTERS:
        np.testing.assert_array_equal(got.core_counts[key], emu.core_counts[key], err_msg=key)


def conv_net(graded: bool) -> Graph:
    """(2, 6, 6) -> excitatory 3x3 conv (padding 1, per-channel bias) -> IF: one loihi2 core, weight_exp 0 (Lava's
    Conv ignores exponents, so only an excitatory layer maps onto it unchanged)."""
    rng = np.random.default_rng(5)
    nodes = [Input("x", (2, 6, 6), encoding="current" if graded else "rate"),
             Conv2d("conv", rng.integers(0, 4, (3, 2, 3, 3)).astype(float), np.array([0.0, 1.0, -1.0]), padding=1),
             IF("n", threshold=6.0), Output("out")]
    return Graph(nodes, [("x", "conv"), ("conv", "n"), ("n", "out")])


def lava_conv_spikes(program, x: np.ndarray, bits: int) -> np.ndarray:
    """One sample (ticks, 2, 6, 6) through RingBuffer -> lava.proc.conv.Conv -> LIF with the netlist's registers;
    spikes (ticks, 3, 6, 6). Lava is (W, H, C) and convolves (flipped kernel); our Conv2d is (C, H, W) and correlates."""
    lava_compat.import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.conv.process import Conv
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF

    n = program.netlist
    (lm,) = n.layers
    w = program_conv_weight(program)
    whc = lambda a: a.reshape(lm.shape).transpose(2, 1, 0)  # noqa: E731  (C, H, W) -> (W, H, C)
    p = {k: whc(np.asarray(v)[lm.neurons]) for k, v in n.params.items()}
    assert np.all(n.params["weight_exp"] == 0) and all(np.unique(p[k]).size == 1 for k in ("du", "dv", "vth"))
    ticks = x.shape[0]
    src = Source(data=x.transpose(3, 2, 1, 0).astype(np.int32))
    conv = Conv(weight=w.transpose(0, 3, 2, 1)[:, ::-1, ::-1].copy(), input_shape=(6, 6, 2), padding=(1, 1),
                num_message_bits=bits)
    lif = LIF(shape=(6, 6, 3), du=int(p["du"].flat[0]), dv=int(p["dv"].flat[0]), vth=int(p["vth"].flat[0]),
              bias_mant=p["bias_mant"], bias_exp=p["bias_exp"])
    sink = Sink(shape=(6, 6, 3), buffer=ticks)
    src.s_out.connect(conv.s_in)
    conv.a_out.connect(lif.a_in)
    lif.s_out.connect(sink.a_in)
    src.run(condition=RunSteps(num_steps=ticks), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    try:
        return sink.data.get().transpose(3, 2, 1, 0)
    finally:
        src.stop()


def program_conv_weight(program) -> np.ndarray:
    """The integer conv kernel the program stores, read back from its netlist: (C_out, C_in, 3, 3)."""
    n = program.netlist
    (lm,) = n.layers
    pos = np.argsort(lm.neurons)                          # netlist id -> (C, H, W) flat position
    chan = np.empty(n.n_inputs, np.int64)
    chan[n.in_axon - n.axon_ptr[0]] = n.in_channel
    co, y, xx = np.unravel_index(pos[n.syn_neuron - lm.neurons.min()], lm.shape)
    ci, iy, ix = np.unravel_index(chan[n.syn_axon], (2, 6, 6))
    w = np.zeros((3, 2, 3, 3), np.int64)
    w[co, ci, iy - y + 1, ix - xx + 1] = n.syn_tables["weight"]
    return w


@pytest.mark.lava
@needs_lava
@pytest.mark.parametrize("graded", [False, True])
def test_lava_conv_equals_emulator_dense_from_conv_matrix(graded: bool) -> None:
    t = load_target("loihi2")
    c = compile_graph(conv_net(graded), t, CompileOptions())
    program, kernel = c.program, c.qnet.network.layers[0].projections[0].chain[0].weight
    np.testing.assert_array_equal(program_conv_weight(program), kernel)
    assert kernel.max() == (64 if graded else 3 << 6)   # graded: 255 two bits coarser, so bias 1 fits 4095 units
    rng = np.random.default_rng(7)
    x = (input_spikes(rng.uniform(-1, 1, (1, 2, 6, 6)), (2, 6, 6), TICKS, "current", message_bits=BITS) if graded
         else (rng.random((1, TICKS, 2, 6, 6)) < 0.3).astype(np.uint8))
    emu = emulator.run(program, t, {"x": x})
    got = lava_conv_spikes(program, x[0], BITS if graded else 0)
    np.testing.assert_array_equal(got, emu.spikes["n"][0])
    assert 0.05 < emu.spikes["n"].mean() < 0.9


def test_cli_sends_payloads_to_the_chip_and_currents_to_the_reference(tmp_path) -> None:
    """`run` quantises "current" input for the emulator only; the reference simulates the float graph."""
    save_graph(graded_net(), tmp_path / "m.pt")
    np.savez(tmp_path / "in.npz", input=np.random.default_rng(3).uniform(-1, 1, (2, 12)))
    assert cli(["compile", str(tmp_path / "m.pt"), "--target", "loihi2", "-o", str(tmp_path / "p"), "--timesteps", "16"]) == 0
    out = {}
    for backend in ("emulator", "reference"):
        cli(["run", str(tmp_path / "p"), "--input", str(tmp_path / "in.npz"), "--backend", backend,
             "--out", str(tmp_path / f"{backend}.npz")])
        out[backend] = np.load(tmp_path / f"{backend}.npz")
    assert out["emulator"]["spikes/h"].shape == (2, 19, 20) and out["emulator"]["spikes/h"].sum() == 257
    for key in ("spikes/h", "spikes/o", "potential/r"):   # these inputs lose nothing to the 1/127 payload grid
        np.testing.assert_array_equal(out["emulator"][key], out["reference"][key], err_msg=key)
