"""ResNet-18/34/50/101 in the torchvision layout (He et al. 2016, v1.5).

v1.5: in bottleneck blocks the stride sits on the 3x3 conv, not the first 1x1.
Convolutions have no bias; BatchNorm epsilon 1e-5; PyTorch's BN momentum 0.1
is Flax momentum 0.9 (Flax keeps `momentum` of the old statistic, PyTorch
mixes in `momentum` of the new one). Parameter names follow torchvision's
state dict with '.' -> '_' at block level: conv1, bn1, layer1_0/{conv1, bn1,
conv2, bn2, downsample_conv, downsample_bn}, ..., fc.
"""
from __future__ import annotations

import functools
from typing import Any, Optional, Sequence

import flax.linen as nn

from fluxseg.models import layers
from fluxseg.models.layers import DEFAULT_OPS, Ops, tap
from fluxseg.models.parts import Part

# torchvision: kaiming_normal_(mode='fan_out', nonlinearity='relu')
conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


class BasicBlock(nn.Module):
    planes: int
    stride: int
    norm: Any
    ops: Ops
    dtype: Any = None
    expansion = 1

    @nn.compact
    def __call__(self, x):
        conv = functools.partial(layers.conv, self.ops, use_bias=False, kernel_init=conv_init, dtype=self.dtype)
        y = nn.relu(self.norm(name="bn1")(conv(self.planes, 3, self.stride, 1, name="conv1")(x)))
        y = self.norm(name="bn2")(conv(self.planes, 3, 1, 1, name="conv2")(y))
        return nn.relu(y + _shortcut(self, x, conv))


class Bottleneck(nn.Module):
    planes: int
    stride: int
    norm: Any
    ops: Ops
    dtype: Any = None
    expansion = 4

    @nn.compact
    def __call__(self, x):
        conv = functools.partial(layers.conv, self.ops, use_bias=False, kernel_init=conv_init, dtype=self.dtype)
        y = nn.relu(self.norm(name="bn1")(conv(self.planes, 1, name="conv1")(x)))
        y = nn.relu(self.norm(name="bn2")(conv(self.planes, 3, self.stride, 1, name="conv2")(y)))
        y = self.norm(name="bn3")(conv(self.planes * 4, 1, name="conv3")(y))
        return nn.relu(y + _shortcut(self, x, conv))


def _shortcut(block, x, conv):
    out_ch = block.planes * block.expansion
    if block.stride == 1 and x.shape[-1] == out_ch:
        return x
    return block.norm(name="downsample_bn")(conv(out_ch, 1, block.stride, name="downsample_conv")(x))


class ResNet(nn.Module):
    """torchvision-layout ResNet. Input [N, H, W, 3]; any H, W >= 32.

    Spatial sizes follow PyTorch: each stride-2 stage maps n -> ceil(n / 2),
    so layer4 is [N, ceil(H/32), ceil(W/32), 8 * width * expansion].
    Named maps: relu (stride 2), layer1 (4), layer2 (8), layer3 (16), layer4
    (32): `return_features=True` returns them as a dict, which is what models
    built on this one read (fluxseg.models.encoders); they are also tapped
    under the same names, with fc, for inspection. `include_top=False`
    returns layer4.
    """

    stage_sizes: Sequence[int]
    block: Any
    num_classes: int = 1000
    width: int = 64
    include_top: bool = True
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    bn_axis_name: Optional[str] = None
    ops: Ops = DEFAULT_OPS
    dtype: Any = None

    def pretrained_parts(self) -> tuple[Part, ...]:
        # torchvision publishes the four standard depths, at width 64 only
        # (another width fails the loader's shape check, naming the leaf).
        name = DEPTHS.get((tuple(self.stage_sizes), self.block))
        return (Part(name, include_top=self.include_top),) if name else ()

    def pyramid(self) -> tuple[tuple[str, int, int], ...]:
        """The encoder contract (fluxseg.models.encoders): (name, stride, channels)."""
        stages = tuple((f"layer{i + 1}", 2 ** (i + 2), self.width * 2**i * self.block.expansion)
                       for i in range(len(self.stage_sizes)))
        return (("relu", 2, self.width), *stages)

    @nn.compact
    def __call__(self, x, train: bool = False, return_features: bool = False):
        norm = layers.batch_norm(self, train)
        x = layers.conv(self.ops, self.width, 7, 2, 3, use_bias=False, kernel_init=conv_init, dtype=self.dtype, name="conv1")(x)
        feats = {"relu": tap(self, "relu", nn.relu(norm(name="bn1")(x)))}
        x = self.ops.max_pool(feats["relu"], 3, 2, padding=1)
        for i, n_blocks in enumerate(self.stage_sizes):
            for j in range(n_blocks):
                stride = 2 if i > 0 and j == 0 else 1
                x = self.block(self.width * 2**i, stride, norm, self.ops, self.dtype, name=f"layer{i + 1}_{j}")(x)
            x = feats[f"layer{i + 1}"] = tap(self, f"layer{i + 1}", x)
        if return_features:
            return feats
        if not self.include_top:
            return x
        x = layers.global_avg_pool(x)
        return tap(self, "fc", self.ops.dense(self.num_classes, dtype=self.dtype, name="fc")(x))


# (blocks per stage, block) of each published depth, by its torchvision name.
DEPTHS = {((2, 2, 2, 2), BasicBlock): "resnet18", ((3, 4, 6, 3), BasicBlock): "resnet34",
          ((3, 4, 6, 3), Bottleneck): "resnet50", ((3, 4, 23, 3), Bottleneck): "resnet101"}
ResNet18 = functools.partial(ResNet, stage_sizes=(2, 2, 2, 2), block=BasicBlock)
ResNet34 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block=BasicBlock)
ResNet50 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block=Bottleneck)
ResNet101 = functools.partial(ResNet, stage_sizes=(3, 4, 23, 3), block=Bottleneck)
