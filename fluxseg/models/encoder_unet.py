"""A U-Net decoder (Ronneberger et al. 2015) on any encoder.

The encoder yields its pyramid of named maps (fluxseg.models.encoders); the
decoder starts from the deepest and, for each shallower map, upsamples
(ConvTranspose 2x2 stride 2), crops to the skip (top-left: the encoder rounds
odd sides up), concatenates [upsampled, skip] and applies two 3x3 ReLU convs
(pad 1). Without `full_resolution` it stops at the finest skip; with it,
stages without a skip continue to the input's own size. The same decoder
serves every encoder, as in segmentation_models.pytorch's Unet.

`unet_resnet50` is this model on the Keras ResNet50 with decoder channels
512, 256, 128, 64 (then 32 at full resolution): 40,969,985 parameters with
one output channel and `full_resolution=False` (128x128 for 256x256 input).
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax.numpy as jnp

from fluxseg.models import encoders, layers
from fluxseg.models.layers import DEFAULT_OPS, Ops, tap
from fluxseg.models.parts import Part


class UNetDecoder(nn.Module):
    """Consumes a dict of encoder features; returns the last decoder map.

    `stages` lists (skip name or None, channels), deepest first.
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
                x = layers.crop(x, skip.shape[1:3])
                x = jnp.concatenate([x, skip.astype(x.dtype)], axis=-1)
            for j in (1, 2):
                x = nn.relu(layers.conv(self.ops, ch, 3, padding=1, dtype=self.dtype, name=f"up{i}_conv{j}")(x))
            x = tap(self, f"up{i}", x)
        return x


class EncoderUNet(nn.Module):
    """Input [N, H, W, C] (any H, W the encoder takes); output logits
    [N, H, W, num_classes] (full resolution), else at the finest skip's stride.

    decoder_channels: one per skip, deepest first (extra entries unused).
    num_classes=1 is a binary mask (sigmoid in the loss), more is softmax.
    """

    encoder: str = "resnet50_keras"
    num_classes: int = 1
    decoder_channels: Sequence[int] = (256, 128, 64, 32, 16)
    full_resolution: bool = True
    full_resolution_channels: int = 32
    bn_axis_name: Optional[str] = None
    ops: Ops = DEFAULT_OPS
    dtype: Any = None

    def _encoder(self, **kw):
        return encoders.create(self.encoder, bn_axis_name=self.bn_axis_name, ops=self.ops,
                               dtype=self.dtype, **kw)

    def pretrained_parts(self) -> tuple[Part, ...]:
        return tuple(p.under("encoder/") for p in self._encoder(parent=None).pretrained_parts())

    def _stages(self) -> tuple[str, tuple[tuple[Optional[str], int], ...]]:
        pyramid = encoders.pyramid(self._encoder(parent=None))
        *skips, bottleneck = pyramid
        skips = skips[::-1]
        if len(self.decoder_channels) < len(skips):
            raise ValueError(f"decoder_channels {tuple(self.decoder_channels)} has fewer entries "
                             f"than the {len(skips)} skips of {self.encoder}: "
                             f"{[s.name for s in skips]}")
        stages = [(s.name, ch) for s, ch in zip(skips, self.decoder_channels)]
        if self.full_resolution:  # each stage doubles the resolution
            stages += [(None, self.full_resolution_channels)] * int(math.log2(skips[-1].stride))
        return bottleneck.name, tuple(stages)

    @nn.compact
    def __call__(self, x, train: bool = False):
        h, w = x.shape[1:3]
        feats = self._encoder(name="encoder")(x, train, return_features=True)
        bottleneck, stages = self._stages()
        x = UNetDecoder(bottleneck, stages, self.ops, self.dtype, name="decoder")(feats)
        if self.full_resolution:
            x = layers.crop(x, (h, w))
        return tap(self, "logits", layers.conv(self.ops, self.num_classes, 1, dtype=self.dtype, name="head")(x))
