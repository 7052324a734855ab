"""Average pooling in training, composed into the weighted op after it, as the chip computes it.

On chip an average pool of a spike map is a SumPool2d whose 1 / area folds into the next weighted op, and
neurocomp.ir.fold composes SumPool2d x Conv2d into one Conv2d before quantising, so the integers the cores
hold are the composed ones: each tap of W spread over its pool window, times 1 / area. Training therefore
builds that composed op from the trainable W (differentiably, pool by pool as `fold._pool_conv` does) and
projects it onto the target's weight set; the exported Graph holds it as a plain Conv2d or Affine over the
unpooled map, which the compiler keeps exactly. A Linear after pools and a flatten is the same composition
with W read as a kernel the size of the pooled map (rows and columns a pool drops get weight 0).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from neurocomp.convert.ann import Pool
from neurocomp.errors import UserError

Window = tuple[tuple[int, int], tuple[int, int]]   # (kernel, stride)


def windows(pools: list[Pool], weighted_name: str, padded_conv: bool) -> tuple[Window, ...]:
    """The (kernel, stride) of each average pool before the weighted op; one line for what cannot be composed."""
    for p in pools:
        if p.kind != "avg":
            raise UserError(f"{p.name}: {p.kind} pool is not supported in training yet (train takes average pooling, "
                            "Conv2d/Linear + BatchNorm + ReLU layers and flatten); use average pooling or a strided convolution")
        if any(p.padding):
            raise UserError(f"{p.name}: a padded average pool is not supported in training (its edge windows average "
                            "fewer inputs than the 1 / area the chip folds); pad the map before the pool instead")
    if pools and padded_conv:
        raise UserError(f"{weighted_name}: a padded convolution after average pool {pools[-1].name} is not supported "
                        "in training (its padding pads the pooled map, which the composed op cannot); use padding 0")
    return tuple((p.kernel, p.stride) for p in pools)


def pooled_size(size: tuple[int, int], pools: tuple[Window, ...]) -> tuple[int, int]:
    for kernel, stride in pools:
        size = tuple((n - k) // s + 1 for n, k, s in zip(size, kernel, stride))
    return size


def spread(w: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int]) -> torch.Tensor:
    """A (out, in, kh, kw) kernel read after a pool -> the kernel read before it: each tap spread over its
    window times 1 / area (a transposed convolution with a constant kernel, as fold._pool_conv)."""
    out, cin, kh, kw = w.shape
    box = torch.full((1, 1) + tuple(kernel), 1.0 / (kernel[0] * kernel[1]), dtype=w.dtype)
    k = F.conv_transpose2d(w.reshape(out * cin, 1, kh, kw), box, stride=tuple(stride))
    return k.reshape(out, cin, *k.shape[-2:])


def composed_stride(stride: tuple[int, int], pools: tuple[Window, ...]) -> tuple[int, int]:
    """The stride of pools then a conv of `stride`, over the unpooled map: the product of all strides."""
    for _, s in pools:
        stride = (stride[0] * s[0], stride[1] * s[1])
    return stride


def compose_conv(w: torch.Tensor, pools: tuple[Window, ...]) -> torch.Tensor:
    """Pools then an unpadded conv's weight -> the one conv's weight over the unpooled map (the last pool folds
    first; its stride: `composed_stride`)."""
    for kernel, s in reversed(pools):
        w = spread(w, kernel, s)
    return w


def compose_linear(w: torch.Tensor, in_shape: tuple[int, int, int], pools: tuple[Window, ...]) -> torch.Tensor:
    """Pools, flatten, Linear -> one Linear over the flattened unpooled (C, H, W) map."""
    c, h, wd = in_shape
    kernel = compose_conv(w.reshape(len(w), c, *pooled_size((h, wd), pools)), pools)
    full = F.pad(kernel, (0, wd - kernel.shape[-1], 0, h - kernel.shape[-2]))
    return full.reshape(len(w), -1)
