"""Exact metric sums on the host, and the report of `fluxseg eval` (JSON + markdown).

The confusion matrix is int64 in numpy: a Cityscapes-sized split (500 images
of 2048x1024, ~1.05e9 pixels, most in a few classes) or any larger one stays
exact up to 9.2e18 pixels, where an int32 matrix would wrap past 2^31.
Scores follow mmsegmentation's definitions (aAcc, mAcc, mIoU, per-class IoU;
ignore_index and negative labels never count) plus the frequency-weighted IoU
of Long et al. (2015): see fluxseg.tasks.metrics.scores.
"""
from __future__ import annotations

import json
import math
from typing import Optional, Sequence

import numpy as np

from fluxseg.tasks import metrics as metrics_lib


class ConfusionMatrix:
    """int64 [C, C] counts of (true class, predicted class) over valid pixels."""

    def __init__(self, num_classes: int, ignore_index: int = 255):
        self.num_classes, self.ignore_index = int(num_classes), int(ignore_index)
        self.counts = np.zeros((self.num_classes, self.num_classes), np.int64)

    def update(self, pred, target) -> None:
        pred, target = np.asarray(pred), np.asarray(target)
        if pred.shape != target.shape:
            raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
        n = self.num_classes
        valid = (target != self.ignore_index) & (target >= 0) & (target < n)
        idx = target[valid].astype(np.int64) * n + np.clip(pred[valid].astype(np.int64), 0, n - 1)
        self.counts += np.bincount(idx, minlength=n * n).astype(np.int64).reshape(n, n)

    def add(self, counts) -> None:
        """Adds another matrix of counts (from another process or shard)."""
        counts = np.asarray(counts)
        if counts.shape != self.counts.shape or not np.issubdtype(counts.dtype, np.integer):
            raise ValueError(f"expected integer counts of shape {self.counts.shape}, got "
                             f"{counts.dtype} {counts.shape}")
        self.counts += counts.astype(np.int64)

    def scores(self, class_names: Optional[Sequence[str]] = None) -> dict:
        return metrics_lib.scores(self.counts, class_names)


class TopK:
    """Exact top-1 / top-5 hit counts of a classifier."""

    def __init__(self, ks: Sequence[int] = (1, 5)):
        self.ks = tuple(ks)
        self.hits = {k: 0 for k in self.ks}
        self.count = 0

    def update(self, probs: np.ndarray, label: int) -> None:
        order = np.argsort(-np.asarray(probs))
        self.count += 1
        for k in self.ks:
            self.hits[k] += int(label in order[:k])

    def scores(self) -> dict:
        return {f"top{k}": self.hits[k] / max(self.count, 1) for k in self.ks}


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}"


def markdown(result: dict, class_names: Sequence[str]) -> str:
    """The summary table, then per-class IoU and accuracy (percent)."""
    head = [k for k in ("pixel_acc", "mean_acc", "mIoU", "fwIoU", "top1", "top5") if k in result]
    lines = [f"# {result['workdir']} step {result['step']}, split {result['split']}"
             f" ({result['num_examples']} images, tta={result['tta']}, scales={result['scales']})", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
             "| " + " | ".join(_fmt(result[k]) for k in head) + " |", ""]
    cols = [(k, label) for k, label in (("IoU", "IoU"), ("acc", "accuracy"))
            if any(f"{k}/{n}" in result for n in class_names)]
    if cols:
        support = result.get("support", [])
        lines += ["| class | " + " | ".join(c[1] for c in cols) + " | support |",
                  "|---|" + "---|" * len(cols) + "---|"]
        for i, name in enumerate(class_names):
            vals = " | ".join(_fmt(result.get(f"{k}/{name}")) for k, _ in cols)
            lines.append(f"| {name} | {vals} | {support[i] if i < len(support) else ''} |")
        lines.append("")
    return "\n".join(lines)


def write(result: dict, class_names: Sequence[str], json_path: str, md_path: str) -> None:
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in result.items()}
    with open(json_path, "w") as f:
        json.dump(clean, f, indent=1)
    with open(md_path, "w") as f:
        f.write(markdown(result, class_names))
