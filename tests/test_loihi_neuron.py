"""Loihi neuron model (targets/loihi/neuron.py): hand-computed Lava facts (LOIHI.md §6) and
differential runs against Lava 0.10.0 itself, every spike and the final u, v bit for bit."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurocomp.backends import lava_compat
from neurocomp.errors import UserError
from neurocomp.targets.loihi.neuron import (
    PARAMS, dense_output, init_state, prepare_weights, sign_mode_of, step,
)

M = 2 ** 23  # u and v are 24-bit signed
from lavalib import needs_lava




@dataclass
class Layer:
    """One Dense -> LIF stage with Lava's per-process scalars (du, dv, vth, weight_exp)."""

    weights: np.ndarray                     # (n_out, n_in) raw values handed to Dense
    num_weight_bits: int = 8
    weight_exp: int = 0
    sign_mode: str | None = None
    du: int = 0
    dv: int = 0
    vth: int = 10
    per_neuron: dict[str, np.ndarray] = field(default_factory=dict)  # bias_mant, bias_exp, u_init, v_init

    @property
    def n(self) -> int:
        return self.weights.shape[0]

    def params(self) -> dict[str, np.ndarray]:
        """The model's per-neuron int64 parameter arrays."""
        scalars = dict(du=self.du, dv=self.dv, vth=self.vth, weight_exp=self.weight_exp,
                       bias_mant=0, bias_exp=0, u_init=0, v_init=0)
        values = {**scalars, **self.per_neuron}
        return {k: np.broadcast_to(np.asarray(values[k], dtype=np.int64), (self.n,)).copy() for k in PARAMS}


@dataclass
class Trace:
    """Spikes (T, n) of every layer, and each layer's final u and v (n,)."""

    spikes: list[np.ndarray]
    u: list[np.ndarray]
    v: list[np.ndarray]


def run_model(layers: list[Layer], x: np.ndarray) -> Trace:
    """Drive the numpy model like Lava: each Dense sends last step's buffer, then refills it."""
    params = [layer.params() for layer in layers]
    weights = [prepare_weights(layer.weights, layer.num_weight_bits, layer.sign_mode) for layer in layers]
    states = [init_state(p, x.shape[2]) for p in params]
    pending = [np.zeros((layer.n, x.shape[2]), np.int64) for layer in layers]
    spikes: list[list[np.ndarray]] = [[] for _ in layers]
    for t in range(x.shape[1]):
        inp = x[:, t, :] != 0                        # binary Dense: any nonzero counts as 1
        for k, p in enumerate(params):
            a, pending[k] = pending[k], dense_output(weights[k] @ inp.astype(np.int64), p["weight_exp"])
            states[k], inp = step(p, states[k], a)
            spikes[k].append(inp)
    return Trace([np.stack(s) for s in spikes], [s["u"] for s in states], [s["v"] for s in states])


