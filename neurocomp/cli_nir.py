"""The command line's options for reading a NIR file where its meaning is open, and writing one (docs/NIR.md).

The choices mirror neurocomp.frontend.nirgraph's, which is not imported here so that `neurocomp --help` stays fast
(tests/test_cli_output.py holds them equal).
"""
from __future__ import annotations

import argparse
from typing import Any, Callable

IF_GAINS, INTEGRATORS, BIAS_TIMINGS = ("auto", "nir", "step"), ("auto", "euler", "exp"), ("held", "early")
LIF_RS = ("auto", "tau/dt", "1")   # how export writes a LIF's gain
READING = ("dt", "if_gain", "integrator", "bias_timing")


def add_options(p: argparse.ArgumentParser, dt_type: Callable[[str], float]) -> None:
    """--dt and the choices a NIR file leaves open; neurocomp refuses such a file until told."""
    p.add_argument("--dt", type=dt_type, default=1e-3, help="time step for NIR models, in the NIR graph's time unit")
    p.add_argument("--if-gain", choices=IF_GAINS, default="auto",
                   help="an IF's r other than 1 or 1/dt: 'nir' = v += dt*r*I (NIR's equation), 'step' = v += r*I")
    p.add_argument("--integrator", choices=INTEGRATORS, default="auto",
                   help="LIF steps: 'euler' (forward Euler; 'auto' refuses Rockpool's convention) or 'exp' (exact, "
                        "as Sinabs steps)")
    p.add_argument("--bias-timing", choices=BIAS_TIMINGS, default="held",
                   help="'held': a layer's bias starts with its input, as in NIR (refused where that cannot be exact); "
                        "'early': biases act from tick 0, a layer L deep integrating its bias alone for L ticks")


def reading(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed options as load_model's keyword arguments."""
    return {name: getattr(args, name) for name in READING}
