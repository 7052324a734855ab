"""neurocomp: a deployment compiler for spiking neural networks on neuromorphic many-core chips."""

__version__ = "0.1.0"
