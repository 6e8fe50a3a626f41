"""`fluxseg eval`: a trained run on a whole split, every image once at its own size.

Unlike the in-loop evaluation (crops or padded batches of one size), each
example is read without crop, resize or padding and goes through
``fluxseg.predict_batch``, the predictor a researcher uses on new images:
tiles of the training size, one compilation for the whole split, optional
flip / multi-scale test-time augmentation. The metric sums are exact int64
on the host (fluxseg.infer.report).

Writes <out>/metrics.json, <out>/metrics.md (and confusion.png for
classifiers), out = <workdir>/eval_<split>_step<step>[_<tta>] by default.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Optional, Sequence

import numpy as np

from fluxseg import tasks
from fluxseg.infer.report import ConfusionMatrix, TopK, markdown, write


def _process_sum(counts: np.ndarray) -> np.ndarray:
    """Sums int64 counts over processes (each read its own shard)."""
    import jax
    if jax.process_count() == 1:
        return counts
    from jax.experimental import multihost_utils
    # int64 would be truncated to int32 without x64: send the counts as two int32 halves.
    lo = (counts & 0x7FFFFFFF).astype(np.int32)
    hi = (counts >> 31).astype(np.int32)
    lo_all = np.asarray(multihost_utils.process_allgather(lo), np.int64)
    hi_all = np.asarray(multihost_utils.process_allgather(hi), np.int64)
    return (lo_all.sum(0) + (hi_all.sum(0) << 31)).astype(np.int64)


def _chunks(iterator, size: int):
    chunk = []
    for ex in iterator:
        chunk.append(ex)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def evaluate(workdir: str, split: Optional[str] = None, *, step: Optional[int] = None,
             tta: Optional[str] = None, scales: Sequence[float] = (1.0,),
             data_dir: Optional[str] = None, out_dir: Optional[str] = None,
             images_per_call: int = 8, progress: bool = True, restored=None) -> dict:
    """Scores of the checkpoint of ``workdir`` on ``split`` (default the config's eval split).

    Returns pixel_acc, mean_acc, mIoU, fwIoU, IoU/<class>, acc/<class>,
    support (pixels per true class) and confusion (int64 lists)
    for segmentation; top1, top5, mean_acc, acc/<class> and confusion for
    classification; plus step, split, num_examples, images_per_s and the
    paths of the files written.
    """
    import jax
    from tqdm.auto import tqdm

    import fluxseg
    from fluxseg import data

    restored = restored or fluxseg.restore(workdir, step)
    cfg = restored.config
    data_cfg = cfg.data
    if data_dir is not None:
        with data_cfg.ignore_type():
            data_cfg.data_dir = data_dir
    split = split or data_cfg.eval_split
    info = data.info(data_cfg)
    task = tasks.create(cfg.task, cfg.num_classes, info.ignore_index)
    segmentation, binary = task.dense, task.binary
    names = tuple(task.class_names(info.class_names))
    cm = ConfusionMatrix(len(names), info.ignore_index)
    topk = TopK((1, 5))
    examples = data.full_size_iterator(data_cfg, split)
    is_main = jax.process_index() == 0
    bar = tqdm(total=len(examples), unit="img", desc=f"eval {split}", file=sys.stderr,
               dynamic_ncols=True, disable=not (progress and is_main))
    start, seen = time.perf_counter(), 0
    for chunk in _chunks(examples, max(1, int(images_per_call))):
        images = [ex["image"] for ex in chunk]
        out = fluxseg.predict_batch(restored, images, probs=not segmentation, tta=tta,
                                    scales=scales, names=[f"{split}[{seen + i}]" for i in range(len(chunk))])
        for ex, pred in zip(chunk, out):
            if segmentation:
                cm.update(pred, ex["mask"])
            else:
                label = int(ex["label"])
                if not 0 <= label < len(names):
                    continue  # unlabelled: never counts, as for ignored pixels
                guess = int(tasks.class_ids_from_probs(pred))
                cm.update(np.array([guess]), np.array([label]))
                if not binary:
                    topk.update(pred, label)
        seen += len(chunk)
        bar.update(len(chunk))
    bar.close()
    seconds = time.perf_counter() - start
    if seen == 0:
        raise ValueError(f"the split {split!r} of {data_cfg.name} is empty")
    counts = _process_sum(cm.counts)
    full = ConfusionMatrix(len(names), info.ignore_index)
    full.add(counts)
    s = full.scores(names)
    if segmentation:
        result = dict(s)
    else:
        result = {"top1": s["pixel_acc"], "mean_acc": s["mean_acc"],
                  **{k: v for k, v in s.items() if k.startswith("acc/")}}
        if not binary:
            hits = _process_sum(np.array([topk.hits[1], topk.hits[5], topk.count], np.int64))
            result.update(top1=int(hits[0]) / max(int(hits[2]), 1),
                          top5=int(hits[1]) / max(int(hits[2]), 1))
    result.update(workdir=os.path.abspath(workdir), step=int(restored.step), split=split,
                  tta=tta, scales=[float(x) for x in scales], num_examples=examples.num_examples,
                  images_per_s=seen / max(seconds, 1e-9), class_names=list(names),
                  support=[int(v) for v in counts.sum(1)], confusion=counts.tolist())
    if is_main:
        suffix = f"_{tta}" if tta else ""
        if tuple(float(x) for x in scales) != (1.0,):
            suffix += "_ms" + "-".join(f"{float(x):g}" for x in scales)
        out = out_dir or os.path.join(workdir, f"eval_{split}_step{restored.step}{suffix}")
        os.makedirs(out, exist_ok=True)
        result["files"] = [os.path.join(out, "metrics.json"), os.path.join(out, "metrics.md")]
        if not segmentation:
            from fluxseg.viz.draw import confusion_picture
            result["files"].append(confusion_picture(counts, names, os.path.join(out, "confusion.png")))
        write(result, names, result["files"][0], result["files"][1])
    return result


__all__ = ["evaluate", "markdown", "ConfusionMatrix"]
