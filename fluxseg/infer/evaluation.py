"""`fluxseg eval`: a trained run on a whole split, every image once at its own size.

Unlike the in-loop evaluation (crops or padded batches of one size), each
example is read without crop, resize or padding and goes through
``fluxseg.predict_batch``, the predictor a researcher uses on new images:
tiles of the training size, one compilation for the whole split, optional
flip / multi-scale test-time augmentation. The scores are the run's task's,
as in the training loop (``Task.count``: exact int64 sums on the host).

Writes <out>/metrics.json, <out>/metrics.md (and confusion.png for
classifiers), out = <workdir>/eval_<split>_step<step>[_<tta>] by default.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Optional, Sequence

import ml_collections
import numpy as np

from fluxseg import tasks
from fluxseg.infer.prediction import BATCH_SIZE
from fluxseg.infer.report import markdown, write
from fluxseg.runtime import distributed
from fluxseg.tasks import metrics


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
             images_per_call: int = BATCH_SIZE, progress: bool = True, restored=None) -> dict:
    """Scores of the checkpoint of ``workdir`` on ``split`` (default the config's eval split).

    The scores are the run's task's (fluxseg.train.build.task: the same scores,
    ignore index, binary rule and class names as the training loop's eval):
    pixel_acc, mean_acc, mIoU, fwIoU, IoU/<class>, acc/<class> for segmentation
    (plus pixel_error, rand_error with config.isbi_metrics); top1, top5 (more
    than five classes), mean_acc, acc/<class> for classification. Also:
    headline (the names of the leading scores), class_names, support (targets
    per true class) and confusion (int64 lists), step, split, num_examples,
    images_per_s and the paths of the files written.
    images_per_call: images handed to ``predict_batch`` at once (their tiles share batches).
    """
    import jax
    from tqdm.auto import tqdm

    import fluxseg
    from fluxseg import data
    from fluxseg.train import build

    restored = restored or fluxseg.restore(workdir, step)
    data_cfg = restored.config.data
    if data_dir is not None:  # a copy: the restored run's config stays as it is
        data_cfg = ml_collections.ConfigDict(data_cfg.to_dict())
        with data_cfg.ignore_type():
            data_cfg.data_dir = data_dir
    split = split or data_cfg.eval_split
    info = data.info(data_cfg)
    task = build.task(restored.config, info.class_names)
    examples = data.full_size_iterator(data_cfg, split)
    is_main = jax.process_index() == 0
    bar = tqdm(total=len(examples), unit="img", desc=f"eval {split}", file=sys.stderr,
               dynamic_ncols=True, disable=not (progress and is_main))
    start, seen, sums = time.perf_counter(), 0, None
    for chunk in _chunks(examples, max(1, int(images_per_call))):
        images = [ex["image"] for ex in chunk]
        out = fluxseg.predict_batch(restored, images, probs=not task.dense, tta=tta,
                                    scales=scales, names=[f"{split}[{seen + i}]" for i in range(len(chunk))])
        for ex, pred in zip(chunk, out):
            if task.dense:
                sums = metrics.add(sums, task.count(pred, ex["mask"]))
            else:  # pred: the probabilities [K]; one image, one label
                ids = np.atleast_1d(tasks.class_ids_from_probs(pred))
                sums = metrics.add(sums, task.count(ids, np.atleast_1d(ex["label"]), pred[None]))
        seen += len(chunk)
        bar.update(len(chunk))
    bar.close()
    seconds = time.perf_counter() - start
    if seen == 0:
        raise ValueError(f"the split {split!r} of {data_cfg.name} is empty")
    sums = distributed.sum_over_processes(sums)
    counts = np.asarray(sums["confusion"], np.int64)
    result = task.scores(sums)
    result.update(workdir=os.path.abspath(workdir), step=int(restored.step), split=split,
                  tta=tta, scales=[float(x) for x in scales], num_examples=examples.num_examples,
                  images_per_s=seen / max(seconds, 1e-9), headline=list(task.headline),
                  class_names=list(task.names), support=[int(v) for v in counts.sum(1)],
                  confusion=counts.tolist())
    if is_main:
        suffix = f"_{tta}" if tta else ""
        if tuple(float(x) for x in scales) != (1.0,):
            suffix += "_ms" + "-".join(f"{float(x):g}" for x in scales)
        out = out_dir or os.path.join(workdir, f"eval_{split}_step{restored.step}{suffix}")
        os.makedirs(out, exist_ok=True)
        result["files"] = [os.path.join(out, "metrics.json"), os.path.join(out, "metrics.md")]
        if not task.dense:
            from fluxseg.viz.draw import confusion_picture
            result["files"].append(confusion_picture(counts, task.names, os.path.join(out, "confusion.png")))
        write(result, result["files"][0], result["files"][1])
    return result


__all__ = ["evaluate", "markdown"]
