"""Vectorised, bit-exact numpy model of Lava 0.10.0's ``PyDenseModelBitAcc`` + ``PyLifModelBitAcc``.

Semantics are LOIHI.md §6.2-6.3.  Values live in int64 here, but wherever Lava computes in
int32 (weights, the Dense->LIF channel, the u and v sums including ``a << 6``) the result is wrapped
to int32 exactly as numpy does in Lava, so even overflowing inputs match bit for bit.

Parameter domain (Lava's register widths; not checked here, the quantiser guarantees them):
du, dv in [0, 4095], vth in [0, 2**17), bias_mant in [-4096, 4095], |bias_exp| <= 31,
|weight_exp| <= 63, u_init and v_init int32.  Layout: neurons on axis 0, batch on axis 1.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

PARAMS = ("du", "dv", "vth", "bias_mant", "bias_exp", "weight_exp", "v_init", "u_init")
SIGN_MODES = ("excitatory", "inhibitory", "mixed")

_DECAY_SHIFT = 12          # decays are 12-bit fractions of 4096
ACT_SHIFT = 6             # synaptic input and threshold are MSB-aligned by 6 bits
_UV_MAX = 2 ** 23          # u and v are 24-bit signed
V_LIMIT = _UV_MAX - 1     # v is clipped to +-(2**23 - 1)


def wrap_int32(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap of int64 values to int32 range (what an int32 numpy op does)."""
    return ((np.asarray(x, dtype=np.int64) + 2 ** 31) & (2 ** 32 - 1)) - 2 ** 31


def sign_mode_of(w: np.ndarray) -> str:
    """Lava's ``determine_sign_mode`` on the int32-cast weights Lava actually holds.

    All-zero (or empty) is excitatory.  Zeros never change the answer, so the nonzero
    values of a sparse matrix give the same mode as the dense matrix.
    """
    w32 = np.asarray(w).astype(np.int32)
    if w32.size == 0 or w32.min() >= 0:
        return "excitatory"
    return "inhibitory" if w32.max() <= 0 else "mixed"


def prepare_weights(w: np.ndarray, num_weight_bits: int = 8, sign_mode: str | None = None) -> np.ndarray:
    """The int64 weights Lava's Dense really multiplies with (first-step weight preparation).

    Like Lava: cast to int32 (floats truncate toward zero, big ints wrap), sign mode over the
    whole matrix unless given, clip to 8 bits by sign mode, then drop
    ``8 - num_weight_bits + mixed`` LSBs (floor; inhibitory works on the magnitude).  Pass an
    explicit ``sign_mode`` (of the whole matrix) when ``w`` is only the nonzero values.
    """
    mode = sign_mode or sign_mode_of(w)
    if mode not in SIGN_MODES:
        raise ValueError(f"sign_mode must be one of {SIGN_MODES}, got {mode!r}")
    drop = 8 - num_weight_bits + (mode == "mixed")
    if not 1 <= num_weight_bits <= 8:
        raise ValueError(f"num_weight_bits must be in 1..8, got {num_weight_bits}")
    w32 = np.asarray(w).astype(np.int32)          # int32 ops below wrap exactly like Lava's
    if mode == "inhibitory":
        w32 = -w32
    w32 = np.clip(w32, -256 if mode == "mixed" else 0, 255).astype(np.int32)
    w32 = (w32 >> drop) << drop
    if mode == "inhibitory":
        w32 = -w32
    return w32.astype(np.int64)


def dense_output(acc: np.ndarray, weight_exp: np.ndarray) -> np.ndarray:
    """Dense's buffered output from the summed weighted input ``acc`` (N, B).

    The exponent scales the sum, not each weight (floor for negative exponents); the result
    is what arrives through Lava's int32 Dense->LIF channel.
    """
    acc = np.asarray(acc, dtype=np.int64)
    exp = np.asarray(weight_exp, dtype=np.int64)[:, None]
    shifted = np.where(exp > 0, acc << np.maximum(exp, 0), acc >> np.maximum(-exp, 0))
    return wrap_int32(shifted)


