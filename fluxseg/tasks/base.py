"""The task contract: what a model's output means and how it is scored.

One object per task owns everything that differs between segmentation and
classification: the batch key that holds the target, how the target lines up
with the logits, how logits become class ids, the metric sums of a batch and
the scores made from them, and the picture drawn at an eval. The train step,
eval and predict ask the task instead of branching on its name, so a new task
(multi-label, say) is one new class here (scenic's task models own their
losses and metrics the same way).

A target is integer class ids: ``[B,H,W]`` masks or ``[B]`` labels; entries
equal to ``ignore_index`` or negative (padding rows) never count.
A model with one output channel is a binary sigmoid head: any class id > 0
is foreground, and its metrics have two classes.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional, Sequence

import jax.numpy as jnp
import numpy as np

from fluxseg.tasks import losses, metrics


def class_ids(logits):
    """int32 class ids ``[...]`` from logits ``[..., K]`` (numpy or jax).

    K = 1 is a sigmoid head: class 1 where the logit is positive (probability
    above 0.5); otherwise the argmax (softmax is monotonic).
    """
    if logits.shape[-1] == 1:
        return (logits[..., 0] > 0).astype(np.int32)
    return logits.argmax(axis=-1).astype(np.int32)


def class_ids_from_probs(probs):
    """``class_ids`` for probabilities ``[..., K]`` (averaged over augmentations,
    where logits no longer exist): K = 1 thresholds at 0.5, else the argmax."""
    if probs.shape[-1] == 1:
        return (probs[..., 0] > 0.5).astype(np.int32)
    return probs.argmax(axis=-1).astype(np.int32)


def binary_target(target, ignore_index: int):
    """Class ids -> 0 (background) / 1 (any id > 0); ignored entries keep their value."""
    valid = losses.valid_mask(target, ignore_index)
    return jnp.where(valid, (target > 0).astype(target.dtype), target)


@dataclasses.dataclass(frozen=True)
class Task:
    """The shared part; subclasses set ``name`` and ``target_key``."""

    num_classes: int  # model output channels; 1 = binary sigmoid head
    ignore_index: int = 255

    name: ClassVar[str]
    target_key: ClassVar[str]  # the batch entry holding the target
    dense: ClassVar[bool]  # one target per pixel (a mask) rather than per image
    draws_pictures: ClassVar[bool] = False
    # The scores a result is judged by, most important first: what sweep reports
    # compare and plot (a binary head may lack some, e.g. top5).
    HEADLINE: ClassVar[tuple[str, ...]]

    @property
    def binary(self) -> bool:
        return self.num_classes == 1

    @property
    def metric_classes(self) -> int:
        """Rows of the confusion matrix: two for a binary head."""
        return 2 if self.binary else self.num_classes

    def inputs(self, batch: dict) -> dict:
        """The entries of a data batch that the step reads (and per-pixel loss
        weights, e.g. the U-Net border weight map, where the data has them)."""
        extra = {"weight": batch["weight"]} if "weight" in batch else {}
        return {"image": batch["image"], self.target_key: batch[self.target_key], **extra}

    def target(self, batch: dict, logits):
        """The loss target, aligned with ``logits``."""
        return batch[self.target_key]

    def metric_target(self, target):
        """The target the metrics compare class ids with (0/1 for a binary head)."""
        return binary_target(target, self.ignore_index) if self.binary else target

    def correct(self, logits, target):
        """(correct, counted) entries of a batch: the numerator and denominator of accuracy."""
        target = self.metric_target(target)
        valid = losses.valid_mask(target, self.ignore_index)
        return jnp.sum((class_ids(logits) == target) & valid), jnp.sum(valid)

    def eval_sums(self, logits, target) -> dict:
        """Device-side sums of one batch that add up over batches and devices."""
        return {"confusion": metrics.confusion_matrix(
            class_ids(logits), self.metric_target(target), self.metric_classes, self.ignore_index)}

    def class_names(self, names: Optional[Sequence[str]]) -> Optional[Sequence[str]]:
        return ("background", "foreground") if self.binary else names

    def scores(self, sums: dict, class_names: Optional[Sequence[str]] = None) -> dict:
        """Host-side scores from the summed ``eval_sums``."""
        raise NotImplementedError

    def picture(self, images, targets, predictions, colormap=None, class_names=None) -> Optional[np.ndarray]:
        """A uint8 picture of a few eval examples, or None for tasks that draw none."""
        return None
