"""Pools as their own IF layers (ConvertOptions.pool_layers): the same ANN, a narrower fan-in after the pool."""
from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import torch
from torch import nn

from neurocomp.convert import ConvertOptions, conversion_info, convert
from neurocomp.convert.ann import forward, replace_maxpool, segments, split_pools
from neurocomp.convert.trace import ann_ops
from neurocomp.ir.layers import Layer, lower

X = np.random.default_rng(0).uniform(size=(64, 1, 23, 23))


def _alexnet_like() -> nn.Module:
    """AlexNet's conv -> ReLU -> 3x3/2 max pool -> 5x5 conv, small: the pool composes into an 11x11 window."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Conv2d(4, 5, 5),
                         nn.ReLU(), nn.Flatten(), nn.Linear(245, 3)).double().eval()


def _max_fan_in(layer: Layer) -> int:
    rows = np.arange(layer.size)
    return int(sum(np.diff(p.matrix(rows).indptr) for p in layer.projections).max())


@cache
def _convert(maxpool: str, pool_layers: bool):
    opts = ConvertOptions(maxpool=maxpool, pool_layers=pool_layers, timesteps=64, calibration_batches=1,
                          calibration_rounds=1)
    return convert(_alexnet_like(), X, input_shape=(1, 23, 23), method=opts)


@pytest.mark.parametrize("maxpool", ["avg", "spiking"])
def test_the_split_network_is_the_same_ann(maxpool: str) -> None:
    program = torch.export.export(_alexnet_like(), (torch.from_numpy(X[:1]),))
    segs, _ = replace_maxpool(segments(ann_ops(program)[0]), maxpool)
    split, notes = split_pools(segs)
    assert len(split) == len(segs) + 1 and len(notes) == 1 and notes[0].endswith("pooling as its own IF layer")
    np.testing.assert_allclose(forward(split, X)[-1], forward(segs, X)[-1], atol=1e-12)
    assert split_pools(split[2:])[0] == split[2:]  # nothing left to split


@pytest.mark.parametrize("maxpool, pool_fan_in, window_fan_in", [("avg", 9, 4 * 11 * 11), ("spiking", 5, 5 * 4 * 25)])
def test_fan_in_after_the_pool_drops_to_the_kernel(maxpool: str, pool_fan_in: int, window_fan_in: int) -> None:
    """Without: conv2 reads the pool's 11x11 window (avg) or 5 spike sources x 5x5 (max tree). With: the pool
    layer reads its 3x3 window (avg) or the pick and 4 tree levels (max); conv2 reads 4 x 5x5."""
    fused, split = lower(_convert(maxpool, False)), lower(_convert(maxpool, True))
    assert [lay.name for lay in fused.layers if lay.name.startswith("if") and "." not in lay.name] == ["if1", "if2"]
    assert _max_fan_in(fused.layer("if2")) == window_fan_in
    assert split.layer("if2").shape == (4, 11, 11) and split.layer("if3").shape == (5, 7, 7)
    assert _max_fan_in(split.layer("if2")) == pool_fan_in
    assert _max_fan_in(split.layer("if3")) == 4 * 5 * 5


@pytest.mark.parametrize("maxpool", ["avg", "spiking"])
def test_the_split_snn_still_tracks_the_ann(maxpool: str) -> None:
    info = conversion_info(_convert(maxpool, True))
    assert any("pooling as its own IF layer" in n for n in info["notes"])
    assert info["argmax_agreement"] >= 0.9
