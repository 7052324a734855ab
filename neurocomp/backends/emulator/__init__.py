"""Integer-exact emulator of a compiled Program (neurocomp.backends.emulator.loop)."""
from neurocomp.backends.emulator.loop import COUNTERS, Prepared, RunResult, prepare, run

__all__ = ["COUNTERS", "Prepared", "RunResult", "prepare", "run"]
