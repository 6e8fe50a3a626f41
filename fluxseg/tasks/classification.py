"""Image classification: one class per image."""
from __future__ import annotations

import dataclasses

import numpy as np

from fluxseg.tasks import metrics
from fluxseg.tasks.base import Task

TOP_K = 5  # top-5 accuracy, scored for classifiers with more than five classes


@dataclasses.dataclass(frozen=True)
class Classification(Task):
    """One class per image. Scores: top1, mean_acc, acc/<class>, and top5 where
    there are more than five classes (with five or fewer it is always 1)."""

    name = "classification"
    target_key = "label"
    dense = False

    @property
    def ranks(self) -> bool:
        return self.num_classes > TOP_K

    @property
    def headline(self) -> tuple:
        return ("top1", "top5", "mean_acc") if self.ranks else ("top1", "mean_acc")

    def eval_sums(self, logits, target):
        sums = super().eval_sums(logits, target)
        if self.ranks:
            sums["top5"] = metrics.topk_hits(logits, target, TOP_K, self.num_classes,
                                             self.ignore_index).astype(np.int32)
        return sums

    def count(self, pred, target, probs=None):
        sums = super().count(pred, target)
        if self.ranks:
            if probs is None:
                raise ValueError("a classifier with more than five classes is counted from its "
                                 "probabilities (top-5): pass probs=")
            sums["top5"] = np.int64(metrics.topk_hits(
                np.asarray(probs).reshape(-1, self.num_classes), np.asarray(target).reshape(-1),
                TOP_K, self.num_classes, self.ignore_index))
        return sums

    def scores(self, sums):
        cm = np.asarray(sums["confusion"])
        by_class = metrics.scores(cm, self.names)
        out = {"top1": by_class["pixel_acc"], "mean_acc": by_class["mean_acc"],
               **{k: v for k, v in by_class.items() if k.startswith("acc/")}}
        if self.ranks:
            out["top5"] = float(sums["top5"]) / cm.sum() if cm.sum() > 0 else float("nan")
        return out