def init_state(params: Mapping[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
    """Initial u and v, (N, batch) int64, from ``u_init`` / ``v_init``."""
    n = len(params["du"])
    return {k: np.repeat(np.asarray(params[f"{k}_init"], dtype=np.int64).reshape(n, 1), batch, axis=1)
            for k in ("u", "v")}


def _decay(x: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """x * factor / 4096 rounded toward zero (Lava: sign(p) * (|p| >> 12))."""
    p = x * factor
    return np.sign(p) * (np.abs(p) >> _DECAY_SHIFT)


def _col(params: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    return np.asarray(params[name], dtype=np.int64)[:, None]


def bias(params: Mapping[str, np.ndarray]) -> np.ndarray:
    """Effective bias (N, 1), int32 like Lava's: mantissa << exp, or >> -exp (floor)."""
    mant, exp = _col(params, "bias_mant"), _col(params, "bias_exp")
    return wrap_int32(np.where(exp >= 0, mant << np.maximum(exp, 0), mant >> np.maximum(-exp, 0)))


def step(params: Mapping[str, np.ndarray], state: Mapping[str, np.ndarray],
         a_in: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One ``PyLifModelBitAcc`` step for (N, B) neurons; ``a_in`` is this step's Dense output.

    Returns the new {"u", "v"} and the boolean spikes; the inputs are not modified.
    """
    u, v = state["u"], state["v"]
    a = wrap_int32(np.asarray(a_in, dtype=np.int64))                 # int32 channel sum
    u_new = wrap_int32(_decay(u, 4096 - (_col(params, "du") + 1)) + (a << ACT_SHIFT))
    # One-shot wrap: only one correction, so +2**23 stays and -2**23 becomes +2**23.
    u_new = np.where(u_new > _UV_MAX, u_new - 2 * _UV_MAX,
                     np.where(u_new <= -_UV_MAX, u_new + 2 * _UV_MAX, u_new))
    v_new = wrap_int32(_decay(v, 4096 - _col(params, "dv")) + u_new + bias(params))
    v_new = np.clip(v_new, -V_LIMIT, V_LIMIT)
    spikes = v_new > (_col(params, "vth") << ACT_SHIFT)
    return {"u": u_new, "v": np.where(spikes, 0, v_new)}, spikes


class LifStepper:
    """`dense_output` + `step` for a whole netlist, fast: constants precomputed once, and the int32
    wraps skipped only where bounds prove them no-ops (|acc| <= acc_bound, u and v ranges). When
    no wrap is needed every value fits int32, so the update runs in int32 (half the memory
    traffic), else in int64; the decay products always take int64. The common IF update (no
    wraps, no decay) runs in place on preallocated buffers: a tick of a small net costs a few
    array calls, not a few allocations each.

    Same integers as `step` (tested against it), on numpy or torch (`xp`, neurocomp.arrays), never
    relying on integer overflow. Batch-major: acc, u, v are (B, N); acc arrives as `self.dtype`.
    """

    def __init__(self, params: Mapping[str, np.ndarray], batch: int, acc_bound: int, xp) -> None:
        row = lambda k: np.asarray(params[k], dtype=np.int64)  # noqa: E731
        exp = row("weight_exp")
        left, right = np.clip(exp, 0, 63), np.clip(-exp, 0, 63)
        shifts = np.unique(np.stack([left, right], axis=1), axis=0)
        a_bound = max(((int(acc_bound) << int(l)) >> int(r) for l, r in shifts), default=0)  # Python ints: no overflow
        fu, fv, b = 4096 - (row("du") + 1), 4096 - row("dv"), bias(params)[:, 0]
        cur_bound = (2 ** 31 if fu.any() else 0) + (min(a_bound, 2 ** 31) << ACT_SHIFT)
        v_bound = max(int(np.abs(row("v_init")).max(initial=0)), V_LIMIT) + min(cur_bound, 2 ** 31) \
            + int(np.abs(b).max(initial=0))
        self.wrap_a, self.wrap_u, self.wrap_v = a_bound >= 2 ** 31, cur_bound >= 2 ** 31, v_bound >= 2 ** 31
        self.wrap_once = cur_bound >= _UV_MAX                       # else -2**23 < cur < 2**23 already
        narrow = acc_bound < 2 ** 31 and not (self.wrap_a or self.wrap_u or self.wrap_v)
        self.xp, self.dtype = xp, xp.int32 if narrow else xp.int64
        put = lambda a: xp.cast(xp.asarray(a), self.dtype)  # noqa: E731
        uniform = (exp == exp.flat[0]).all() if exp.size else True
        self.left, self.right = (int(left[0]), int(right[0])) if uniform and exp.size else (0, 0)   # one of the two is 0
        self.per_neuron = None if uniform else (xp.asarray(exp > 0), put(left), put(right))
        self.fu = xp.asarray(fu) if fu.any() else None            # du = 4095 clears u each step
        self.fv = xp.asarray(fv) if (fv != 4096).any() else None   # dv = 0: no leak
        self.bias = put(b) if b.any() else None
        self.two_m, self.v_limit = put(2 * _UV_MAX), xp.scalar(V_LIMIT, self.dtype)
        vth = row("vth") << ACT_SHIFT
        # v > limit > vth spikes and resets whether clipped to the limit or not: the upper clip never shows
        self.v_top = None if (vth < V_LIMIT).all() else self.v_limit
        self.vth = put(vth)
        state = init_state(params, batch)
        self.u, self.v = put(state["u"].T.copy()), put(state["v"].T.copy())
        self.spikes = xp.zeros(tuple(self.v.shape), bool)
        self.u_next = xp.zeros(tuple(self.u.shape), self.dtype)   # u is written here (or a wrap's new array)

    def __call__(self, acc, rng: np.random.Generator | None = None):
        """One step from the summed weighted input acc (B, N), which it overwrites; returns the
        spikes (B, N) bool, valid until the next step."""
        xp, a = self.xp, acc
        decayed = None if self.fu is None else _trunc_decay(self.u, self.fu)   # before u_next (maybe self.u) changes
        if self.left:
            a <<= self.left
        if self.right:
            a >>= self.right
        if self.per_neuron is not None:
            pos, left, right = self.per_neuron
            a = xp.where(pos, a << left, a >> right)
        if self.wrap_a:
            a = _wrap(a)
        u = xp.lshift(a, ACT_SHIFT, out=self.u_next)
        if decayed is not None:
            u += decayed
        if self.wrap_u:
            u = _wrap(u)
        if self.wrap_once:   # arithmetic, not where(): several times faster in numpy
            u = u - (u > _UV_MAX) * self.two_m + (u <= -_UV_MAX) * self.two_m
        if self.fv is None:
            v = self.v
            v += u
        else:
            v = xp.cast(_trunc_decay(xp.cast(self.v, xp.int64), self.fv), self.dtype) + u
        if self.bias is not None:
            v += self.bias
        if self.wrap_v:
            v = _wrap(v)
        xp.clamp_(v, -self.v_limit, self.v_top)
        spikes = xp.greater(v, self.vth, out=self.spikes)
        xp.zero_where(v, spikes)
        self.u, self.v = u, v
        return spikes

    def potential(self):
        """v (B, N) in graph units (64 per unit in Lava's v), as float."""
        return self.xp.cast(self.v, self.xp.float64) / float(1 << ACT_SHIFT)


def _wrap(x):
    """wrap_int32 with operators only (works on numpy arrays and torch tensors)."""
    return ((x + 2 ** 31) & (2 ** 32 - 1)) - 2 ** 31


def _trunc_decay(x, factor):
    """x * factor / 4096 rounded toward zero: a negative product gets 4095 added before the floor shift."""
    p = x * factor
    return (p + ((p >> 63) & 4095)) >> _DECAY_SHIFT
