"""The task contract: what a model's output means and how it is scored.

One object per task owns everything that differs between segmentation and
classification: the batch key that holds the target, how the target lines up
with the logits, how logits become class ids, the metric sums of a batch, the
scores made from them and which of them are the headline. The train step,
the training loop's eval, `fluxseg eval` and the benchmarks ask the task
instead of branching on its name, so a new task (multi-label, say) is one new
class here (scenic's task models own their losses and metrics the same way).

A task is built once per run from the resolved config and the data
(fluxseg.train.build.task): it is the one place that holds the ignore index,
the binary rule and the class names.

A target is integer class ids: ``[B,H,W]`` masks or ``[B]`` labels; entries
equal to ``ignore_index`` or negative (padding rows) never count, nor do ids
at or above the number of classes scored.

The binary rule: a model with one output channel is a binary sigmoid head.
Class 0 is background (negative) and every other class id is foreground
(positive), in the loss (fluxseg.tasks.losses) and in every score alike; its
scores have two classes.

Sums are dicts of arrays that add up over batches, devices and processes:
'confusion' [C, C] (rows true class, columns predicted), 'top5' hits for
classifiers with more than five classes, and the per-image sums of tasks with
per-image metrics (the ISBI errors). ``eval_sums`` makes them on the device
from logits (jit-able, int32 per batch); ``count`` on the host from class ids
(int64, any image size). ``scores`` turns either into the same scores.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional

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
    """Class ids -> 0 (background) / 1 (any id > 0); ignored entries keep their value.

    numpy in, numpy out; jax in, jax out.
    """
    xp = np if isinstance(target, np.ndarray) else jnp
    valid = losses.valid_mask(target, ignore_index)
    return xp.where(valid, (target > 0).astype(target.dtype), target)


@dataclasses.dataclass(frozen=True)
class Task:
    """The shared part; subclasses set ``name``, ``target_key`` and ``dense``."""

    num_classes: int      # model output channels; 1 = binary sigmoid head
    ignore_index: int     # target value never scored (config.data.ignore_index)
    class_names: Optional[tuple] = None  # the data's classes; None: numbered

    name: ClassVar[str]
    target_key: ClassVar[str]  # the batch entry holding the target
    dense: ClassVar[bool]      # one target per pixel (a mask) rather than per image
    per_image_metrics: ClassVar[bool] = False  # some scores need each image's class ids (image_sums)

    def __post_init__(self):
        if self.num_classes < 1:
            raise ValueError(f"num_classes={self.num_classes}; expected 1 (a binary sigmoid "
                             "head) or the number of classes")
        names = self.class_names
        if names is not None and not self.binary and len(names) != self.num_classes:
            raise ValueError(f"{self.num_classes} outputs but {len(names)} class names {tuple(names)}")

    @property
    def binary(self) -> bool:
        return self.num_classes == 1

    @property
    def metric_classes(self) -> int:
        """Rows of the confusion matrix: two for a binary head."""
        return 2 if self.binary else self.num_classes

    @property
    def names(self) -> tuple:
        """One name per scored class. A binary head keeps the data's names when the
        data has two classes, else its classes are 'background' / 'foreground'."""
        names = self.class_names
        if self.binary:
            return tuple(names) if names is not None and len(names) == 2 else ("background", "foreground")
        return tuple(names) if names is not None else tuple(str(i) for i in range(self.num_classes))

    @property
    def headline(self) -> tuple:
        """The scores a report leads with, in order (the rest are per class)."""
        raise NotImplementedError

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
        """Device-side sums of one batch (jit-able): the confusion matrix, int32."""
        return {"confusion": metrics.confusion_matrix(
            class_ids(logits), self.metric_target(target), self.metric_classes, self.ignore_index)}

    def count(self, pred, target, probs=None) -> dict:
        """Host-side sums of one example or batch, int64 (exact past 2^31 pixels).

        pred: class ids shaped like ``target`` (numpy); probs: the probabilities
        [..., K] the ids came from, for tasks that rank classes (top-k).
        """
        return {"confusion": metrics.confusion_counts(
            np.asarray(pred), self.metric_target(np.asarray(target)), self.metric_classes,
            self.ignore_index)}

    def image_sums(self, pred, target) -> dict:
        """Host-side sums of the scores made per image, from one image's class ids
        [h, w] and its target; tasks without such scores have none."""
        return {}

    def scores(self, sums: dict) -> dict:
        """Scores (plain floats) from sums added up over the whole split, made on the
        device (``eval_sums``) or on the host (``count``)."""
        raise NotImplementedError
