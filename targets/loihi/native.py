"""Loihi's native-shape rule (also loihi2's): one core holds the neurons that read one input set.

Weights are signed per synapse, so an input costs one axon. A neuron's fan-in must fit the
core's input axons, and the neurons that share its inputs (a conv's output channels per group
at one position, up to a core's neurons) must fit the core's synapse memory with that fan-in,
costed as the mapper costs it (mapping.axon_bits: 64-synapse chunks in 64-bit words, LOIHI.md
§2.1). A layer that fails needs more cores per input set, or does not map at all.
"""
from __future__ import annotations

import numpy as np

from neurocomp.ir.layers import Layer
from neurocomp.ir.reach import reaches
from neurocomp.native import Usage, Verdict, suggest, verdict
from neurocomp.target import TargetSpec
from neurocomp.targets.loihi.mapping import axon_bits


def bits_per_axon(neurons: int, spec: TargetSpec) -> int:
    """Synapse bits one input costs a core whose `neurons` all read it."""
    n = np.array([max(neurons, 1)])
    return int(axon_bits(n, n, spec)[0])


def native(layer: Layer, spec: TargetSpec) -> Verdict:
    rs = reaches(layer)
    axons, neurons, memory = int(spec["core.axons"]), int(spec["core.neurons"]), int(spec["core.synapse_bits"])
    fan_in = sum(r.fan_in for r in rs)
    sharing = min(r.sharing for r in rs)
    usage = (Usage("axons", fan_in, axons), Usage("neurons per input set", sharing, neurons),
             Usage("synapse memory bits", fan_in * bits_per_axon(min(sharing, neurons), spec), memory))
    r = max(rs, key=lambda p: p.fan_in)
    rest = fan_in - r.fan_in
    spatial = max(1, r.sharing * (r.conv[2] if r.conv else 1) // (r.conv[1] if r.conv else 1))

    def fits(cin: int, cout: int, g: int) -> bool:
        n = (cout // g) * spatial
        f = r.taps * (cin // g) + rest
        return f <= axons and n <= neurons and f * bits_per_axon(n, spec) <= memory

    one = r.taps + rest
    impossible = "" if one <= axons and one * bits_per_axon(1, spec) <= memory else (
        f"one input channel gives {one} inputs per neuron, over what a core can take ({axons} axons, "
        f"{memory} synapse bits); use a smaller kernel or fewer positions per channel")
    return verdict(layer, fan_in, usage, suggest(r, fits), impossible)
