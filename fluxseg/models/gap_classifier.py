"""Backbone + global average pooling + Dense (SPEC S1, "Car or Truck").

The seed puts a pretrained VGG16 base under GlobalAvgPool2D and a one-unit
sigmoid Dense; any registered backbone that returns a feature map with
`include_top=False` works here.
"""
from __future__ import annotations

from typing import Any, Optional

import flax.linen as nn
import jax

from fluxseg.models import layers
from fluxseg.models.layers import DEFAULT_OPS, Ops, tap

BACKBONES = ("vgg16", "resnet18", "resnet34", "resnet50", "resnet101", "resnet50_keras")


class GAPClassifier(nn.Module):
    """Input [N, H, W, 3]; output [N, num_classes] logits (1 = binary, sigmoid in the loss).

    The backbone's parameters sit under 'backbone'. `freeze_backbone` (the
    seed's transfer-learning setup) stops gradients into it and lists it in
    `frozen_patterns()`; its BatchNorm (if any) then stays in inference mode.
    """

    backbone: str = "vgg16"
    num_classes: int = 1
    freeze_backbone: bool = True
    bn_axis_name: Optional[str] = None
    ops: Ops = DEFAULT_OPS
    dtype: Any = None

    def frozen_patterns(self) -> tuple[str, ...]:
        return (r"^backbone/",) if self.freeze_backbone else ()

    @nn.compact
    def __call__(self, x, train: bool = False):
        from fluxseg.models import registry  # the registry imports this module

        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        kw = dict(include_top=False, ops=self.ops, dtype=self.dtype, name="backbone")
        if self.backbone != "vgg16":
            kw["bn_axis_name"] = self.bn_axis_name
        net = registry.create(self.backbone, **kw)
        x = net(x, train=train and not self.freeze_backbone)
        if self.freeze_backbone:
            x = jax.lax.stop_gradient(x)
        x = tap(self, "pooled", layers.global_avg_pool(x))
        return tap(self, "logits", self.ops.dense(self.num_classes, dtype=self.dtype, name="dense")(x))

