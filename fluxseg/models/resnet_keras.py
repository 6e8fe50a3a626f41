"""ResNet50 in the Keras Applications layout (v1, as `keras.applications.ResNet50`).

Differences from torchvision's v1.5 that matter for converted weights: the
stride of a downsampling block sits on its first 1x1 conv, convolutions have
biases, BatchNorm epsilon is 1.001e-5 (momentum 0.99), and the stem pads with
ZeroPadding2D before 'valid' conv and pool. Parameter names are the Keras
layer names (conv1_conv, conv1_bn, conv2_block1_0_conv, ..., predictions).
"""
from __future__ import annotations

import functools
from typing import Any, Optional

import flax.linen as nn
import jax.numpy as jnp

from fluxseg.models import layers
from fluxseg.models.layers import DEFAULT_OPS, Ops, tap
from fluxseg.models.parts import Part

# (stage name, blocks, filters, stride of the first block)
RESNET50_STAGES = (("conv2", 3, 64, 1), ("conv3", 4, 128, 2), ("conv4", 6, 256, 2), ("conv5", 3, 512, 2))

# Keras' default kernel initializer.
glorot = nn.initializers.glorot_uniform()


def _zero_pad(x, p):
    return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))


class ResNet50Keras(nn.Module):
    """Keras-layout ResNet50 v1. Input [N, H, W, 3] ("caffe"-preprocessed for Keras weights).

    Sizes: conv1 is floor((H+6-7)/2)+1 = ceil(H/2), pool1 floor((n+2-3)/2)+1,
    each later stride-2 stage ceil(n/2): conv5_block3_out is
    [N, ~H/32, ~W/32, 2048]. Named maps: conv1_relu and every `*_out` block
    output; `return_features=True` returns them as a dict, which is what
    models built on this one read (fluxseg.models.encoders). They are also
    tapped under the same names, with predictions, for inspection.
    `include_top=False` returns conv5_block3_out.
    """

    num_classes: int = 1000
    include_top: bool = True
    bn_momentum: float = 0.99
    bn_epsilon: float = 1.001e-5
    bn_axis_name: Optional[str] = None
    ops: Ops = DEFAULT_OPS
    dtype: Any = None

    def pretrained_parts(self) -> tuple[Part, ...]:
        return (Part("resnet50_keras", include_top=self.include_top),)

    def pyramid(self) -> tuple[tuple[str, int, int], ...]:
        """The encoder contract (fluxseg.models.encoders): (name, stride, channels)."""
        stages = tuple((f"{stage}_block{n}_out", 2 ** (i + 2), 4 * filters)
                       for i, (stage, n, filters, _) in enumerate(RESNET50_STAGES))
        return (("conv1_relu", 2, 64), *stages)

    @nn.compact
    def __call__(self, x, train: bool = False, return_features: bool = False):
        norm = layers.batch_norm(self, train)
        conv = functools.partial(layers.conv, self.ops, kernel_init=glorot, dtype=self.dtype)
        feats = {}
        x = conv(64, 7, 2, name="conv1_conv")(_zero_pad(x, 3))
        x = feats["conv1_relu"] = tap(self, "conv1_relu", nn.relu(norm(name="conv1_bn")(x)))
        x = self.ops.max_pool(_zero_pad(x, 1), 3, 2)
        for stage, n_blocks, filters, stride in RESNET50_STAGES:
            for i in range(1, n_blocks + 1):
                name = f"{stage}_block{i}"
                x = _block(x, filters, stride if i == 1 else 1, i == 1, name, conv, norm)
                x = feats[f"{name}_out"] = tap(self, f"{name}_out", x)
        if return_features:
            return feats
        if not self.include_top:
            return x
        x = layers.global_avg_pool(x)
        return tap(self, "predictions", self.ops.dense(self.num_classes, dtype=self.dtype, name="predictions")(x))


def _block(x, filters, stride, conv_shortcut, name, conv, norm):
    """Keras `resnet.block1`: 1x1 (stride) -> 3x3 (same) -> 1x1 (4*filters), + shortcut."""
    if conv_shortcut:
        shortcut = norm(name=f"{name}_0_bn")(conv(4 * filters, 1, stride, name=f"{name}_0_conv")(x))
    else:
        shortcut = x
    y = nn.relu(norm(name=f"{name}_1_bn")(conv(filters, 1, stride, name=f"{name}_1_conv")(x)))
    y = nn.relu(norm(name=f"{name}_2_bn")(conv(filters, 3, 1, 1, name=f"{name}_2_conv")(y)))
    y = norm(name=f"{name}_3_bn")(conv(4 * filters, 1, name=f"{name}_3_conv")(y))
    return nn.relu(shortcut + y)
