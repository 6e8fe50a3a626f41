"""One metric engine: a confusion matrix, plus top-k hits for classifiers.

Sums add up across batches, devices and processes: a ``[C, C]`` confusion
matrix (rows = true class, columns = predicted class) and top-k hit counts,
counted on the device in a jit-compiled step (``confusion_matrix``, int32 per
batch) or on the host for images of any size (``confusion_counts``, int64).
``scores`` turns a matrix into scores with mmsegmentation's definitions:
ignored targets (the ignore index, negative ids) never count; a class absent
from both target and prediction has an undefined IoU and is left out of the
means (NaN in the per-class list).
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fluxseg.tasks.losses import valid_mask


def confusion_matrix(pred, target, num_classes: int, ignore_index: int):
    """int32 ``[C, C]`` counts of (true, predicted) over valid targets, on the device (jit-able).

    pred, target: integer arrays of the same shape (any rank).
    """
    valid = valid_mask(target, ignore_index) & (target < num_classes)
    idx = jnp.where(valid, target * num_classes + pred, 0).reshape(-1)
    counts = jnp.bincount(idx, weights=valid.reshape(-1).astype(jnp.int32),
                          length=num_classes * num_classes)
    return counts.astype(jnp.int32).reshape(num_classes, num_classes)


def confusion_counts(pred, target, num_classes: int, ignore_index: int) -> np.ndarray:
    """``confusion_matrix`` on the host in int64: exact past 2^31 pixels, for images of any size.

    A Cityscapes-sized split (500 images of 2048x1024, ~1.05e9 pixels, most in
    a few classes) or any larger one stays exact up to 9.2e18 pixels, where an
    int32 matrix would wrap past 2^31.
    """
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
    n = int(num_classes)
    valid = valid_mask(target, ignore_index) & (target < n)
    idx = target[valid].astype(np.int64) * n + np.clip(pred[valid].astype(np.int64), 0, n - 1)
    return np.bincount(idx, minlength=n * n).astype(np.int64).reshape(n, n)


def topk_hits(ranking, labels, k: int, num_classes: int, ignore_index: int):
    """Labels among the ``k`` highest of ``ranking`` (logits or probabilities [B, C]),
    over valid labels [B] (as the confusion matrix counts them); numpy or jax."""
    xp = np if isinstance(ranking, np.ndarray) else jnp
    valid = valid_mask(labels, ignore_index) & (labels < num_classes)
    top = xp.argsort(-ranking, axis=-1)[:, :k]
    return xp.sum(xp.any(top == labels[:, None], axis=-1) & valid)


def scores(cm, class_names: Sequence[str] | None = None) -> dict:
    """Scores from a confusion matrix (numpy or jax), as plain Python floats.

    Returns pixel_acc (= aAcc), mean_acc (mAcc), mIoU, fwIoU and per-class
    ``IoU/<name>`` and ``acc/<name>`` (NaN where undefined).
    """
    cm = np.asarray(cm, dtype=np.float64)
    total = cm.sum()
    tp = np.diag(cm)
    gt = cm.sum(axis=1)
    pr = cm.sum(axis=0)
    union = gt + pr - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(gt > 0, tp / gt, np.nan)
        iou = np.where(union > 0, tp / union, np.nan)
    freq = gt / total if total > 0 else np.zeros_like(gt)
    out = {
        "pixel_acc": float(tp.sum() / total) if total > 0 else float("nan"),
        "mean_acc": _nanmean(acc),
        "mIoU": _nanmean(iou),
        "fwIoU": float(np.nansum(freq * np.nan_to_num(iou))) if total > 0 else float("nan"),
    }
    names = class_names or [str(i) for i in range(len(tp))]
    for name, a, u in zip(names, acc, iou):
        out[f"IoU/{name}"] = float(u)
        out[f"acc/{name}"] = float(a)
    return out


def _nanmean(x) -> float:
    x = np.asarray(x, np.float64)
    return float(np.nanmean(x)) if np.any(~np.isnan(x)) else float("nan")


def add(a, b):
    """Sums two metric pytrees leaf by leaf (None is the empty sum)."""
    if a is None or b is None:
        return b if a is None else a
    return jax.tree_util.tree_map(lambda x, y: x + y, a, b)
