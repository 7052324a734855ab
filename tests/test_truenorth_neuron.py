"""TrueNorth neuron update: hand-computed traces from Cassidy's equations (TRUENORTH.md §3),
statistics of the stochastic modes, and a property test against a scalar reference."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurocomp.targets.truenorth.neuron import (
    PARAMS, PRN_BITS, TM_MAX, NeuronOptions, check_params, init_v, step,
)

BIG = 10_000  # a threshold magnitude no trace below reaches


def make(n: int = 1, **kw: Any) -> dict[str, np.ndarray]:
    """Parameters of n neurons: no leak, unreachable thresholds, no reset, unless overridden."""
    base = dict(leak=0, epsilon=0, c_lambda=0, alpha=BIG, beta=BIG, tm=0, gamma=2, kappa=0, reset=0, v_init=0)
    base.update(kw)
    return {k: np.broadcast_to(np.asarray(base[k], dtype=np.int64), (n,)).copy() for k in PARAMS}


def trace(params: dict[str, np.ndarray], ticks: int, opts: NeuronOptions = NeuronOptions(),
          acc: int = 0) -> list[int]:
    """V of neuron 0 after each tick with a constant input."""
    v, out = init_v(params, 1), []
    for _ in range(ticks):
        v, _ = step(params, v, np.full_like(v, acc), opts)
        out.append(int(v[0, 0]))
    return out


class FixedRng:
    """Stands in for a Generator: every PRN equals `value`, so compare semantics are exact."""

    def __init__(self, value: int) -> None:
        self.value = value

    def integers(self, low: int, high: int, size: tuple[int, ...], dtype: Any) -> np.ndarray:
        assert 0 <= self.value < high == 1 << PRN_BITS and low == 0
        return np.full(size, self.value, dtype=dtype)


# --- leak -------------------------------------------------------------------------------------

def test_monotonic_up_and_down() -> None:
    assert trace(make(leak=3), 4) == [3, 6, 9, 12]
    assert trace(make(leak=-2, v_init=5), 4) == [3, 1, -1, -3]


def test_convergent_leak_clamps_at_zero() -> None:
    assert trace(make(leak=-3, epsilon=1, v_init=7), 5) == [4, 1, 0, 0, 0]
    assert trace(make(leak=-3, epsilon=1, v_init=-7), 5) == [-4, -1, 0, 0, 0]
    assert trace(make(leak=-3, epsilon=1, v_init=6), 3) == [3, 0, 0]


def test_convergent_leak_rings_without_clamp() -> None:
    opts = NeuronOptions(leak_no_ringing=False)
    assert trace(make(leak=-3, epsilon=1, v_init=7), 5, opts) == [4, 1, -2, 1, -2]


def test_divergent_leak() -> None:
    assert trace(make(leak=2, epsilon=1, v_init=1), 3) == [3, 5, 7]
    assert trace(make(leak=2, epsilon=1, v_init=-1), 3) == [-3, -5, -7]


def test_no_leak_at_zero_with_epsilon() -> None:
    assert trace(make(leak=-3, epsilon=1), 3) == [0, 0, 0]
    assert trace(make(leak=5, epsilon=1), 3) == [0, 0, 0]


def test_leak_sees_integrated_v() -> None:
    """Omega takes the sign of V after integration, so input from 0 leaks in the same tick."""
    assert trace(make(leak=-2, epsilon=1), 2, acc=5) == [3, 6]
    assert trace(make(leak=-2, epsilon=1), 2, acc=-5) == [-3, -6]


def test_no_ringing_clamp_only_for_epsilon() -> None:
    """A monotonic leak crosses zero freely."""
    assert trace(make(leak=-3, v_init=2), 2) == [-1, -4]


# --- threshold and reset ----------------------------------------------------------------------

def test_six_reset_modes() -> None:
    """Columns: 0 crosses alpha = 10 (V = 14), 1 crosses -beta = -20 (V = -25); R = 3."""
    gamma = [0, 0, 1, 1, 2, 2]
    kappa = [0, 1, 0, 1, 0, 1]
    p = make(6, alpha=10, beta=20, reset=3, gamma=gamma, kappa=kappa)
    v0 = np.zeros((6, 2), dtype=np.int64)
    acc = np.tile([14, -25], (6, 1))
    v, spikes = step(p, v0, acc, NeuronOptions())
    assert v[:, 0].tolist() == [3, 3, 4, 4, 14, 14]
    assert v[:, 1].tolist() == [-3, -20, -5, -20, -25, -20]
    assert spikes[:, 0].all() and not spikes[:, 1].any()


def test_positive_threshold_boundary() -> None:
    p = make(2, alpha=10, gamma=0, reset=0)
    v, spikes = step(p, np.zeros((2, 1), np.int64), np.array([[10], [9]]), NeuronOptions())
    assert spikes[:, 0].tolist() == [True, False]
    assert v[:, 0].tolist() == [0, 9]


def test_binary_unit_idiom() -> None:
    """alpha = beta = 0, gamma = 0, kappa = 1, R = 0: spike iff input + bias >= 0, restart at 0."""
    p = make(1, alpha=0, beta=0, gamma=0, kappa=1, reset=0, leak=-2)
    v = init_v(p, 4)
    acc = np.array([[1, 2, 3, -7]])
    v, spikes = step(p, v, acc, NeuronOptions())
    assert spikes.tolist() == [[False, True, True, False]]
    assert v.tolist() == [[0, 0, 0, 0]]


@pytest.mark.parametrize("cmp, reset_at_minus_beta", [("<", False), ("<=", True)])
def test_negative_threshold_boundary(cmp: str, reset_at_minus_beta: bool) -> None:
    p = make(1, beta=5, gamma=0, kappa=0, reset=1)
    v, spikes = step(p, np.zeros((1, 2), np.int64), np.array([[-5, -6]]), NeuronOptions(neg_threshold_cmp=cmp))
    assert v.tolist() == [[-1 if reset_at_minus_beta else -5, -1]]
    assert not spikes.any()


def test_spike_wins_over_inclusive_negative_threshold() -> None:
    """At V = 0 = alpha = -beta both tests hold under `<=`; the positive reset R (not -R) applies."""
    p = make(1, alpha=0, beta=0, gamma=0, kappa=0, reset=3)
    v, spikes = step(p, np.zeros((1, 1), np.int64), np.zeros((1, 1), np.int64), NeuronOptions(neg_threshold_cmp="<="))
    assert spikes.tolist() == [[True]] and v.tolist() == [[3]]


# --- overflow ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mode, expect", [("saturate", [127, -128]), ("wrap", [-116, 116]), ("none", [140, -140])])
def test_integrate_overflow(mode: str, expect: list[int]) -> None:
    p = make(2, v_init=[120, -120], alpha=1000, beta=1000)
    v, _ = step(p, init_v(p, 1), np.array([[20], [-20]]), NeuronOptions(v_bits=8, v_overflow=mode))
    assert v[:, 0].tolist() == expect


def test_saturation_happens_before_leak() -> None:
    """120 + 20 saturates to 127 before the leak of -5, not after (which would give 127)."""
    p = make(1, v_init=120, leak=-5, alpha=1000)
    assert trace(p, 1, NeuronOptions(v_bits=8), acc=20) == [122]


@pytest.mark.parametrize("mode, expect", [("saturate", 127), ("wrap", -128)])
def test_leak_overflow(mode: str, expect: int) -> None:
    assert trace(make(1, v_init=127, leak=1, alpha=1000), 1, NeuronOptions(v_bits=8, v_overflow=mode)) == [expect]


# --- batch, rng discipline, inputs ------------------------------------------------------------

def random_params(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "leak": rng.integers(-8, 9, n), "epsilon": rng.integers(0, 2, n), "c_lambda": np.zeros(n, np.int64),
        "alpha": rng.integers(0, 30, n), "beta": rng.integers(0, 30, n), "tm": np.zeros(n, np.int64),
        "gamma": rng.integers(0, 3, n), "kappa": rng.integers(0, 2, n), "reset": rng.integers(-7, 8, n),
        "v_init": rng.integers(-20, 20, n),
    }


def test_batch_columns_are_independent() -> None:
    rng = np.random.default_rng(1)
    p, opts = random_params(rng, 9), NeuronOptions(v_bits=7)
    acc = rng.integers(-25, 26, (12, 9, 5))
    v_all, cols = init_v(p, 5), [init_v(p, 1) for _ in range(5)]
    for t in range(12):
        v_all, s_all = step(p, v_all, acc[t], opts)
        for b in range(5):
            cols[b], s = step(p, cols[b], acc[t][:, b:b + 1], opts)
            assert np.array_equal(s[:, 0], s_all[:, b])
    assert np.array_equal(v_all, np.hstack(cols))


def test_deterministic_step_leaves_rng_alone() -> None:
    rng = np.random.default_rng(5)
    before = rng.bit_generator.state
    p = random_params(np.random.default_rng(2), 6)
    step(p, init_v(p, 3), np.ones((6, 3), np.int64), NeuronOptions(), rng)
    assert rng.bit_generator.state == before
    step(p, init_v(p, 3), np.ones((6, 3), np.int64), NeuronOptions(), None)


@pytest.mark.parametrize("key", ["c_lambda", "tm"])
def test_stochastic_without_rng_is_an_error(key: str) -> None:
    p = make(1, leak=3, **{key: 1})
    with pytest.raises(ValueError, match="needs an rng"):
        step(p, init_v(p, 1), np.zeros((1, 1), np.int64), NeuronOptions())


def test_shape_mismatch() -> None:
    p = make(2)
    with pytest.raises(ValueError, match="must both be"):
        step(p, init_v(p, 3), np.zeros((2, 1), np.int64), NeuronOptions())


# --- stochastic modes: exact semantics with a fixed PRN, then statistics -----------------------

@pytest.mark.parametrize("cmp, rho, fires", [(">=", 40, True), (">", 40, False), (">", 39, True), (">=", 41, False)])
def test_stochastic_leak_compare(cmp: str, rho: int, fires: bool) -> None:
    p = make(1, leak=-40, c_lambda=1, v_init=10)
    v, _ = step(p, init_v(p, 1), np.zeros((1, 1), np.int64), NeuronOptions(stoch_compare=cmp), FixedRng(rho))
    assert v.tolist() == [[9 if fires else 10]]


def test_stochastic_leak_keeps_omega() -> None:
    """Convergent stochastic leak steps by +-1 toward 0; zero rho makes the event certain."""
    p = make(2, leak=-40, c_lambda=1, epsilon=1, v_init=[10, -10])
    v, _ = step(p, init_v(p, 1), np.zeros((2, 1), np.int64), NeuronOptions(), FixedRng(0))
    assert v[:, 0].tolist() == [9, -9]


def test_threshold_mask_takes_low_bits() -> None:
    """rho = 0b10110111, tm = 4 -> eta = 7, so alpha + eta = 17: V = 16 stays, V = 17 fires and resets to 0."""
    p = make(2, alpha=10, tm=4, gamma=1, v_init=[16, 17])
    v, spikes = step(p, init_v(p, 1), np.zeros((2, 1), np.int64), NeuronOptions(), FixedRng(0b10110111))
    assert spikes[:, 0].tolist() == [False, True]
    assert v[:, 0].tolist() == [16, 0]


def test_negative_threshold_uses_eta_unless_kappa() -> None:
    """eta = 3, beta = 2: kappa = 0 needs V < -5 and resets linearly to V + 5; kappa = 1 needs V < -2."""
    p = make(3, beta=2, tm=2, gamma=1, kappa=[0, 0, 1], v_init=[-5, -6, -3])
    v, _ = step(p, init_v(p, 1), np.zeros((3, 1), np.int64), NeuronOptions(), FixedRng(0b11))
    assert v[:, 0].tolist() == [-5, -1, -2]


def within(samples: np.ndarray, p: float, sigmas: float = 5.0) -> bool:
    """Mean of Bernoulli(p) samples within `sigmas` standard errors of p."""
    return abs(samples.mean() - p) <= sigmas * math.sqrt(p * (1 - p) / samples.size)


@pytest.mark.parametrize("cmp, hits", [(">=", 41), (">", 40)])
def test_stochastic_leak_rate(cmp: str, hits: int) -> None:
    p = make(1, leak=-40, c_lambda=1)
    v, _ = step(p, init_v(p, 20_000), np.zeros((1, 20_000), np.int64), NeuronOptions(stoch_compare=cmp),
                np.random.default_rng(11))
    assert set(np.unique(v)) <= {0, -1}
    assert within(v[0] == -1, hits / 256)


def test_stochastic_threshold_rate() -> None:
    """alpha = 0, tm = 4, V = 5: spike iff eta <= 5, eta uniform on 0..15 -> p = 6/16."""
    p = make(1, alpha=0, tm=4, gamma=2, v_init=5)
    _, spikes = step(p, init_v(p, 20_000), np.zeros((1, 20_000), np.int64), NeuronOptions(),
                     np.random.default_rng(12))
    assert within(spikes[0], 6 / 16)


def test_stochastic_linear_reset_distribution() -> None:
    """V = 20, alpha = 4, tm = 3, gamma = 1: V - (alpha + eta) is uniform on 9..16 (mean 12.5)."""
    p = make(1, alpha=4, tm=3, gamma=1, v_init=20)
    v, spikes = step(p, init_v(p, 20_000), np.zeros((1, 20_000), np.int64), NeuronOptions(),
                     np.random.default_rng(13))
    assert spikes.all() and set(np.unique(v)) == set(range(9, 17))
    assert abs(v.mean() - 12.5) <= 5 * math.sqrt(63 / 12 / v.size)


# --- check_params and options -----------------------------------------------------------------

@pytest.mark.parametrize("name, value, where", [
    ("gamma", 3, "gamma of neuron 2 is 3"), ("kappa", 2, "kappa of neuron 2"), ("epsilon", -1, "epsilon"),
    ("c_lambda", 5, "c_lambda"), ("alpha", -1, "alpha of neuron 2 is -1"), ("beta", -4, "beta"),
    ("tm", TM_MAX + 1, f"tm of neuron 2 is {TM_MAX + 1}; allowed 0..{TM_MAX}"),
    ("v_init", 128, "v_init of neuron 2 is 128; allowed -128..127"), ("reset", -129, "reset"),
])
def test_check_params_names_the_culprit(name: str, value: int, where: str) -> None:
    p = make(4)
    p[name][2] = value
    with pytest.raises(ValueError, match=where):
        check_params(p, NeuronOptions(v_bits=8))


def test_check_params_accepts_valid_and_rejects_shapes() -> None:
    check_params(random_params(np.random.default_rng(3), 5), NeuronOptions())
    check_params(make(2, v_init=10**9), NeuronOptions(v_overflow="none"))
    p = make(3)
    p["alpha"] = np.zeros(2, np.int64)
    with pytest.raises(ValueError, match="alpha"):
        check_params(p, NeuronOptions())
    del p["alpha"]
    with pytest.raises(ValueError, match="missing: alpha"):
        check_params(p, NeuronOptions())


@pytest.mark.parametrize("kw", [dict(v_overflow="clip"), dict(neg_threshold_cmp=">"),
                                dict(stoch_compare="=="), dict(v_bits=1), dict(v_bits=63)])
def test_bad_options(kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        NeuronOptions(**kw)


def test_options_from_spec() -> None:
    from neurocomp.target import load_spec

    assert NeuronOptions.from_spec(load_spec("truenorth").get) == NeuronOptions()
    values = {"core.v_bits": 12, "core.v_overflow": "wrap", "core.neg_threshold_cmp": "<="}
    opts = NeuronOptions.from_spec(lambda k, d: values.get(k, d))
    assert opts == NeuronOptions(v_bits=12, v_overflow="wrap", neg_threshold_cmp="<=")


# --- property test against a scalar reference -------------------------------------------------

def sgn(x: int) -> int:
    return (x > 0) - (x < 0)


def delta(x: int) -> int:
    return int(x == 0)


def ref_overflow(v: int, o: NeuronOptions) -> int:
    half = 1 << (o.v_bits - 1)
    if o.v_overflow == "saturate":
        return max(-half, min(half - 1, v))
    if o.v_overflow == "wrap":
        return (v + half) % (2 * half) - half
    return v


def ref_tick(q: dict[str, int], v: int, acc: int, o: NeuronOptions, rho_l: int, rho_t: int) -> tuple[int, bool]:
    """Cassidy's equations for one neuron, written out term by term (TRUENORTH.md §3)."""
    F = (abs(q["leak"]) >= rho_l) if o.stoch_compare == ">=" else (abs(q["leak"]) > rho_l)
    v = ref_overflow(v + acc, o)
    omega = (1 - q["epsilon"]) + q["epsilon"] * sgn(v)
    leaked = v + omega * ((1 - q["c_lambda"]) * q["leak"] + q["c_lambda"] * int(F) * sgn(q["leak"]))
    if o.leak_no_ringing and q["epsilon"] and sgn(leaked) == -sgn(v) != 0:
        leaked = 0
    v = ref_overflow(leaked, o)
    eta = rho_t & (2 ** q["tm"] - 1)
    a, b, g, k, r = q["alpha"], q["beta"], q["gamma"], q["kappa"], q["reset"]
    neg_thr = -(b * k + (b + eta) * (1 - k))
    if v >= a + eta:
        v, spike = delta(g) * r + delta(g - 1) * (v - (a + eta)) + delta(g - 2) * v, True
    elif v < neg_thr or (o.neg_threshold_cmp == "<=" and v == neg_thr):
        v, spike = -b * k + (-delta(g) * r + delta(g - 1) * (v + (b + eta)) + delta(g - 2) * v) * (1 - k), False
    else:
        spike = False
    return ref_overflow(v, o), spike


