"""VGG16 (Simonyan & Zisserman 2015) with the Keras Applications layer names.

Parameters are named block1_conv1 ... block5_conv3, fc1, fc2, predictions, so
Keras HDF5 files map one-to-one; torchvision's `features.N` / `classifier.N`
map by position (see `fluxseg.weights`).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn

from fluxseg.models import layers
from fluxseg.models.layers import DEFAULT_OPS, Ops, tap
from fluxseg.models.parts import Part

# (block, number of 3x3 convs, channels)
VGG16_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))


class VGG16(nn.Module):
    """VGG16 classifier, or its convolutional base with `include_top=False`.

    Input [N, H, W, 3] (H, W >= 32). The base is 13 3x3 convs (pad 1) + ReLU
    and five 2x2 max pools, giving [N, H//32, W//32, 512]. With the top, that
    map is average-pooled to 7x7 first (identity at 224x224, as torchvision's
    AdaptiveAvgPool2d), flattened in H, W, C order (Keras' Flatten on NHWC),
    then fc1, fc2 (4096, ReLU, dropout 0.5 as in the paper and torchvision;
    Keras has no dropout, which changes nothing at inference) and predictions.

    Named maps: every conv and pool output, under its Keras name;
    `return_features=True` returns them as a dict, which is what models built
    on this one read (fluxseg.models.encoders). They are also tapped under the
    same names, with fc1, fc2 and predictions, for inspection. `first_pad`
    and `pool_ceil` reproduce the original FCN's Caffe VGG16 (pad 100,
    ceil-mode pools).
    """

    num_classes: int = 1000
    include_top: bool = True
    dropout_rate: float = 0.5
    first_pad: int = 1
    pool_ceil: bool = False
    ops: Ops = DEFAULT_OPS
    dtype: Any = None

    def pretrained_parts(self) -> tuple[Part, ...]:
        return (Part("vgg16", include_top=self.include_top),)

    def pyramid(self) -> tuple[tuple[str, int, int], ...]:
        """The encoder contract (fluxseg.models.encoders): (name, stride, channels).

        Pools round down, so decoders on VGG16 need sides that are multiples of 32.
        """
        last_convs = [(f"block{b}_conv{n}", 2 ** (b - 1), ch) for b, n, ch in VGG16_BLOCKS]
        return (*last_convs, ("block5_pool", 32, VGG16_BLOCKS[-1][2]))

    @nn.compact
    def __call__(self, x, train: bool = False, return_features: bool = False):
        feats = {}
        for block, n_convs, ch in VGG16_BLOCKS:
            for i in range(1, n_convs + 1):
                name = f"block{block}_conv{i}"
                pad = self.first_pad if name == "block1_conv1" else 1
                x = layers.conv(self.ops, ch, 3, padding=pad, dtype=self.dtype, name=name)(x)
                x = feats[name] = tap(self, name, nn.relu(x))
            name = f"block{block}_pool"
            x = feats[name] = tap(self, name, self.ops.max_pool(x, 2, 2, ceil_mode=self.pool_ceil))
        if return_features:
            return feats
        if not self.include_top:
            return x
        x = layers.adaptive_avg_pool(x, (7, 7))
        x = x.reshape(x.shape[0], -1)
        for name in ("fc1", "fc2"):
            x = tap(self, name, nn.relu(self.ops.dense(4096, dtype=self.dtype, name=name)(x)))
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = self.ops.dense(self.num_classes, dtype=self.dtype, name="predictions")(x)
        return tap(self, "predictions", x)
