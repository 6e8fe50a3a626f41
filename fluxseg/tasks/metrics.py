"""One metric engine: a streaming confusion matrix, plus top-k for classifiers.

The device side (jit-able) turns a batch of predictions into sums that add up
across batches and devices: a ``[C, C]`` confusion matrix (rows = true class,
columns = predicted class) and top-k hit counts. The host side turns the final
sums into scores, with mmsegmentation's definitions: ignored targets (255,
negative) never count; a class absent from both target and prediction has an
undefined IoU and is left out of the means (NaN in the per-class list).
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fluxseg.tasks.losses import valid_mask


def confusion_matrix(pred, target, num_classes: int, ignore_index: int = 255):
    """int32 ``[C, C]`` counts of (true, predicted) over valid targets.

    pred, target: integer arrays of the same shape (any rank).
    """
    valid = valid_mask(target, ignore_index) & (target < num_classes)
    idx = jnp.where(valid, target * num_classes + pred, 0).reshape(-1)
    counts = jnp.bincount(idx, weights=valid.reshape(-1).astype(jnp.int32),
                          length=num_classes * num_classes)
    return counts.astype(jnp.int32).reshape(num_classes, num_classes)


def topk_correct(logits, labels, ks: Sequence[int] = (1, 5), ignore_index: int = 255):
    """{'top{k}': hits, 'count': valid labels}; logits [B,C], labels [B]."""
    valid = valid_mask(labels, ignore_index)
    order = jnp.argsort(-logits, axis=-1)
    out = {"count": jnp.sum(valid).astype(jnp.int32)}
    for k in ks:
        k_eff = min(k, logits.shape[-1])
        hit = jnp.any(order[:, :k_eff] == labels[:, None], axis=-1)
        out[f"top{k}"] = jnp.sum(hit & valid).astype(jnp.int32)
    return out


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


def topk_scores(sums: dict) -> dict:
    """{'top1': ..., 'top5': ...} accuracies from summed ``topk_correct`` counts."""
    n = max(int(sums["count"]), 1)
    return {k: float(v) / n for k, v in sums.items() if k.startswith("top")}


def _nanmean(x) -> float:
    x = np.asarray(x, np.float64)
    return float(np.nanmean(x)) if np.any(~np.isnan(x)) else float("nan")


def add(a, b):
    """Sums two metric pytrees leaf by leaf (None is the empty sum)."""
    if a is None:
        return b
    return jax.tree_util.tree_map(lambda x, y: x + y, a, b)
