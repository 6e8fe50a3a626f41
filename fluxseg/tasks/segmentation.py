"""Semantic segmentation: one class per pixel."""
from __future__ import annotations

import numpy as np

from fluxseg.models.layers import center_crop
from fluxseg.tasks import metrics
from fluxseg.tasks.base import Task


class Segmentation(Task):
    """Per-pixel classes. Scores: pixel_acc, mean_acc, mIoU, fwIoU, IoU/<class>, acc/<class>."""

    name = "segmentation"
    target_key = "mask"
    dense = True
    draws_pictures = True
    HEADLINE = ("mIoU", "pixel_acc", "mean_acc", "fwIoU")

    def target(self, batch, logits):
        # The unpadded U-Net's logits are smaller than its input: score the centre.
        return center_crop(batch["mask"], logits.shape[1:3])

    def scores(self, sums, class_names=None):
        return metrics.scores(sums["confusion"], self.class_names(class_names))

    def picture(self, images, targets, predictions, colormap=None, class_names=None):
        """Rows of image | truth | prediction; truth cropped and binarised as scored."""
        from fluxseg.viz.draw import prediction_grid

        predictions = np.asarray(predictions)
        masks = np.asarray(self.metric_target(center_crop(targets, predictions.shape[1:3])))
        return prediction_grid(images, masks, predictions, colormap, self.ignore_index,
                               class_names=self.class_names(class_names))