def run_lava(layers: list[Layer], x: np.ndarray) -> Trace:
    """The same network in Lava (fixed_pt): RingBuffer -> (Dense -> LIF -> sink) per layer."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF
    from lava.utils.weightutils import SignMode

    steps = x.shape[1]
    src = Source(data=x[:, :, 0].astype(np.int32))
    out_port, lifs, sinks = src.s_out, [], []
    for layer in layers:
        kw: dict[str, Any] = {}
        if layer.sign_mode is not None:
            kw["sign_mode"] = SignMode[layer.sign_mode.upper()]
        dense = Dense(weights=layer.weights, weight_exp=layer.weight_exp,
                      num_weight_bits=layer.num_weight_bits, **kw)
        p = layer.params()
        lif = LIF(shape=(layer.n,), du=layer.du, dv=layer.dv, vth=layer.vth, bias_mant=p["bias_mant"],
                  bias_exp=p["bias_exp"], u=p["u_init"], v=p["v_init"])
        sink = Sink(shape=(layer.n,), buffer=steps)
        out_port.connect(dense.s_in)
        dense.a_out.connect(lif.a_in)
        lif.s_out.connect(sink.a_in)
        out_port = lif.s_out
        lifs.append(lif)
        sinks.append(sink)
    try:
        src.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        return Trace([s.data.get().T != 0 for s in sinks], [lif.u.get() for lif in lifs],
                     [lif.v.get() for lif in lifs])
    finally:
        src.stop()


def assert_same(lava: Trace, model: Trace) -> None:
    """Every spike of every layer and step, and the final u and v, are equal."""
    for k, (ls, ms) in enumerate(zip(lava.spikes, model.spikes)):
        np.testing.assert_array_equal(ls, ms[:, :, 0], err_msg=f"spikes of layer {k} (step, neuron)")
        np.testing.assert_array_equal(lava.u[k], model.u[k][:, 0], err_msg=f"final u of layer {k}")
        np.testing.assert_array_equal(lava.v[k], model.v[k][:, 0], err_msg=f"final v of layer {k}")


def single(n: int = 1, **kw: Any) -> Layer:
    """A layer of n neurons fed by one input through weight 0, with per-neuron overrides."""
    per = {k: kw.pop(k) for k in ("bias_mant", "bias_exp", "u_init", "v_init") if k in kw}
    return Layer(weights=kw.pop("weights", np.zeros((n, 1), np.int64)), per_neuron=per, **kw)


def lif_trace(layer: Layer, a_in: list[int]) -> list[tuple[int, int, bool]]:
    """(u, v, spike) of neuron 0 after each step, for direct per-step inputs a_in."""
    p, state, out = layer.params(), init_state(layer.params(), 1), []
    for a in a_in:
        state, s = step(p, state, np.full((layer.n, 1), a, np.int64))
        out.append((int(state["u"][0, 0]), int(state["v"][0, 0]), bool(s[0, 0])))
    return out


# --- hand-computed facts (LOIHI.md §6) ----------------------------------------------------------

def test_one_spike_weight_100_reaches_u_next_step_then_du0_decays() -> None:
    """Measured in Lava: 1 spike at t=1, weight 100, du=0 -> u = 0, 6400, 6398, 6396."""
    layers = [single(weights=np.array([[100]]), vth=100_000)]
    x = np.zeros((1, 4, 1), np.int64)
    x[0, 0, 0] = 1
    assert [int(run_model(layers, x[:, :t]).u[0][0, 0]) for t in range(1, 5)] == [0, 6400, 6398, 6396]


@pytest.mark.parametrize("mode,bits,w,expected", [
    ("mixed", 8, [3, 5, -3, -5, 300, -300], [2, 4, -4, -6, 254, -256]),
    ("excitatory", 6, [5, 255], [4, 252]),
    ("inhibitory", 6, [-5], [-4]),
    ("excitatory", 8, [-7, 300], [0, 255]),
    ("inhibitory", 8, [7, -300], [0, -255]),
    ("mixed", 5, [-17, 17], [-32, 16]),
])
def test_weight_mapping(mode: str, bits: int, w: list[int], expected: list[int]) -> None:
    got = prepare_weights(np.array(w), bits, mode)
    assert got.dtype == np.int64 and got.tolist() == expected


def test_weight_mapping_detects_mode_over_whole_matrix() -> None:
    w = np.array([[3, 5], [0, -1]])
    assert prepare_weights(w).tolist() == [[2, 4], [0, -2]]            # mixed because of the -1
    assert prepare_weights(np.array([[3, 5], [0, 0]])).tolist() == [[3, 5], [0, 0]]


def test_float_weights_truncate_toward_zero_before_mode() -> None:
    assert prepare_weights(np.array([2.7, -2.7, 0.0]), 8, "excitatory").tolist() == [2, 0, 0]
    assert sign_mode_of(np.array([-0.5, 3.0])) == "excitatory"        # -0.5 is 0 once cast
    assert prepare_weights(np.array([-0.5, 3.0])).tolist() == [0, 3]


@pytest.mark.parametrize("w,mode", [
    ([0, 0], "excitatory"), ([], "excitatory"), ([1, 0], "excitatory"),
    ([-1, 0], "inhibitory"), ([-1, 1], "mixed"),
])
def test_sign_mode_of(w: list[int], mode: str) -> None:
    assert sign_mode_of(np.array(w)) == mode


def test_sparse_nonzeros_match_dense() -> None:
    w = np.array([[0, 7, -9], [300, 0, 0]])
    mode = sign_mode_of(w)
    assert sign_mode_of(w[w != 0]) == mode
    assert prepare_weights(w[w != 0], 6, mode).tolist() == prepare_weights(w, 6)[w != 0].tolist()


def test_bad_weight_options_raise() -> None:
    with pytest.raises(ValueError):
        prepare_weights(np.array([1]), 9)
    with pytest.raises(ValueError):
        prepare_weights(np.array([1]), 8, "positive")


def test_weight_exp_applies_to_sum() -> None:
    """Excitatory [1, 1] with weight_exp=-1: (1+1)>>1 = 1; per-weight shifting would give 0."""
    w = prepare_weights(np.array([[1, 1]]))
    assert dense_output(w @ np.ones((2, 1), np.int64), np.array([-1])).tolist() == [[1]]


def test_dense_output_shifts_floor_and_wraps_to_int32() -> None:
    acc = np.array([[-3, 3], [5, -5], [2 ** 20, 1]])
    assert dense_output(acc, np.array([-1, 2, 12])).tolist() == [[-2, 1], [20, -20], [0, 4096]]


def test_bias_every_step_with_negative_exponent_floors() -> None:
    """bias_mant=-5, bias_exp=-1 -> floor(-2.5) = -3 added to v every step (dv=0)."""
    vs = [v for _, v, _ in lif_trace(single(bias_mant=-5, bias_exp=-1), [0, 0, 0])]
    assert vs == [-3, -6, -9]
    vs = [v for _, v, _ in lif_trace(single(bias_mant=3, bias_exp=2, vth=100), [0, 0])]
    assert vs == [12, 24]


def test_strict_threshold_and_reset_v_only() -> None:
    """v == vth << 6 does not spike; above it spikes, v resets to 0, u keeps its value."""
    assert lif_trace(single(vth=100), [100]) == [(6400, 6400, False)]
    assert lif_trace(single(vth=99), [100, 0]) == [(6400, 0, True), (6398, 0, True)]


@pytest.mark.parametrize("a,u", [
    (2 ** 17, M),                  # +2**23 stays
    (-(2 ** 17), M),               # -2**23 becomes +2**23
    (2 ** 17 + 1, -M + 64),        # one over the top wraps once
    (-(2 ** 17) - 1, M - 64),
    (2 ** 25, -(2 ** 31) + 2 ** 24),  # a << 6 overflows int32 first; one wrap leaves u outside 24 bits
])
def test_u_one_shot_wrap(a: int, u: int) -> None:
    (u_got, _, _), = lif_trace(single(du=4095, vth=2 ** 17 - 1), [a])
    assert u_got == u


def test_decays_round_toward_zero() -> None:
    assert lif_trace(single(du=4095, dv=2048, v_init=-7), [0]) == [(0, -3, False)]
    assert lif_trace(single(du=2047, dv=0, u_init=-7), [0]) == [(-3, -3, False)]


def test_v_clips_to_24_bits() -> None:
    """v floors at -(2**23 - 1); at the top the clipped v still exceeds the largest threshold."""
    assert lif_trace(single(bias_mant=-4096, bias_exp=7, v_init=-(M - 1)), [0])[0][1] == -(M - 1)
    assert lif_trace(single(du=4095, u_init=0, v_init=M - 1, vth=2 ** 17 - 1), [2 ** 17])[0][2]


def test_step_is_pure_and_batch_columns_are_independent() -> None:
    rng = np.random.default_rng(0)
    n, b = 6, 4
    layer = single(n, du=100, dv=200, vth=50, bias_mant=rng.integers(-100, 100, n),
                   bias_exp=rng.integers(-3, 4, n), u_init=rng.integers(-M, M, n),
                   v_init=rng.integers(-M + 1, M, n))
    p = layer.params()
    state = init_state(p, b)
    a = rng.integers(-3000, 3000, (n, b))
    inputs = {**p, **state, "a": a}
    copies = {k: v.copy() for k, v in inputs.items()}
    new, s = step(p, state, a)
    assert all(np.array_equal(inputs[k], copies[k]) for k in inputs)
    for j in range(b):
        one, s1 = step(p, {k: v[:, j:j + 1] for k, v in state.items()}, a[:, j:j + 1])
        assert np.array_equal(s1[:, 0], s[:, j]) and np.array_equal(one["v"][:, 0], new["v"][:, j])
    assert new["u"].dtype == new["v"].dtype == np.int64 and s.dtype == bool


# --- Lava itself ---------------------------------------------------------------------------------

def test_shim_is_idempotent_and_patches_exactly_once() -> None:
    lava_compat.install()
    lava_compat.install()
    assert sum(isinstance(f, lava_compat._LavaPatchFinder) for f in sys.meta_path) == 1
    with pytest.raises(ImportError, match="exactly one match"):
        lava_compat.patch_source("lava.magma.compiler.var_model", "class ByteEncoder: pass\n")


def test_missing_lava_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lava_compat.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match="lava-nc is not installed"):
        lava_compat.import_lava()
    assert not lava_compat.lava_available()


@pytest.mark.lava
@needs_lava
@pytest.mark.parametrize("chosen,expected", [("fork", "imported"), ("spawn", "UserError")])
def test_lava_import_after_start_method_chosen(chosen: str, expected: str) -> None:
    """Lava calls set_start_method('fork') at import: an already chosen 'fork' must not break it,
    any other method must give a clear UserError."""
    code = (f"import multiprocessing as mp; mp.set_start_method({chosen!r})\n"
            "from neurocomp.backends.lava_compat import import_lava\n"
            "from neurocomp.errors import UserError\n"
            "try:\n    import_lava(); print('imported')\nexcept UserError:\n    print('UserError')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == expected, out.stderr


@st.composite
def layer_st(draw: st.DrawFn, n_in: int, max_n: int) -> Layer:
    """Random Dense + LIF stage; arrays come from a drawn seed to keep examples cheap."""
    n = draw(st.integers(1, max_n))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    lo, hi = draw(st.sampled_from([(-400, 400), (0, 400), (-400, 0), (-40, 40)]))
    weights = rng.integers(lo, hi, (n, n_in), endpoint=True)
    decay = st.one_of(st.sampled_from([0, 1, 4095]), st.integers(0, 4095))
    shrink = draw(st.sampled_from([0, 0, 6, 12, 23]))   # 0: u, v start anywhere in 24 bits
    return Layer(
        weights=weights,
        num_weight_bits=draw(st.integers(5, 8)),
        weight_exp=draw(st.integers(-3, 3)),
        sign_mode=draw(st.sampled_from([None, None, "mixed", "excitatory", "inhibitory"])),
        du=draw(decay), dv=draw(decay),
        vth=draw(st.one_of(st.integers(0, 3000), st.integers(0, 2 ** 17 - 1))),
        per_neuron=dict(bias_mant=rng.integers(-4096, 4096, n) * (rng.random(n) < 0.5),
                        bias_exp=rng.integers(-3, 8, n),
                        u_init=rng.integers(-M, M, n, endpoint=True) >> shrink,
                        v_init=rng.integers(-M + 1, M, n) >> shrink),
    )


@st.composite
def network_st(draw: st.DrawFn, max_layers: int = 2, max_n: int = 20,
               max_steps: int = 30) -> tuple[list[Layer], np.ndarray]:
    """Input (n_in, T, 1), partly graded (2, -1: binary Dense counts any nonzero as 1), and
    1..max_layers stages (at least 2 unless max_layers is 1)."""
    n_in = draw(st.integers(1, max_n))
    steps = draw(st.integers(10, max_steps))
    rate = draw(st.sampled_from([0.05, 0.3, 0.8, 1.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    x = (rng.random((n_in, steps, 1)) < rate) * rng.choice([1, 1, 1, 2, -1], (n_in, steps, 1))
    layers: list[Layer] = []
    for _ in range(draw(st.integers(min(2, max_layers), max_layers))):
        layers.append(draw(layer_st(layers[-1].n if layers else n_in, max_n)))
    return layers, x


@pytest.mark.lava
@needs_lava
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(network_st())
def test_matches_lava_on_random_networks(net: tuple[list[Layer], np.ndarray]) -> None:
    layers, x = net
    assert_same(run_lava(layers, x), run_model(layers, x))


@pytest.mark.lava
@pytest.mark.slow
@needs_lava
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(network_st(max_layers=3, max_n=64, max_steps=60))
def test_matches_lava_on_random_networks_heavy(net: tuple[list[Layer], np.ndarray]) -> None:
    layers, x = net
    assert_same(run_lava(layers, x), run_model(layers, x))


def _edge_layers() -> dict[str, list[Layer]]:
    """Single-layer networks at the corners: int32 overflows, 24-bit limits, odd weights.

    Bias exponents above 7 (beyond Lava's documented 3 bits, unchecked) are the only way
    to overflow the int32 sum that forms v.
    """
    big = np.array([[255, 255], [-256, 255], [255, 0]])
    return {
        "float_weights": [Layer(weights=np.array([[-0.5, 3.0], [2.7, 1.9], [0.2, 0.9]]), vth=0)],
        "shift_overflow": [Layer(weights=big, weight_exp=18, du=4095, vth=2 ** 17 - 1)],
        "int32_channel_wrap": [Layer(weights=big, weight_exp=24, dv=1, vth=2 ** 17 - 1)],
        "uv_at_limits": [Layer(weights=big, weight_exp=3, du=0, dv=0, vth=2 ** 17 - 1,
                               per_neuron=dict(u_init=[M - 1, -M + 1, M], v_init=[M - 1, -M + 1, 0],
                                               bias_mant=[4095, -4096, 4095], bias_exp=[7, 7, -7]))],
        "u_exactly_pm_2_23": [Layer(weights=np.array([[-256, 0], [128, 128], [-256, -2]]), weight_exp=9,
                                    du=4095, dv=4095, vth=2 ** 17 - 1)],
        "v_sum_int32_wrap": [Layer(weights=np.zeros((2, 1)), vth=2 ** 17 - 1, per_neuron=dict(
            u_init=2 ** 31 - 1, v_init=M - 1, bias_mant=[4095, 0], bias_exp=12))],
        "explicit_sign_mode_clips": [Layer(weights=big, sign_mode="excitatory", num_weight_bits=5, vth=0),
                                     Layer(weights=np.array([[-30, 70, 90]]), sign_mode="inhibitory", vth=1,
                                           per_neuron=dict(bias_mant=[200]))],
    }


@pytest.mark.lava
@needs_lava
@pytest.mark.parametrize("name", list(_edge_layers()))
def test_matches_lava_at_edges(name: str) -> None:
    layers = _edge_layers()[name]
    x = (np.random.default_rng(1).random((layers[0].weights.shape[1], 12, 1)) < 0.7).astype(np.int64)
    assert_same(run_lava(layers, x), run_model(layers, x))
