"""The training loop: ``train_and_evaluate(config, workdir)``, ``evaluate``.

Side effects live here (devices, files, signals, progress); the step itself
is in step.py. The loop never waits for the device except at log, eval and
checkpoint steps: per-step metrics are summed on device and fetched there.
Re-running the same command in the same workdir resumes from the newest
checkpoint, including the position in the data stream.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import signal
import time
from typing import Optional

import jax
import ml_collections
import numpy as np

from fluxseg.train import build, config as config_lib, metrics as metrics_lib
from fluxseg.train.checkpoint import Checkpoints, abstract
from fluxseg.train.parallel import DataParallel, to_host
from fluxseg.train.step import TrainState, eval_step, init_state, predict_step, train_step
from fluxseg.train.writers import Writer, prediction_grid

log = logging.getLogger("fluxseg.train")


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or Inf; the run stopped without saving."""


class _Preemption:
    """SIGTERM -> finish the current step, save, exit cleanly.

    With several processes the flag is only acted on at sync points (log
    steps), where the processes agree on it, so all of them save the same step.
    """

    def __init__(self):
        self.flag = False
        self._previous = None

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: no handler, no preemption saves
            self._previous = None
        return self

    def _handle(self, signum, frame):
        log.warning("SIGTERM received: saving a checkpoint and stopping")
        self.flag = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    def requested(self, at_sync_point: bool) -> bool:
        if jax.process_count() == 1:
            return self.flag
        if not at_sync_point:
            return False
        from jax.experimental import multihost_utils
        return bool(np.any(multihost_utils.process_allgather(np.int32(self.flag))))


def _data():
    from fluxseg import data  # imports TensorFlow (kept off the accelerators)
    return data


def _model_inputs(batch: dict, task: str) -> dict:
    key = "mask" if task == "segmentation" else "label"
    extra = {"weight": batch["weight"]} if "weight" in batch else {}  # per-pixel loss weights
    return {"image": batch["image"], key: batch[key], **extra}


def _image_shape(config, info) -> tuple[int, int, int]:
    h, w = (int(v) for v in config.data.crop_size)
    channels = int(info.channels)  # data.channels, else as stored: what the batches carry
    return (h, w, channels)


def _meta(config, step: int, image_shape, dp: DataParallel) -> dict:
    return {"step": int(step), "data_step": int(step),
            "config": json.loads(config.to_json_best_effort()),
            "image_shape": list(image_shape), "num_devices": dp.num_devices,
            "process_count": jax.process_count(), "parallel": dp.mode}


def _train_summary(acc: dict, steps: int, first_step: int, last_step: int, ckpt) -> dict:
    m = to_host(acc)
    if int(m["nonfinite"]) > 0:
        good = ckpt.latest_step()
        where = (f"the last good checkpoint is step {good} in {ckpt.manager.directory}"
                 if good is not None else "no checkpoint had been saved yet")
        raise NonFiniteLossError(
            f"the training loss became NaN/Inf between steps {first_step} and {last_step} "
            f"({int(m['nonfinite'])} of {steps} steps); the run stopped without saving it, "
            f"{where}. Try a lower optim.learning_rate, set optim.grad_clip_norm, or use "
            "dtype='float32'.")
    return {"loss": float(m["loss"]) / steps,
            "accuracy": float(m["correct"]) / max(int(m["count"]), 1)}


def _eval_scores(sums: dict, spec, class_names) -> dict:
    """Host-side scores: segmentation -> pixel_acc, mean_acc, mIoU, fwIoU, IoU/<class>;
    classification -> top1 (top5), mean_acc. Plus the mean eval loss."""
    s = to_host(sums)
    binary = spec.num_classes == 1
    names = ("background", "foreground") if binary else class_names
    cm_scores = metrics_lib.scores(s["confusion"], names)
    if spec.task == "segmentation":
        out = cm_scores
    elif binary:
        out = {"top1": cm_scores["pixel_acc"], "mean_acc": cm_scores["mean_acc"]}
    else:
        out = {**metrics_lib.topk_scores(s), "mean_acc": cm_scores["mean_acc"]}
    terms = np.asarray(s["loss_terms"], np.float64)
    out["loss"] = float(np.sum(terms[:, 0] / np.maximum(terms[:, 1], 1e-12)))
    return out


