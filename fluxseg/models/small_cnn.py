"""The small cats-vs-dogs convnet of Chollet, Deep Learning with Python §5.2/5.4.

150x150x3 -> four (3x3 valid conv + ReLU, 2x2 max pool) with 32/64/128/128
filters -> Flatten -> Dropout 0.5 -> Dense 512 ReLU -> Dense 1 (the sigmoid
lives in the loss). 3,453,121 parameters at 150x150. Layer names follow
Keras' auto-naming (conv2d, max_pooling2d, conv2d_1, ...), so the eight
"first layers" the activation plots show are tapped under those names.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn

from fluxseg.models import layers
from fluxseg.models.layers import DEFAULT_OPS, Ops, tap

FILTERS = (32, 64, 128, 128)


def _keras_name(base: str, i: int) -> str:
    return base if i == 0 else f"{base}_{i}"


class SmallCNN(nn.Module):
    """Input [N, H, W, 3] with H, W >= 76 (four valid convs and pools); output [N, num_classes]."""

    num_classes: int = 1
    dropout_rate: float = 0.5
    ops: Ops = DEFAULT_OPS
    dtype: Any = None

    @nn.compact
    def __call__(self, x, train: bool = False):
        for i, ch in enumerate(FILTERS):
            name = _keras_name("conv2d", i)
            x = tap(self, name, nn.relu(layers.conv(self.ops, ch, 3, dtype=self.dtype, name=name)(x)))
            x = tap(self, _keras_name("max_pooling2d", i), self.ops.max_pool(x, 2, 2))
        if min(x.shape[1:3]) < 1:
            raise ValueError("cnn_small needs inputs of at least 76x76 pixels")
        x = x.reshape(x.shape[0], -1)
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = nn.relu(self.ops.dense(512, dtype=self.dtype, name="dense")(x))
        return tap(self, "logits", self.ops.dense(self.num_classes, dtype=self.dtype, name="dense_1")(x))
