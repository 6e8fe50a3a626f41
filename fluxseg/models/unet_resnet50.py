"""U-Net decoder on a Keras ResNet50 encoder (SPEC S0b).

The encoder yields named feature maps; the decoder only sees a list of
(skip name, channels) stages, so it would serve any encoder that taps its
features by name.

Each stage: ConvTranspose 2x2 stride 2, concatenate [upsampled, skip], two
3x3 ReLU convs (pad 1). The seed's four stages end at conv1_relu, i.e. half
resolution (128x128 for 256x256; 40,969,985 parameters with one output
channel) — kept as `full_resolution=False`. By default a fifth stage without
skip brings the mask to the input's own size.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from fluxseg.models import layers
from fluxseg.models.layers import DEFAULT_OPS, Ops, tap
from fluxseg.models.resnet_keras import ResNet50Keras

# (skip feature name, decoder channels), deepest first; the bottleneck is conv5_block3_out.
RESNET50_DECODER = (
    ("conv4_block6_out", 512),
    ("conv3_block4_out", 256),
    ("conv2_block3_out", 128),
    ("conv1_relu", 64),
)


class UNetDecoder(nn.Module):
    """Consumes a dict of encoder features; returns the last decoder map.

    `stages` lists (skip name or None, channels), deepest first. When an
    encoder rounded odd sizes up (ceil), the upsampled map is one pixel larger
    than its skip and is cropped to it (top-left, which keeps alignment).
    """

    bottleneck: str
    stages: Sequence[tuple[Optional[str], int]]
    ops: Ops = DEFAULT_OPS
    dtype: Any = None

    @nn.compact
    def __call__(self, feats):
        x = feats[self.bottleneck]
        for i, (skip_name, ch) in enumerate(self.stages, start=1):
            x = self.ops.conv_transpose(ch, 2, strides=2, dtype=self.dtype, name=f"up{i}_upconv")(x)
            if skip_name is not None:
                skip = feats[skip_name]
                x = x[:, : skip.shape[1], : skip.shape[2]]
                x = jnp.concatenate([x, skip.astype(x.dtype)], axis=-1)
            for j in (1, 2):
                x = nn.relu(layers.conv(self.ops, ch, 3, padding=1, dtype=self.dtype, name=f"up{i}_conv{j}")(x))
            x = tap(self, f"up{i}", x)
        return x


class UNetResNet50(nn.Module):
    """Input [N, H, W, 3] (any H, W >= 32, "caffe"-preprocessed for Keras weights).

    Output logits [N, H, W, num_classes] (full resolution) or
    [N, ceil(H/2), ceil(W/2), num_classes] with `full_resolution=False`.
    num_classes=1 is a binary mask (sigmoid in the loss), more is softmax.
    """

    num_classes: int = 1
    full_resolution: bool = True
    full_resolution_channels: int = 32
    bn_axis_name: Optional[str] = None
    ops: Ops = DEFAULT_OPS
    dtype: Any = None

    @nn.compact
    def __call__(self, x, train: bool = False):
        h, w = x.shape[1:3]
        encoder = ResNet50Keras(include_top=False, bn_axis_name=self.bn_axis_name, ops=self.ops, dtype=self.dtype, name="encoder")
        feats = encoder(x, train, return_features=True)
        stages = list(RESNET50_DECODER)
        if self.full_resolution:
            stages.append((None, self.full_resolution_channels))
        x = UNetDecoder("conv5_block3_out", tuple(stages), self.ops, self.dtype, name="decoder")(feats)
        if self.full_resolution:
            x = x[:, :h, :w]
        return tap(self, "logits", layers.conv(self.ops, self.num_classes, 1, dtype=self.dtype, name="head")(x))