def run_eval(p_eval, variables, config, dp: DataParallel, spec, info, *, split=None,
             picture_fn=None) -> tuple[dict, Optional[np.ndarray]]:
    """Metrics over the whole eval split (every example once); optional picture grid."""
    data = _data()
    split = split or config.data.eval_split
    it = data.eval_iterator(config.data, split, global_batch_size=int(config.eval_batch_size))
    sums, first = None, None
    isbi = _isbi_scorer(config, spec, variables)
    for batch in it:
        if first is None:
            first = batch
        sums = metrics_lib.add(sums, p_eval(variables, dp.put_batch(_model_inputs(batch, spec.task))))
        if isbi is not None:
            isbi(batch)
    if sums is None:
        raise ValueError(f"the eval split {split!r} of {config.data.name} is empty")
    scores = _eval_scores(sums, spec, info.class_names)
    if isbi is not None:
        scores.update(isbi.scores())
    grid = picture_fn(first) if (picture_fn and first is not None) else None
    return scores, grid


def _isbi_scorer(config, spec, variables):
    """config.isbi_metrics: per-slice pixel and Rand errors (this process's rows)."""
    if not config.get("isbi_metrics", False) or spec.task != "segmentation":
        return None
    from fluxseg.train import isbi_metrics
    acc = isbi_metrics.Accumulator(int(spec.ignore_index))
    predict = jax.jit(functools.partial(predict_step, spec=spec))
    host_vars = to_host(variables)

    def add(batch):
        acc.add(np.asarray(predict(host_vars, {"image": batch["image"]})[0]), batch["mask"],
                batch.get("valid"))
    add.scores = acc.scores
    return add


class _Pictures:
    """Draws image | truth | prediction for the first eval rows (process 0 only).

    The predict function is compiled once per run; each eval passes the
    current variables (copied to the host: no other process takes part).
    """

    def __init__(self, config, info):
        self.enabled = (jax.process_index() == 0 and config.task == "segmentation"
                        and int(config.num_eval_images) > 0)
        self.n, self.colormap = int(config.num_eval_images), info.colormap
        self.class_names = info.class_names
        self.spec = build.step_spec(config, with_optimizer=False)
        self.predict = jax.jit(functools.partial(predict_step, spec=self.spec))

    def for_variables(self, variables):
        if not self.enabled:
            return None
        host_vars = to_host(variables)
        return lambda batch: self.draw(host_vars, batch)

    def draw(self, host_vars, batch):
        keep = np.asarray(batch.get("valid", np.ones(len(batch["image"]), bool)))
        images, masks = batch["image"][keep][:self.n], batch["mask"][keep][:self.n]
        if len(images) == 0:
            return None
        preds = np.asarray(self.predict(host_vars, {"image": images})[0])
        h, w = preds.shape[1:3]
        top, left = (masks.shape[1] - h) // 2, (masks.shape[2] - w) // 2
        masks = masks[:, top:top + h, left:left + w]
        ignore = self.spec.ignore_index
        if self.spec.num_classes == 1:
            masks = np.where(masks == ignore, masks, (masks > 0).astype(masks.dtype))
        return prediction_grid(images, masks, preds, self.colormap, ignore,
                               class_names=self.class_names)


def _initial_state(config, spec, dp, image_shape, ckpt):
    """(state, start step, config): restored from the newest checkpoint, or fresh."""
    init_fn = functools.partial(init_state, spec, image_shape=image_shape,
                                rng_impl=config.get("init_rng_impl"))
    rng = np.int32(config.seed)
    start = ckpt.latest_step()
    if start is not None:
        meta = ckpt.meta(start)
        saved = meta["config"]
        if saved.get("model") != config.model:
            raise ValueError(f"the workdir holds a {saved.get('model')} checkpoint but the config "
                             f"asks for {config.model}; use another --workdir")
        with config.ignore_type():
            config.preprocess = saved.get("preprocess", config.preprocess)
        shapes = jax.eval_shape(init_fn, rng)
        state = ckpt.restore_state(start, abstract(shapes, dp.replicated))
        log.info("resuming from step %d (data position %d)", start, meta["data_step"])
        return state, int(meta["data_step"]), config
    state = dp.init(init_fn, rng)
    if config.get("pretrained"):
        state, config = _with_pretrained(config, spec, state, dp)
    return state, 0, config


