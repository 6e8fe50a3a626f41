"""Semantic segmentation: one class per pixel."""
from __future__ import annotations

import dataclasses

import numpy as np

from fluxseg.models.layers import center_crop
from fluxseg.tasks import isbi, metrics
from fluxseg.tasks.base import Task


@dataclasses.dataclass(frozen=True)
class Segmentation(Task):
    """Per-pixel classes. Scores: pixel_acc, mean_acc, mIoU, fwIoU, IoU/<class>, acc/<class>;
    with ``isbi_metrics`` also the ISBI 2012 pixel_error and rand_error (fluxseg.tasks.isbi),
    averaged over images."""

    isbi_metrics: bool = False

    name = "segmentation"
    target_key = "mask"
    dense = True

    @property
    def headline(self) -> tuple:
        return ("mIoU", "pixel_acc", "mean_acc", "fwIoU") + (isbi.SCORES if self.isbi_metrics else ())

    @property
    def per_image_metrics(self) -> bool:
        return self.isbi_metrics

    def target(self, batch, logits):
        # The unpadded U-Net's logits are smaller than its input: score the centre.
        return center_crop(batch["mask"], logits.shape[1:3])

    def image_sums(self, pred, target) -> dict:
        # The target is cropped to the prediction's centre, as the confusion matrix scores it.
        if not self.isbi_metrics:
            return {}
        target = center_crop(np.asarray(target)[None], np.shape(pred))[0]
        return isbi.sums(pred, self.metric_target(target), self.ignore_index)

    def count(self, pred, target, probs=None):
        return {**super().count(pred, target), **self.image_sums(pred, target)}

    def scores(self, sums):
        out = metrics.scores(sums["confusion"], self.names)
        if self.isbi_metrics:
            out.update(isbi.scores(sums))
        return out