class RecordingRng:
    """A seeded Generator that remembers every array it handed out, for the reference to replay."""

    def __init__(self, seed: int) -> None:
        self.gen, self.draws = np.random.default_rng(seed), []

    def integers(self, low: int, high: int, size: tuple[int, ...], dtype: Any) -> np.ndarray:
        out = self.gen.integers(low, high, size=size, dtype=dtype)
        self.draws.append(out.copy())
        return out


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, np.ndarray], NeuronOptions, np.ndarray, np.ndarray, int]:
    o = NeuronOptions(v_bits=draw(st.integers(4, 12)), v_overflow=draw(st.sampled_from(["saturate", "wrap", "none"])),
                      leak_no_ringing=draw(st.booleans()), neg_threshold_cmp=draw(st.sampled_from(["<", "<="])),
                      stoch_compare=draw(st.sampled_from([">=", ">"])))
    stochastic = draw(st.booleans())
    n, b, t = draw(st.integers(1, 5)), draw(st.integers(1, 3)), draw(st.integers(1, 5))
    lo, hi = o.v_range

    def ints(a: int, z: int) -> st.SearchStrategy[list[int]]:
        return st.lists(st.integers(a, z), min_size=n, max_size=n)

    p = {"leak": ints(-300, 300), "epsilon": ints(0, 1), "c_lambda": ints(0, 1 if stochastic else 0),
         "alpha": ints(0, 2 * hi), "beta": ints(0, 2 * hi), "tm": ints(0, TM_MAX if stochastic else 0),
         "gamma": ints(0, 2), "kappa": ints(0, 1), "reset": ints(lo, hi), "v_init": ints(lo, hi)}
    params = {k: np.array(draw(s), dtype=np.int64) for k, s in p.items()}
    v0 = np.array(draw(st.lists(st.integers(lo, hi), min_size=n * b, max_size=n * b)), np.int64).reshape(n, b)
    acc = np.array(draw(st.lists(st.integers(-3 * hi, 3 * hi), min_size=t * n * b, max_size=t * n * b)),
                   np.int64).reshape(t, n, b)
    return params, o, v0, acc, draw(st.integers(0, 2**32))


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_step_matches_scalar_reference(case: tuple) -> None:
    params, o, v0, acc, seed = case
    check_params(params, o)
    rng = RecordingRng(seed)
    frozen = ({k: a.copy() for k, a in params.items()}, v0.copy(), acc.copy())
    v, got_v, got_s = v0, [], []
    for a in acc:
        v, s = step(params, v, a, o, rng)
        got_v.append(v)
        got_s.append(s)
    assert np.array_equal(v0, frozen[1]) and np.array_equal(acc, frozen[2])
    assert all(np.array_equal(params[k], frozen[0][k]) for k in PARAMS)

    draws = iter(rng.draws)
    n, b = v0.shape
    ref = v0.tolist()
    for t in range(acc.shape[0]):
        rho_l = next(draws) if params["c_lambda"].any() else np.zeros((n, b), np.int64)
        rho_t = next(draws) if params["tm"].any() else np.zeros((n, b), np.int64)
        for j in range(n):
            q = {k: int(params[k][j]) for k in PARAMS}
            for c in range(b):
                ref[j][c], spike = ref_tick(q, ref[j][c], int(acc[t, j, c]), o, int(rho_l[j, c]), int(rho_t[j, c]))
                assert spike == bool(got_s[t][j, c])
        assert got_v[t].tolist() == ref
    assert next(draws, None) is None
