"""Core-native variants of CNN configs: every conv's neurons read one core's worth of inputs.

The rule, per conv in order (input channels fixed by the layer before it):
1. keep the conv's groups if the target's native check (hooks.native) accepts it;
2. else take the fewest groups that divide both its input and output channel counts and
   pass the check (fewest groups keeps the most connections);
3. else the fewest groups dividing the input channels that pass with the output channels
   rounded up to a multiple of the groups; the next conv reads the rounded count.
A conv is checked as the target sees its widest neuron: one k x k patch of its input
channels per group, output channels per group sharing that patch, weights of both signs
(trained weights have them). Pools are taken to be their own layers (a spiking max or
`pool_layers`), so they do not widen the next conv's kernel. Nothing here trains.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from neurocomp.errors import UserError
from neurocomp.ir.graph import IF, Conv2d, Graph, Input, Output
from neurocomp.ir.layers import lower
from neurocomp.models.siamfc import SiamConfig
from neurocomp.target import Target, load_target


def conv_is_native(cin: int, cout: int, kernel: int, groups: int, target: Target) -> bool:
    """The target's verdict on one neuron position of the conv (a kernel x kernel input, signed weights)."""
    signs = np.where(np.arange(cout * (cin // groups) * kernel * kernel) % 2, 1.0, -1.0)
    conv = Conv2d("conv", signs.reshape(cout, cin // groups, kernel, kernel), groups=groups)
    g = Graph((Input("x", (cin, kernel, kernel)), conv, IF("n"), Output("o")), (("x", "conv"), ("conv", "n"), ("n", "o")))
    return target.hooks.native(lower(g).layers[0], target.spec).native


def native_conv(cin: int, cout: int, kernel: int, groups: int, target: Target) -> tuple[int, int]:
    """(groups, output channels) for one conv, by the rule in the module docstring."""
    if cin % groups == 0 and cout % groups == 0 and conv_is_native(cin, cout, kernel, groups, target):
        return groups, cout
    divisors = [g for g in range(1, cin + 1) if cin % g == 0]
    for g in divisors:
        if cout % g == 0 and conv_is_native(cin, cout, kernel, g, target):
            return g, cout
    for g in divisors:
        rounded = -(-cout // g) * g
        if conv_is_native(cin, rounded, kernel, g, target):
            return g, rounded
    raise UserError(f"a {kernel}x{kernel} conv over one input channel does not fit a {target.name} core; "
                    f"use a smaller kernel")


def native_convs(in_channels: int, channels: tuple[int, ...], kernels: tuple[int, ...], groups: tuple[int, ...],
                 target: Target) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(channels, groups) of a conv stack made native conv by conv, each reading the previous one's output."""
    out_c, out_g, cin = [], [], in_channels
    for cout, k, g in zip(channels, kernels, groups):
        g, cout = native_conv(cin, cout, k, g, target)
        out_c.append(cout)
        out_g.append(g)
        cin = cout
    return tuple(out_c), tuple(out_g)


def native_config(config: SiamConfig, target: Target | str) -> SiamConfig:
    """The SiamFC config with every backbone conv native on `target` (a Target or its name / spec path)."""
    target = load_target(target) if isinstance(target, str) else target
    channels, groups = native_convs(3, config.channels, config.kernels, config.groups, target)
    return dataclasses.replace(config, name=f"{config.name}-{target.name}", channels=channels, groups=groups)
