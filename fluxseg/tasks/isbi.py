"""The ISBI 2012 challenge's scores (Arganda-Carreras et al. 2015).

* pixel error: the fraction of scored pixels whose class is wrong
  (1 - pixel accuracy).
* Rand error: 1 - the foreground-restricted Rand F-score. Both label images
  are segmentations into objects (here: the 4-connected components of the
  cell class; membrane = label 0). Pixels that are background (0) in the
  TRUE segmentation are left out; with p_ij the number of pixels in true
  object i and predicted object j, a_i, b_j its row and column sums,

      F = sum p_ij^2 / (alpha * sum a_i^2 + (1 - alpha) * sum b_j^2)

  (each sum counting ordered pairs of distinct pixels, i.e. minus the pixel
  count), alpha = 1/2. This is the definition scikit-image implements in
  `skimage.metrics.adapted_rand_error`, which the tests compare against.

Scores are per slice and averaged over slices. The challenge server also
searched thresholds of a membrane probability map; fluxseg scores the
argmax prediction as it is.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def adapted_rand_error(true_labels, pred_labels, alpha: float = 0.5) -> tuple[float, float, float]:
    """(error, precision, recall) as skimage.metrics.adapted_rand_error names them.

    true_labels, pred_labels: non-negative integer label images of one shape;
    true label 0 is not scored.
    """
    t = np.asarray(true_labels).reshape(-1).astype(np.int64)
    p = np.asarray(pred_labels).reshape(-1).astype(np.int64)
    if t.shape != p.shape:
        raise ValueError(f"label images differ in size: {np.shape(true_labels)} vs "
                         f"{np.shape(pred_labels)}")
    keep = t != 0
    t, p = t[keep], p[keep]
    n = float(t.size)
    _, joint = np.unique(np.stack([t, p]), axis=1, return_counts=True)
    _, a = np.unique(t, return_counts=True)
    _, b = np.unique(p, return_counts=True)
    joint, a, b = (x.astype(np.float64) for x in (joint, a, b))
    sum_p2 = joint @ joint - n
    sum_a2, sum_b2 = a @ a - n, b @ b - n
    with np.errstate(invalid="ignore", divide="ignore"):
        fscore = sum_p2 / (alpha * sum_a2 + (1 - alpha) * sum_b2)
        return float(1.0 - fscore), float(sum_p2 / sum_a2), float(sum_p2 / sum_b2)


def objects(class_mask, foreground: int = 1) -> np.ndarray:
    """Label image of the 4-connected components of `foreground` (0 elsewhere)."""
    labels, _ = ndimage.label(np.asarray(class_mask) == foreground)
    return labels


# The score names, in the order reports list them.
SCORES = ("pixel_error", "rand_error")


def sums(pred, mask, ignore_index: int, foreground: int = 1) -> dict:
    """Additive sums of one slice's errors: per score, the error summed and the
    slices counted (a slice with no scored pixel, e.g. an unlabelled test slice,
    counts for neither; one with no cell pixel for the pixel error only).

    pred, mask: int [H, W] class ids of one slice, same shape.
    """
    pred, mask = np.asarray(pred), np.asarray(mask)
    out = {f"{k}_{part}": np.zeros((), np.float64) for k in SCORES for part in ("sum", "count")}
    scored = mask != ignore_index
    if not scored.any():
        return out
    out["pixel_error_sum"] += np.mean(pred[scored] != mask[scored])
    out["pixel_error_count"] += 1
    truth = np.where(scored, objects(mask, foreground), 0)
    if truth.any():
        out["rand_error_sum"] += adapted_rand_error(truth, objects(pred, foreground))[0]
        out["rand_error_count"] += 1
    return out


def scores(summed: dict) -> dict:
    """The mean of each score over the slices ``sums`` counted (NaN where none was)."""
    return {k: float(summed[f"{k}_sum"] / summed[f"{k}_count"]) if summed[f"{k}_count"] > 0 else float("nan")
            for k in SCORES}
