"""TrueNorth neuron update after synaptic integration: leak, threshold, fire, reset (TRUENORTH.md §3).

One call of `step` advances every neuron of a core (or of many cores stacked along N) and every
batch column by one tick, in int64 and bit-exact for deterministic configurations (c_lambda = 0
and tm = 0 everywhere), following Cassidy et al. 2013:

    integrate  V += acc                                        -> overflow
    leak       V += Omega * [(1-c)*lambda + c*F(lambda, rho)*sgn(lambda)],
               Omega = (1-eps) + eps*sgn(V)                   -> no-ringing clamp -> overflow
    threshold  eta = rho & (2**tm - 1);  spike iff V >= alpha + eta
               negative iff V < -(beta*kappa + (beta+eta)*(1-kappa))  (or <=), never on a spike
    reset      per gamma x kappa (§3.4)                        -> overflow

Semantic choices (open points of §12, all switchable through `NeuronOptions` unless noted):
* overflow is applied after each of the three stages, i.e. V is a v_bits register between them;
* the no-ringing clamp compares the exact (unwrapped) sums, so it only fires on a true zero
  crossing, never on a wrap-around;
* a positive spike wins over the negative test (they can only coincide with `<=`, V = 0 and
  alpha = beta = 0), following the if / else-if order of NeMo's transcription of Cassidy;
* PRNs are 8 bits wide, as pytruenorth and NeMo treat them, so tm is limited to 0..8.

IBM's PRNG (LFSR polynomial, seeding, draw order) is not public: stochastic leak and threshold
draw from the numpy Generator passed in, so stochastic runs match the hardware's distribution,
not its bits. Per tick the draws are, in order, one (N, B) leak array if any c_lambda = 1, then
one (N, B) threshold array if any tm > 0; deterministic configurations never touch the rng.
Stochastic synapses belong to the integration stage, not to this module.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

PARAMS = ("leak", "epsilon", "c_lambda", "alpha", "beta", "tm", "gamma", "kappa", "reset", "v_init")
PRN_BITS = 8  # pytruenorth PRNG_MIN/MAX = uint8, NeMo rejects PRN maxima above 256 (TRUENORTH.md §4)
TM_MAX = PRN_BITS  # a wider mask cannot change an 8-bit PRN
V_BITS_MAX = 62  # keeps v + acc and every intermediate inside int64

OVERFLOW_MODES = ("saturate", "wrap", "none")
THRESHOLD_CMPS = ("<", "<=")
STOCH_CMPS = (">=", ">")


@dataclass(frozen=True)
class NeuronOptions:
    """The neuron-model choices TRUENORTH.md §12 leaves open."""

    v_bits: int = 20
    v_overflow: str = "saturate"
    leak_no_ringing: bool = True
    neg_threshold_cmp: str = "<"
    stoch_compare: str = ">="

    def __post_init__(self) -> None:
        if not 2 <= self.v_bits <= V_BITS_MAX:
            raise ValueError(f"v_bits = {self.v_bits}; allowed 2..{V_BITS_MAX}")
        for name, value, allowed in (("v_overflow", self.v_overflow, OVERFLOW_MODES),
                                     ("neg_threshold_cmp", self.neg_threshold_cmp, THRESHOLD_CMPS),
                                     ("stoch_compare", self.stoch_compare, STOCH_CMPS)):
            if value not in allowed:
                raise ValueError(f"{name} = {value!r}; allowed {', '.join(map(repr, allowed))}")

    @staticmethod
    def from_spec(get: Callable[[str, Any], Any]) -> NeuronOptions:
        """Build from a spec getter such as `TargetSpec.get`; absent keys keep the defaults."""
        d = NeuronOptions()
        return NeuronOptions(
            v_bits=int(get("core.v_bits", d.v_bits)),
            v_overflow=str(get("core.v_overflow", d.v_overflow)),
            leak_no_ringing=bool(get("core.leak_no_ringing", d.leak_no_ringing)),
            neg_threshold_cmp=str(get("core.neg_threshold_cmp", d.neg_threshold_cmp)),
            stoch_compare=str(get("core.stoch_compare", d.stoch_compare)),
        )

    @property
    def v_range(self) -> tuple[int, int]:
        """Inclusive signed range of a v_bits register."""
        half = 1 << (self.v_bits - 1)
        return -half, half - 1


def init_v(params: Mapping[str, np.ndarray], batch: int) -> np.ndarray:
    """Initial membrane potentials, one independent column per batch element."""
    v0 = np.asarray(params["v_init"], dtype=np.int64)
    return np.repeat(v0[:, None], batch, axis=1)


def step(params: Mapping[str, np.ndarray], v: np.ndarray, acc: np.ndarray,
         opts: NeuronOptions, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Advance one tick; returns (new_v, spikes), both (N, B). Inputs are left untouched.

    `check_params` is not repeated here, so call it once per configuration, not per tick.
    """
    p = {k: np.asarray(params[k], dtype=np.int64)[:, None] for k in PARAMS}
    v = np.asarray(v, dtype=np.int64)
    acc = np.asarray(acc, dtype=np.int64)
    if v.ndim != 2 or v.shape != acc.shape or v.shape[0] != p["leak"].shape[0]:
        raise ValueError(f"v {v.shape} and acc {acc.shape} must both be (N={p['leak'].shape[0]}, B)")
    v = _overflow(v + acc, opts)
    v = _leak(p, v, opts, rng)
    return _threshold_reset(p, v, opts, rng)


