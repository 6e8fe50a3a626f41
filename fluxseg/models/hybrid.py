"""Hybrid VGG16 -> ResNet50 classifier: one ImageNet backbone's features fed to another.

VGG16's convolutional base (frozen by default) turns the image into a
[H/32, W/32, 512] map; nearest upsampling x32 brings it back to H x W; a 1x1
conv with ReLU squeezes it to 3 channels, which the Keras ResNet50 base then
reads as an image; global average pooling, Dense 1024 ReLU, Dense 512 ReLU
and the class logits follow. With 10 classes: 40,932,045 parameters, of
which 26,164,237 trainable (the same graph in Keras).
"""
from __future__ import annotations

from typing import Any, Optional

import flax.linen as nn

from fluxseg.models import encoders, layers
from fluxseg.models.layers import DEFAULT_OPS, Ops, tap
from fluxseg.models.parts import Part


class HybridVGG16ResNet50(nn.Module):
    """Input [N, H, W, 3] with H, W multiples of 32 (224 for ImageNet weights); output [N, num_classes]."""

    num_classes: int = 10
    freeze_vgg: bool = True
    bn_axis_name: Optional[str] = None
    ops: Ops = DEFAULT_OPS
    dtype: Any = None

    # Regexes over '/'-joined parameter paths that the optimiser keeps fixed; the train
    # step differentiates only the rest, so a frozen VGG16 costs no backward pass.
    def frozen_patterns(self) -> tuple[str, ...]:
        return (r"^vgg16/",) if self.freeze_vgg else ()

    def pretrained_parts(self) -> tuple[Part, ...]:
        return (Part("vgg16", "vgg16/"), Part("resnet50_keras", "resnet50/"))

    @nn.compact
    def __call__(self, x, train: bool = False):
        h, w = x.shape[1:3]
        if h % 32 or w % 32:
            raise ValueError(
                f"hybrid_vgg16_resnet50 needs height and width that are multiples of 32 "
                f"(VGG16 pools by 32 and the x32 upsampling must give the image size back); got {h}x{w}. "
                f"Resize or crop to e.g. {32 * max(1, round(h / 32))}x{32 * max(1, round(w / 32))}."
            )
        vgg = encoders.create("vgg16", ops=self.ops, dtype=self.dtype, name="vgg16")
        x = encoders.deepest(vgg, vgg(x, train, return_features=True))
        x = layers.upsample_nearest(x, 32)
        x = tap(self, "adapter", nn.relu(layers.conv(self.ops, 3, 1, dtype=self.dtype, name="adapter")(x)))
        resnet = encoders.create("resnet50_keras", bn_axis_name=self.bn_axis_name, ops=self.ops,
                                 dtype=self.dtype, name="resnet50")
        x = encoders.deepest(resnet, resnet(x, train, return_features=True))
        x = layers.global_avg_pool(x)
        x = nn.relu(self.ops.dense(1024, dtype=self.dtype, name="fc1")(x))
        x = nn.relu(self.ops.dense(512, dtype=self.dtype, name="fc2")(x))
        return tap(self, "predictions", self.ops.dense(self.num_classes, dtype=self.dtype, name="predictions")(x))