def _with_pretrained(config, spec, state, dp):
    from fluxseg.weights import init_from_pretrained  # lazy: optional dependency path
    host = to_host(state.variables())
    variables, preprocess_name, report = init_from_pretrained(
        config.model, host, config.pretrained, path=config.get("pretrained_path"),
        dont_load=tuple(config.get("pretrained_dont_load", ()) or ()))
    log.info("pretrained %s weights: %s", config.pretrained, report)
    params = variables["params"]
    fresh = TrainState(step=np.zeros((), np.int32), params=params,
                       batch_stats=variables.get("batch_stats", {}),
                       opt_state=spec.tx.init(params), rng=to_host(state.rng))
    with config.ignore_type():
        config.preprocess = preprocess_name
    return dp.replicate(fresh), config


def train_and_evaluate(config, workdir: str) -> dict:
    """Trains ``config`` in ``workdir`` (resuming if it holds checkpoints).

    Returns the final eval metrics (plus 'step' and, if SIGTERM stopped the
    run early, 'preempted': True). Raises NonFiniteLossError on a NaN/Inf loss.
    """
    data = _data()
    info = data.info(config.data)
    config = config_lib.resolve(config, info)
    with config.ignore_type():  # the checkpoint's config records the model's input channels
        config.data.channels = int(info.channels)
    dp = DataParallel(config.parallel)
    dp.check_batch_size(int(config.batch_size))
    dp.check_batch_size(int(config.eval_batch_size))
    total = int(config.num_train_steps)
    spec = build.step_spec(config, axis_name=dp.axis_name, total_steps=total)
    image_shape = _image_shape(config, info)
    is_main = jax.process_index() == 0
    ckpt = Checkpoints(workdir, keep_last=config.keep_last, keep_best=config.keep_best,
                       best_metric=config.best_metric, best_mode=config.best_mode,
                       async_save=config.async_checkpoints)
    writer = Writer(workdir, enabled=is_main)
    preemption = _Preemption().__enter__()  # SIGTERM from here on: save after the next step
    try:
        state, step, config = _initial_state(config, spec, dp, image_shape, ckpt)
        # Pretrained weights (or the checkpoint) decide the preprocessing.
        spec = dataclasses.replace(spec, preprocess=build.preprocess_fn(config))
        if is_main:
            with open(os.path.join(workdir, "config.json"), "w") as f:
                f.write(config.to_json_best_effort(indent=2))
        p_train = dp.train_step(functools.partial(train_step, spec=spec))
        p_eval = dp.eval_step(functools.partial(eval_step, spec=spec))
        batches = data.train_iterator(config.data, global_batch_size=int(config.batch_size),
                                      seed=int(config.seed), start_step=step)
        batches = dp.prefetch(_model_inputs(b, spec.task) for b in batches)
        result = _train(config, workdir, state, step, total, spec, dp, info, image_shape, ckpt,
                        writer, p_train, p_eval, batches, preemption)
        ckpt.wait()
        return result
    finally:
        preemption.__exit__(None, None, None)
        ckpt.close()
        writer.close()