def check_params(params: Mapping[str, np.ndarray], opts: NeuronOptions) -> None:
    """Reject parameters the model has no meaning for, naming parameter, neuron, value and range."""
    missing = [k for k in PARAMS if k not in params]
    if missing:
        raise ValueError(f"neuron parameters missing: {', '.join(missing)}")
    arrays = {k: np.asarray(params[k]) for k in PARAMS}
    n = arrays["leak"].shape
    for name, a in arrays.items():
        if a.ndim != 1 or a.shape != n or a.dtype.kind not in "iub":
            raise ValueError(f"{name}: need a 1-D integer array of shape {n}, got {a.dtype} {a.shape}")
    lo, hi = opts.v_range if opts.v_overflow != "none" else (None, None)
    for name, allowed in (("epsilon", (0, 1)), ("c_lambda", (0, 1)), ("kappa", (0, 1)), ("gamma", (0, 2)),
                          ("alpha", (0, None)), ("beta", (0, None)), ("tm", (0, TM_MAX)),
                          ("reset", (lo, hi)), ("v_init", (lo, hi))):
        _check_range(name, arrays[name].astype(np.int64), *allowed)


def _check_range(name: str, a: np.ndarray, lo: int | None, hi: int | None) -> None:
    bad = np.zeros(a.shape, dtype=bool)
    if lo is not None:
        bad |= a < lo
    if hi is not None:
        bad |= a > hi
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        span = f"{'-inf' if lo is None else lo}..{'inf' if hi is None else hi}"
        raise ValueError(f"{name} of neuron {j} is {int(a[j])}; allowed {span}")


def _overflow(v: np.ndarray, opts: NeuronOptions) -> np.ndarray:
    """Model the v_bits register: clamp, two's-complement wrap, or nothing."""
    if opts.v_overflow == "none":
        return v
    lo, hi = opts.v_range
    if opts.v_overflow == "saturate":
        return v.clip(np.int64(lo), np.int64(hi))  # a method: torch tensors work too; numpy scalars: fast
    return ((v - lo) & ((1 << opts.v_bits) - 1)) + lo


def _prn(rng: np.random.Generator | None, shape: tuple[int, ...], what: str) -> np.ndarray:
    if rng is None:
        raise ValueError(f"stochastic {what} needs an rng")
    return rng.integers(0, 1 << PRN_BITS, size=shape, dtype=np.int64)


def _stoch_fire(x: np.ndarray, rho: np.ndarray, opts: NeuronOptions) -> np.ndarray:
    """Cassidy's F(x, rho): the stochastic event happens with probability ~|x| / 2**PRN_BITS."""
    return np.abs(x) >= rho if opts.stoch_compare == ">=" else np.abs(x) > rho


def _leak(p: Mapping[str, np.ndarray], v: np.ndarray, opts: NeuronOptions,
          rng: np.random.Generator | None) -> np.ndarray:
    lam, eps, c = p["leak"], p["epsilon"], p["c_lambda"]
    amount = np.broadcast_to(lam, v.shape)
    if c.any():
        stoch = _stoch_fire(lam, _prn(rng, v.shape, "leak"), opts) * np.sign(lam)
        amount = np.where(c == 1, stoch, lam)
    omega = np.where(eps == 1, np.sign(v), 1)
    out = v + omega * amount
    if opts.leak_no_ringing:
        out = np.where((eps == 1) & (np.sign(out) * np.sign(v) < 0), 0, out)
    return _overflow(out, opts)


