"""neurocomp: a deployment compiler for spiking neural networks on neuromorphic many-core chips."""
from neurocomp.api import compile, convert_ann, load
from neurocomp.program import Program
from neurocomp.runner import Result

__version__ = "0.1.0"

__all__ = ["Program", "Result", "compile", "convert_ann", "load"]
