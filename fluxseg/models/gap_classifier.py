"""Backbone + global average pooling + Dense (transfer learning, Lin et al. 2014 §3.2).

The default puts a pretrained VGG16 base under GlobalAvgPool2D and a one-unit
sigmoid Dense (a binary classifier); any encoder of fluxseg.models.encoders
works in its place.
"""
from __future__ import annotations

from typing import Any, Optional

import flax.linen as nn

from fluxseg.models import encoders, layers
from fluxseg.models.layers import DEFAULT_OPS, Ops, tap
from fluxseg.models.parts import Part

BACKBONES = tuple(encoders.ENCODERS)


class GAPClassifier(nn.Module):
    """Input [N, H, W, 3]; output [N, num_classes] logits (1 = binary, sigmoid in the loss).

    The backbone (any encoder of fluxseg.models.encoders) sits under
    'backbone'. `freeze_backbone` (feature extraction: only the head learns)
    lists it in `frozen_patterns()`, which the optimiser keeps fixed and the
    train step does not differentiate; its BatchNorm (if any) then stays in
    inference mode. The forward function is the same either way, so
    gradient-based inspection (Grad-CAM, filter ascent) reaches the backbone.
    """

    backbone: str = "vgg16"
    num_classes: int = 1
    freeze_backbone: bool = True
    bn_axis_name: Optional[str] = None
    ops: Ops = DEFAULT_OPS
    dtype: Any = None

    def _backbone(self, **kw):
        return encoders.create(self.backbone, bn_axis_name=self.bn_axis_name, ops=self.ops,
                               dtype=self.dtype, **kw)

    def frozen_patterns(self) -> tuple[str, ...]:
        return (r"^backbone/",) if self.freeze_backbone else ()

    def pretrained_parts(self) -> tuple[Part, ...]:
        return tuple(p.under("backbone/") for p in self._backbone(parent=None).pretrained_parts())

    @nn.compact
    def __call__(self, x, train: bool = False):
        backbone = self._backbone(name="backbone")
        x = encoders.deepest(backbone, backbone(x, train and not self.freeze_backbone, return_features=True))
        x = tap(self, "pooled", layers.global_avg_pool(x))
        return tap(self, "logits", self.ops.dense(self.num_classes, dtype=self.dtype, name="dense")(x))