def _threshold_reset(p: Mapping[str, np.ndarray], v: np.ndarray, opts: NeuronOptions,
                     rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
    alpha, beta, gamma, kappa, reset = p["alpha"], p["beta"], p["gamma"], p["kappa"], p["reset"]
    eta = np.zeros_like(v)
    if p["tm"].any():
        eta = _prn(rng, v.shape, "threshold") & ((1 << p["tm"]) - 1)
    pos_thr = alpha + eta
    neg_thr = -(beta + eta * (1 - kappa))
    spikes = v >= pos_thr
    below = v < neg_thr if opts.neg_threshold_cmp == "<" else v <= neg_thr
    pos_v = np.where(gamma == 0, reset, np.where(gamma == 1, v - pos_thr, v))
    neg_v = np.where(kappa == 1, -beta,
                     np.where(gamma == 0, -reset, np.where(gamma == 1, v - neg_thr, v)))
    new_v = np.where(spikes, pos_v, np.where(below, neg_v, v))  # a spike wins over the negative test
    return _overflow(new_v, opts), spikes


class Stepper:
    """`step` for a whole netlist, fast: integrate, leak, threshold and reset with the per-neuron
    constants folded once (reset = k * V + c per gamma x kappa) and stages that are no-ops for these
    parameters skipped. Same integers and the same rng draws, in the same order and (N, B) shape, as
    `step` (tested against it); int64 (`self.dtype`) on numpy or torch (`xp`, neurocomp.arrays).
    Batch-major: acc and v are (B, N).
    """

    def __init__(self, params: Mapping[str, np.ndarray], opts: NeuronOptions, batch: int, xp) -> None:
        p = {k: np.asarray(params[k], dtype=np.int64) for k in PARAMS}
        self.xp, self.opts, self.dtype = xp, opts, xp.int64
        self.v = xp.asarray(init_v(params, batch).T.copy())
        self.lam = xp.asarray(p["leak"]) if p["leak"].any() else None
        self.stoch_leak = (p["c_lambda"] == 1, p["leak"]) if p["c_lambda"].any() else None
        self.eps = xp.asarray(p["epsilon"] == 1) if p["epsilon"].any() else None
        self.tm_mask = (1 << p["tm"]) - 1 if p["tm"].any() else None
        alpha, beta, gamma, kappa, reset = (p[k] for k in ("alpha", "beta", "gamma", "kappa", "reset"))
        g0, g1, kap = (gamma == 0).astype(np.int64), (gamma == 1).astype(np.int64), kappa
        self.alpha, self.neg = xp.asarray(alpha), xp.asarray(-beta)
        self.eta_neg = xp.asarray(1 - kappa)            # eta also lowers the negative threshold when kappa = 0
        self.pos = _Linear(xp, (gamma != 0).astype(np.int64), g0 * reset - g1 * alpha, -g1)
        self.neg_v = _Linear(xp, (1 - kap) * (gamma != 0), kap * -beta + (1 - kap) * (g1 * beta - g0 * reset),
                             (1 - kap) * g1)
        self.below_le = opts.neg_threshold_cmp == "<="

    def __call__(self, acc, rng: np.random.Generator | None = None):
        """One tick from the integrated input acc (B, N) int64; returns the spikes (B, N) bool."""
        xp = self.xp
        v = _overflow(self.v + acc, self.opts)
        v = self._leak(v, rng)
        eta = None if self.tm_mask is None else xp.asarray((self._prn(rng, v, "threshold") & self.tm_mask))
        spikes = v >= (self.alpha if eta is None else self.alpha + eta)
        neg_thr = self.neg if eta is None else self.neg - eta * self.eta_neg
        below = v <= neg_thr if self.below_le else v < neg_thr
        new_v = _select(below, self.neg_v(v, eta), v)
        self.v = _overflow(_select(spikes, self.pos(v, eta), new_v), self.opts)   # a spike wins over the negative test
        return spikes

    @staticmethod
    def _prn(rng: np.random.Generator | None, v, what: str) -> np.ndarray:
        """(B, N) PRNs drawn as `step` draws them, (N, B)."""
        return _prn(rng, tuple(v.shape)[::-1], what).T

    def _leak(self, v, rng: np.random.Generator | None):
        xp, amount = self.xp, self.lam
        if self.stoch_leak is not None:
            stoch, lam = self.stoch_leak
            amount = xp.asarray(np.where(stoch, _stoch_fire(lam, self._prn(rng, v, "leak"), self.opts) * np.sign(lam), lam))
        if amount is None:
            return v
        if self.eps is None:
            return _overflow(v + amount, self.opts)
        sv = _sign(v)
        out = v + _select(self.eps, sv, 1) * amount
        if self.opts.leak_no_ringing:
            out = out * ~(self.eps & (_sign(out) * sv < 0))
        return _overflow(out, self.opts)

    def potential(self):
        """v (B, N) in integer graph units, as float."""
        return self.xp.cast(self.v, self.xp.float64)


def _select(cond, a, b):
    """where(cond, a, b) for integers as arithmetic: numpy's where is several times slower."""
    return b + cond * (a - b)


def _sign(x):
    return (x > 0) * 1 - (x < 0) * 1


class _Linear:
    """k * v + c + e * eta with per-neuron integer rows, skipping all-zero and all-one terms."""

    def __init__(self, xp, k: np.ndarray, c: np.ndarray, e: np.ndarray) -> None:
        self.keep = "none" if not k.any() else "all" if (k == 1).all() else "some"
        self.k, self.c = xp.asarray(k), xp.asarray(c)
        self.e = xp.asarray(e) if e.any() else None

    def __call__(self, v, eta):
        out = self.c if self.keep == "none" else (v if self.keep == "all" else self.k * v) + self.c
        return out if self.e is None or eta is None else out + self.e * eta
