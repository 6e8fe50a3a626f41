"""Image classification: one class per image."""
from __future__ import annotations

from typing import ClassVar

from fluxseg.tasks import metrics
from fluxseg.tasks.base import Task


class Classification(Task):
    """One class per image. Scores: top1 (and top5 for softmax heads), mean_acc."""

    name = "classification"
    target_key = "label"
    dense = False
    TOP_K: ClassVar[tuple[int, ...]] = (1, 5)
    HEADLINE = ("top1", "top5", "mean_acc")

    def eval_sums(self, logits, target):
        sums = super().eval_sums(logits, target)
        if not self.binary:
            sums.update(metrics.topk_correct(logits, target, self.TOP_K, self.ignore_index))
        return sums

    def scores(self, sums, class_names=None):
        cm = metrics.scores(sums["confusion"], self.class_names(class_names))
        top = {"top1": cm["pixel_acc"]} if self.binary else metrics.topk_scores(sums)
        return {**top, "mean_acc": cm["mean_acc"]}
