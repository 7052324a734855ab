"""SiamFC (Bertinetto et al. 2016): AlexNet-style Siamese backbone plus cross-correlation head.

Two configurations (SIAMSNN.md §1.1):

* ``full``: the published network, 127/255 crops, 6x6 / 22x22 embeddings, 17x17 score map.
* ``small``: the same seven layers (conv1 stride 2, two 3x3/2 max-pools, total stride 8,
  no padding, grouped conv2/4/5, BN+ReLU on conv1-4, signed conv5) with 1/4 of the
  channels, 5x5 conv1 / 3x3 conv2 kernels and 97/193 crops (4x4 / 16x16 embeddings,
  13x13 score map), so it trains on two CPU cores in minutes. With this layer stack the
  receptive field is at least 71 px (the three 3x3 layers after pool2 alone add 48), so
  63/127 crops cannot work; the smaller kernels cut it from 87 to 73 px, and 97/193 is
  the smallest near-2:1 crop pair that every layer tiles exactly with a 4x4 exemplar
  embedding (a 2-D kernel with context, as in the full net).

No padding anywhere: the score map stays translation-equivariant, which the tracker's
displacement maths (tracker.py) relies on.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

POOL = 3  # max-pool kernel; stride 2
GROUPS = (1, 2, 1, 2, 2)  # conv1..conv5, as in the released AlexNet SiamFC


@dataclass(frozen=True)
class SiamConfig:
    """Geometry and width of one SiamFC variant; everything else is derived."""

    name: str
    exemplar_size: int
    search_size: int
    channels: tuple[int, int, int, int, int]
    kernels: tuple[int, int, int, int, int]
    out_scale: float = 0.001
    label_radius: float = 16.0  # px in the search crop; +1 labels within it (§1.4)
    conv_strides: tuple[int, int, int, int, int] = (2, 1, 1, 1, 1)
    pools: bool = True  # 3x3/2 max-pools after conv1 and conv2 (SiamFC); False: strides do it all
    groups: tuple[int, int, int, int, int] = GROUPS  # conv1..conv5 (models/native.py reshapes them for a target)

    @property
    def stride(self) -> int:
        """Total stride: conv1 /2, pool1 /2, pool2 /2 for SiamFC (8)."""
        return int(np.prod([s for _, s in self._layers()]))

    @property
    def train_search_size(self) -> int:
        """Search crop used in training: 255 - 2*8 = 239 for ``full`` (§1.4)."""
        return self.search_size - 2 * self.stride

    def embed_size(self, crop: int) -> int:
        """Side of the embedding of a ``crop`` x ``crop`` image; exact tiling is checked."""
        n = crop
        for k, s in self._layers():
            if (n - k) % s:
                raise ValueError(f"{self.name}: crop {crop} does not tile layer (k={k}, s={s}) at size {n}")
            n = (n - k) // s + 1
        return n

    def score_size(self, search: int | None = None) -> int:
        return self.embed_size(search or self.search_size) - self.embed_size(self.exemplar_size) + 1

    def _layers(self) -> list[tuple[int, int]]:
        convs = list(zip(self.kernels, self.conv_strides))
        if not self.pools:
            return convs
        return convs[:1] + [(POOL, 2)] + convs[1:2] + [(POOL, 2)] + convs[2:]

    def to_json(self) -> dict:
        return asdict(self)


CONFIGS = {
    "full": SiamConfig("full", 127, 255, (96, 256, 384, 384, 256), (11, 5, 3, 3, 3)),
    # out_scale x9: a 4x4x64 correlation sums 9x fewer terms than 6x6x256, so the logits get
    # the full net's range; only the loss scale changes, not the arg-max (§1.2). With 0.001
    # the balanced loss barely moved in a CPU budget (0.66 vs 0.56 after 1,152 pairs).
    "small": SiamConfig("small", 97, 193, (24, 64, 96, 96, 64), (5, 3, 3, 3, 3), out_scale=0.01),
    # Sized for TrueNorth: strided convs instead of pools keep every fan-in <= 9 x 16 axons (a
    # folded 3x3/2 pool would make conv2 a 7x7 kernel), total stride 4, 3x3 / 11x11
    # embeddings, 9x9 score map; ~22k neurons in the search branch instead of ~430k.
    "micro": SiamConfig("micro", 41, 73, (8, 16, 16, 16, 16), (5, 3, 3, 3, 3), out_scale=0.05,
                        label_radius=8.0, conv_strides=(2, 2, 1, 1, 1), pools=False),
    # micro's geometry at twice its width (~41k neurons per search branch): the larger core-native tracker.
    "mini": SiamConfig("mini", 41, 73, (16, 32, 32, 32, 32), (5, 3, 3, 3, 3), out_scale=0.025,
                       label_radius=8.0, conv_strides=(2, 2, 1, 1, 1), pools=False),
    # micro with a 3x3 conv1 (exemplar 39, search 71, the same 9x9 score map): a TrueNorth core takes 6 conv1
    # positions with paired axons instead of 2, so its three search scales fit one chip with trinary weights.
    "micro3": SiamConfig("micro3", 39, 71, (8, 16, 16, 16, 16), (3, 3, 3, 3, 3), out_scale=0.05,
                         label_radius=8.0, conv_strides=(2, 2, 1, 1, 1), pools=False),
    # micro3 twice as wide in conv1-4 with conv2-4 in 16 groups (1-2 input channels each): each input reaches fewer
    # TrueNorth cores, so it needs fewer copies -- about 0.02 cores per neuron.
    "micro3g": SiamConfig("micro3g", 39, 71, (16, 32, 32, 32, 16), (3, 3, 3, 3, 3), out_scale=0.05,
                          label_radius=8.0, conv_strides=(2, 2, 1, 1, 1), pools=False, groups=(1, 16, 16, 16, 2)),
    # The paper-size tracker in TrueNorth's native shape (compile-scale runs; not trained here): SiamFC's crops and
    # channels, 3x3 convs whose strides replace the pools, every conv after the first reading 2 or 3 channels per
    # group (fan-in 18-27): ~3.1 M neurons in the search branch against `full`'s 3.3 M. Its total stride is 16, not 8,
    # so the exemplar embeds to 5x5 (a correlation part then reads a channel's 25-49 taps, within half a core's
    # axons) and the score map is 9x9, not 17x17.
    "full3g": SiamConfig("full3g", 127, 255, (96, 256, 384, 384, 256), (3, 3, 3, 3, 3), label_radius=16.0,
                         conv_strides=(2, 2, 2, 2, 1), pools=False, groups=(1, 32, 128, 192, 128)),
}


def _conv_bn_relu(cin: int, cout: int, k: int, stride: int, groups: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride, groups=groups),
            nn.BatchNorm2d(cout, eps=1e-6, momentum=0.05), nn.ReLU(inplace=True)]


class SiamFC(nn.Module):
    """phi(z) * phi(x) * out_scale; ``backbone`` is a plain nn.Sequential for the converter."""

    def __init__(self, config: SiamConfig) -> None:
        super().__init__()
        self.config = config
        c, k, g, s = (3, *config.channels), config.kernels, config.groups, config.conv_strides
        pool = [nn.MaxPool2d(POOL, 2)] if config.pools else []
        self.backbone = nn.Sequential(
            *_conv_bn_relu(c[0], c[1], k[0], s[0], g[0]), *pool,
            *_conv_bn_relu(c[1], c[2], k[1], s[1], g[1]), *pool,
            *_conv_bn_relu(c[2], c[3], k[2], s[2], g[2]),
            *_conv_bn_relu(c[3], c[4], k[3], s[3], g[3]),
            nn.Conv2d(c[4], c[5], k[4], s[4], groups=g[4]),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        """Kaiming fan-out init as siamfc-pytorch; BN starts as identity."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) raw 0-255 pixels -> (N, C, h, w) signed conv5 features."""
        return self.backbone(x)

    def head(self, kz: torch.Tensor, kx: torch.Tensor) -> torch.Tensor:
        """Cross-correlation of exemplar embeddings kz (nz, C, h, w) over search embeddings
        kx (nx, C, H, W), nx a multiple of nz (search i pairs with exemplar i mod nz):
        one grouped conv with the exemplars as weights -> (nx, 1, H-h+1, W-w+1)."""
        nz, nx = kz.shape[0], kx.shape[0]
        if nx % nz:
            raise ValueError(f"{nx} search embeddings for {nz} exemplars")
        x = kx.reshape(nx // nz, nz * kx.shape[1], *kx.shape[2:])
        out = F.conv2d(x, kz, groups=nz)
        return out.reshape(nx, 1, *out.shape[2:]) * self.config.out_scale

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(z), self.embed(x))


def build(config: str) -> SiamFC:
    if config not in CONFIGS:
        raise ValueError(f"unknown SiamFC config {config!r}; expected one of {sorted(CONFIGS)}")
    return SiamFC(CONFIGS[config])