def _train(config, workdir, state, step, total, spec, dp, info, image_shape, ckpt, writer,
           p_train, p_eval, batches, preemption) -> dict:
    from tqdm.auto import tqdm

    is_main = jax.process_index() == 0
    log_every, eval_every = int(config.log_every_steps), int(config.eval_every_steps)
    ckpt_every = int(config.checkpoint_every_steps)
    bar = tqdm(total=total, initial=step, unit="step", dynamic_ncols=True, desc="train",
               disable=not (is_main and config.progress_bar))
    pictures = _Pictures(config, info)
    acc, since_step, since_time = None, step, time.time()
    result: dict = {"step": step}
    per_run = int(config.get("max_steps_per_run", 0) or 0)
    stop_at = min(total, step + per_run) if per_run > 0 else total
    while step < total:
        state, m = p_train(state, next(batches))
        acc = metrics_lib.add(acc, m)
        step += 1
        bar.update(1)
        last = step == total
        is_log = step % log_every == 0 or last
        is_eval = last or (eval_every > 0 and step % eval_every == 0)
        is_ckpt = last or (ckpt_every > 0 and step % ckpt_every == 0)
        stop = preemption.requested(at_sync_point=is_log) or (step == stop_at and not last)
        if not (is_log or is_eval or is_ckpt or stop):
            continue
        # Fetching the summed metrics waits for the device: the only sync point.
        train_m = _train_summary(acc, step - since_step, since_step + 1, step, ckpt)
        elapsed = time.time() - since_time
        train_m["images_per_s"] = (step - since_step) * int(config.batch_size) / max(elapsed, 1e-9)
        train_m["learning_rate"] = float(_learning_rate(config, step))
        writer.scalars(step, "train", train_m)
        bar.set_postfix(loss=f"{train_m['loss']:.4f}", img_s=f"{train_m['images_per_s']:.1f}")
        acc, since_step = None, step
        eval_m = None
        if is_eval:
            variables = state.variables()
            eval_m, grid = run_eval(p_eval, variables, config, dp, spec, info,
                                    picture_fn=pictures.for_variables(variables))
            writer.scalars(step, config.data.eval_split, eval_m)
            if grid is not None:
                writer.image(step, "predictions", grid)
            bar.write(_format_eval(step, config.data.eval_split, eval_m))
            result = {"step": step, **eval_m}
        if is_ckpt or is_eval or stop:
            ckpt.save(state, _meta(config, step, image_shape, dp), metrics=eval_m)
        writer.flush()
        since_time = time.time()
        if stop:
            why = "SIGTERM" if preemption.flag else "max_steps_per_run"
            bar.write(f"stopped by {why} at step {step}; checkpoint saved in {workdir}; "
                      "run the same command again to continue")
            result = {**result, "step": step, "preempted": True}
            break
    bar.close()
    return result


def _learning_rate(config, step: int) -> float:
    from fluxseg.train import optim
    accum = int(config.optim.get("accum_steps", 1) or 1)
    schedule = optim.schedule(config.optim, max(int(config.num_train_steps) // accum, 1))
    return float(schedule(max(step - 1, 0) // accum))


def _format_eval(step: int, split: str, m: dict) -> str:
    keys = [k for k in ("mIoU", "pixel_acc", "mean_acc", "fwIoU", "top1", "top5",
                        "pixel_error", "rand_error", "loss") if k in m]
    return f"step {step} {split}: " + ", ".join(f"{k}={m[k]:.4f}" for k in keys)


def evaluate(config, workdir: str, step: Optional[int] = None, split: Optional[str] = None) -> dict:
    """Evaluates the checkpoint of ``workdir`` (newest, or ``step``) on ``split``.

    ``config=None`` uses the checkpoint's own config; a given config supplies
    the data settings (e.g. another split or data_dir). Writes the metrics to
    <workdir>/metrics.jsonl and returns them.
    """
    ckpt = Checkpoints(workdir, read_only=True, async_save=False)
    try:
        step = step if step is not None else ckpt.latest_step()
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {workdir}/checkpoints to evaluate")
        meta = ckpt.meta(step)
        saved = ml_collections.ConfigDict(meta["config"])
        if config is not None:
            with saved.ignore_type():
                saved.data = config.data
        config = saved
        data = _data()
        info = data.info(config.data)
        dp = DataParallel(config.parallel)
        dp.check_batch_size(int(config.eval_batch_size))
        spec = build.step_spec(config, axis_name=dp.axis_name, with_optimizer=False)
        variables = ckpt.restore_model_variables(step, spec.model, tuple(meta["image_shape"]), dp.replicated)
    finally:
        ckpt.close()
    p_eval = dp.eval_step(functools.partial(eval_step, spec=spec))
    split = split or config.data.eval_split
    scores, _ = run_eval(p_eval, variables, config, dp, spec, info, split=split)
    writer = Writer(workdir, enabled=jax.process_index() == 0)
    writer.scalars(step, f"eval_{split}", scores)
    writer.close()
    return {"step": int(step), **scores}
