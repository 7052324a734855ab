"""Quantise: float SNN Graph + target -> integer Graph plus per-layer target neuron tables.

Each layer gets one scale 2^E (float value of an integer unit of membrane potential).
Weights become round(w / 2^e) per weighted op, thresholds, biases and initial
potentials round(x / 2^E). Per op, e is the power of two that fits when it represents
the weights exactly (an integer-valued network stays exact), else the real exponent
that puts the largest |w| on the target's largest weight: the whole mantissa (a
power of two wastes up to one bit, 3 dB on average). The quantised Graph is itself a Graph, so the
reference backend measures exactly what the chip computes. The target's hooks
set the ranges, cluster weights (TrueNorth: <= 4 levels per neuron) and turn
integer neuron parameters into its own registers.
"""
from neurocomp.quantize.network import quantize, verify_quantized
from neurocomp.quantize.qnetwork import QLayer, QNetwork
from neurocomp.quantize.steps import stored_signs

__all__ = ["QLayer", "QNetwork", "quantize", "stored_signs", "verify_quantized"]
