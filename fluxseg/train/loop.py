"""The training loop: ``train_and_evaluate(config, workdir)``, ``evaluate``.

Side effects live here (devices, files, signals, progress); the step itself
is in step.py. A run goes one way: resolve the config, initialise once
(a checkpoint's state, or a fresh one with optional pretrained weights; either
decides the preprocessing), build the step spec once, then train. The loop
never waits for the device except at log, eval and checkpoint steps:
per-step metrics are summed on device and fetched there. Re-running the same
command in the same workdir resumes from the newest checkpoint, including the
position in the data stream (the data position is the step).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import time
from typing import Any, Callable, Iterator, Optional

import jax
import ml_collections
import numpy as np

from fluxseg.data.device_augment import step_inputs
from fluxseg.models.layers import center_crop
from fluxseg.runtime import backend, distributed, environment
from fluxseg.tasks import metrics as metrics_lib
from fluxseg.train import build, config as config_lib, optim
from fluxseg.train.checkpoint import CheckpointMismatchError, Checkpoints, abstract, restore
from fluxseg.train.data_wait import DataWait
from fluxseg.train.parallel import DataParallel, to_host
from fluxseg.train.preemption import Preemption
from fluxseg.train.step import StepSpec, TrainState, eval_step, init_state, predict_step, train_step
from fluxseg.train.writers import Writer
from fluxseg.viz import draw

log = logging.getLogger("fluxseg.train")


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or Inf; the run stopped without saving."""


def _data():
    from fluxseg import data  # imports TensorFlow (kept off the accelerators)
    return data


def _image_shape(config, info) -> tuple[int, int, int]:
    h, w = (int(v) for v in config.data.crop_size)
    channels = int(info.channels)  # data.channels, else as stored: what the batches carry
    return (h, w, channels)


def run_eval(p_eval, variables, config, dp: DataParallel, spec: StepSpec, *, split=None,
             picture_fn=None) -> tuple[dict, Optional[np.ndarray]]:
    """The task's scores and the mean loss over the whole eval split (every
    example once), and a picture of the first batch if ``picture_fn`` is given."""
    split = split or config.data.eval_split
    batches = _data().eval_iterator(config.data, split,
                                    global_batch_size=int(config.eval_batch_size))
    task = spec.task
    per_image = _per_image_sums(spec, variables) if task.per_image_metrics else None
    sums, image_sums, first = None, None, None
    for batch in batches:
        first = batch if first is None else first
        sums = metrics_lib.add(sums, p_eval(variables, dp.put_batch(task.inputs(batch))))
        if per_image is not None:
            image_sums = per_image(batch, image_sums)
    if sums is None:
        raise ValueError(f"the eval split {split!r} of {config.data.name} is empty")
    sums = to_host(sums)
    terms = np.asarray(sums.pop("loss_terms"), np.float64)
    scores = task.scores({**sums, **distributed.sum_over_processes(image_sums or {})})
    scores["loss"] = float(np.sum(terms[:, 0] / np.maximum(terms[:, 1], 1e-12)))
    grid = picture_fn(first) if picture_fn is not None else None
    return scores, grid


def _per_image_sums(spec, variables) -> Callable[[dict, Optional[dict]], dict]:
    """(batch, sums so far) -> the sums with the task's per-image sums (the ISBI errors)
    of the batch's valid rows added, from class ids predicted on this process's host.
    Added image by image, in the split's order, as `fluxseg eval` adds them."""
    predict = backend.jit(functools.partial(predict_step, spec=spec))
    host_vars = to_host(variables)

    def count(batch, total):
        ids = np.asarray(predict(host_vars, {"image": batch["image"]})[0])
        for pred, target, valid in zip(ids, np.asarray(batch[spec.task.target_key]), batch["valid"]):
            # A padding row is scored as wholly unlabelled: the same sums on every process.
            target = target if valid else np.full_like(target, spec.task.ignore_index)
            total = metrics_lib.add(total, spec.task.image_sums(pred, target))
        return total
    return count


class _Pictures:
    """Draws image | truth | prediction rows of the first eval examples of a
    segmentation run (process 0 only), truth as it is scored.

    The predict function is compiled once per run; each eval passes the
    current variables, copied to the host (no other process takes part).
    """

    def __init__(self, config, info, spec: StepSpec):
        self.enabled = (jax.process_index() == 0 and spec.task.dense
                        and int(config.num_eval_images) > 0)
        self.n, self.colormap, self.task = int(config.num_eval_images), info.colormap, spec.task
        # Eval-mode apply: BatchNorm reads its running statistics and never
        # reduces over the data-parallel axis, so the run's spec serves as is.
        self.predict = backend.jit(functools.partial(predict_step, spec=spec))

    def for_variables(self, variables) -> Optional[Callable]:
        if not self.enabled:
            return None
        host_vars = to_host(variables)
        return lambda batch: self.draw(host_vars, batch)

    def draw(self, host_vars, batch):
        keep = np.asarray(batch["valid"])
        images = batch["image"][keep][:self.n]
        targets = np.asarray(batch["mask"])[keep][:self.n]
        if len(images) == 0:
            return None
        preds = np.asarray(self.predict(host_vars, {"image": images})[0])
        # The unpadded U-Net predicts the centre: the truth is cropped to it, and binarised
        # for a binary head, as it is scored.
        truth = self.task.metric_target(center_crop(targets, preds.shape[1:3]))
        return draw.prediction_grid(images, truth, preds, self.colormap, self.task.ignore_index,
                                    class_names=self.task.names)


@dataclasses.dataclass
class _Run:
    """Everything one training run holds; built once by ``_start``."""
    config: ml_collections.ConfigDict   # resolved; preprocess is the run's own
    workdir: str
    dp: DataParallel
    spec: StepSpec
    lr: Callable                        # the optimiser's own schedule, by update
    info: Any                           # fluxseg.data.DataInfo
    image_shape: tuple
    ckpt: Checkpoints
    writer: Writer
    preemption: Preemption
    state: TrainState
    step: int
    p_train: Callable
    p_eval: Callable
    batches: Iterator[dict]
    pictures: _Pictures

    @property
    def total(self) -> int:
        return int(self.config.num_train_steps)

    def meta(self) -> dict:
        return {"step": int(self.step), "config": json.loads(self.config.to_json_best_effort()),
                "image_shape": list(self.image_shape), "num_devices": self.dp.num_devices,
                "process_count": jax.process_count(), "parallel": self.dp.mode}


def _initialise(config, module, tx, dp, image_shape, ckpt) -> tuple[TrainState, int, str]:
    """(state, first step, preprocessing name): the newest checkpoint's, or fresh.

    A fresh state gets the pretrained weights the config names, whose
    preprocessing then becomes the run's; a resumed one keeps its run's. A
    damaged newest checkpoint: see ``Checkpoints.resume`` (config.resume_damaged).
    """
    init_fn = functools.partial(init_state, module, tx, image_shape=image_shape,
                                rng_impl=config.init_rng_impl)
    rng = np.int32(config.seed)

    def same_model(meta):
        saved = meta["config"]["model"]
        if saved != config.model:
            raise CheckpointMismatchError(f"the workdir holds a {saved} checkpoint but the config "
                                          f"asks for {config.model}; use another --workdir")

    found = ckpt.resume(lambda: abstract(jax.eval_shape(init_fn, rng), dp.replicated),
                        on_damaged=config.resume_damaged, check_meta=same_model)
    if found is not None:
        state, start, meta = found
        log.info("resuming from step %d", start)
        return state, int(start), meta["config"]["preprocess"]
    state = dp.init(init_fn, rng)
    if config.pretrained is None:
        return state, 0, config.preprocess
    return _with_pretrained(config, module, tx, state, dp)


def _with_pretrained(config, module, tx, state, dp) -> tuple[TrainState, int, str]:
    from fluxseg.weights import init_from_pretrained  # lazy: optional dependency path
    # The module itself, not its name: its options (a GAP classifier's
    # backbone, say) decide which weights fill which subtree.
    variables, preprocess_name, report = init_from_pretrained(
        module, to_host(state.variables()), config.pretrained,
        path=config.pretrained_path, dont_load=tuple(config.pretrained_dont_load))
    log.info("pretrained %s weights: %s", config.pretrained, report)
    params = variables["params"]
    fresh = TrainState(step=np.zeros((), np.int32), params=params,
                       batch_stats=variables.get("batch_stats", {}),
                       opt_state=tx.init(params), rng=to_host(state.rng))
    return dp.replicate(fresh), 0, preprocess_name


def _start(config, workdir: str, stack: contextlib.ExitStack) -> _Run:
    """Resolves the config, initialises the state and builds the step once."""
    data = _data()
    config_lib.check(config)
    info = data.info(config.data)
    config = config_lib.resolve(config, info)
    with config.ignore_type():  # the checkpoint's config records the model's input channels
        config.data.channels = int(info.channels)
        config.data.augment_on = data.config.augment_on(config.data)  # and where it augmented
    dp = DataParallel(config.parallel)
    dp.check_batch_size(int(config.batch_size))
    dp.check_batch_size(int(config.eval_batch_size))
    preemption = stack.enter_context(Preemption())  # SIGTERM from here on: save, then stop
    ckpt = Checkpoints(workdir, keep_last=config.keep_last, keep_best=config.keep_best,
                       best_metric=config.best_metric, best_mode=config.best_mode,
                       async_save=config.async_checkpoints)
    stack.callback(ckpt.close)
    writer = Writer(workdir, enabled=jax.process_index() == 0)
    stack.callback(writer.close)
    image_shape = _image_shape(config, info)
    module = build.model(config, dp.axis_name)
    tx, lr = build.optimizer(config, module)
    state, step, preprocess = _initialise(config, module, tx, dp, image_shape, ckpt)
    config = config_lib.with_preprocess(config, preprocess)
    spec = build.step_spec(config, class_names=info.class_names, axis_name=dp.axis_name,
                           module=module, tx=tx)
    if jax.process_index() == 0:
        with open(os.path.join(workdir, "config.json"), "w") as f:
            f.write(config.to_json_best_effort(indent=2))
        with open(os.path.join(workdir, "environment.jsonl"), "a") as f:  # one line per (re)start
            f.write(json.dumps(environment.record(step)) + "\n")
    batches = data.train_iterator(config.data, global_batch_size=int(config.batch_size),
                                  seed=int(config.seed), start_step=step)
    return _Run(config=config, workdir=workdir, dp=dp, spec=spec, lr=lr, info=info,
                image_shape=image_shape, ckpt=ckpt, writer=writer, preemption=preemption,
                state=state, step=step,
                p_train=dp.train_step(functools.partial(train_step, spec=spec)),
                p_eval=dp.eval_step(functools.partial(eval_step, spec=spec)),
                batches=dp.prefetch(step_inputs(spec.task, b) for b in batches),
                pictures=_Pictures(config, info, spec))


def train_and_evaluate(config, workdir: str) -> dict:
    """Trains ``config`` in ``workdir`` (resuming if it holds checkpoints).

    Returns the final eval metrics plus 'step'; a run stopped before
    num_train_steps also has 'stopped': 'SIGTERM' (and 'preempted': True) or
    'max_steps_per_run'. Raises NonFiniteLossError on a NaN/Inf loss.
    """
    with contextlib.ExitStack() as stack:
        run = _start(config, workdir, stack)
        result = _train(run)
        run.ckpt.wait()
        return result


def _train(run: _Run) -> dict:
    from tqdm.auto import tqdm

    c = run.config
    log_every, eval_every = int(c.log_every_steps), int(c.eval_every_steps)
    ckpt_every, per_run = int(c.checkpoint_every_steps), int(c.max_steps_per_run)
    bar = tqdm(total=run.total, initial=run.step, unit="step", dynamic_ncols=True, desc="train",
               disable=not (jax.process_index() == 0 and c.progress_bar))
    stop_at = min(run.total, run.step + per_run) if per_run > 0 else run.total
    acc, since_step, since_time = None, run.step, time.time()
    wait = DataWait()
    result: dict = {"step": run.step}
    while run.step < run.total:
        run.state, m = run.p_train(run.state, wait.next(run.batches))
        acc = metrics_lib.add(acc, m)
        run.step += 1
        bar.update(1)
        step, last = run.step, run.step == run.total
        is_log = step % log_every == 0 or last
        is_eval = last or (eval_every > 0 and step % eval_every == 0)
        is_ckpt = last or (ckpt_every > 0 and step % ckpt_every == 0)
        sigterm = run.preemption.requested(at_sync_point=is_log)
        stop = sigterm or (step == stop_at and not last)
        if not (is_log or is_eval or is_ckpt or stop):
            continue
        # Fetching the summed metrics waits for the device: the only sync point.
        train_m = _train_summary(run, acc, since_step)
        train_m["images_per_s"] = ((step - since_step) * int(c.batch_size)
                                   / max(time.time() - since_time, 1e-9))
        train_m["data_wait"] = wait.fraction()  # of the interval, blocked on the input pipeline
        run.writer.scalars(step, "train", train_m)
        bar.set_postfix(loss=f"{train_m['loss']:.4f}", img_s=f"{train_m['images_per_s']:.1f}",
                        data_wait=f"{train_m['data_wait']:.0%}")
        acc, since_step = None, step
        eval_m = _eval_and_log(run, bar) if is_eval else None
        if eval_m is not None:
            result = {"step": step, **eval_m}
        if is_ckpt or is_eval or stop:
            run.ckpt.save(run.state, run.meta(), metrics=eval_m)
        run.writer.flush()
        since_time = time.time()
        wait.reset()
        if stop:
            why = "SIGTERM" if sigterm else "max_steps_per_run"
            bar.write(f"stopped by {why} at step {step}; checkpoint saved in {run.workdir}; "
                      "run the same command again to continue")
            result = {**result, "step": step, "stopped": why}
            if sigterm:
                result["preempted"] = True
            break
    bar.close()
    return result


def _train_summary(run: _Run, acc: dict, since_step: int) -> dict:
    """Mean loss, accuracy and learning rate since the last log; raises on NaN/Inf."""
    m, steps = to_host(acc), run.step - since_step
    if int(m["nonfinite"]) > 0:
        good = run.ckpt.latest_step()
        where = (f"the last good checkpoint is step {good} in {run.ckpt.manager.directory}"
                 if good is not None else "no checkpoint had been saved yet")
        raise NonFiniteLossError(
            f"the training loss became NaN/Inf between steps {since_step + 1} and {run.step} "
            f"({int(m['nonfinite'])} of {steps} steps); the run stopped without saving it, "
            f"{where}. Try a lower optim.learning_rate, set optim.grad_clip_norm, or use "
            "dtype='float32'.")
    return {"loss": float(m["loss"]) / steps,
            "accuracy": float(m["correct"]) / max(int(m["count"]), 1),
            "learning_rate": optim.learning_rate_at(run.config.optim, run.lr, run.step)}


def _eval_and_log(run: _Run, bar) -> dict:
    variables = run.state.variables()
    split = run.config.data.eval_split
    scores, grid = run_eval(run.p_eval, variables, run.config, run.dp, run.spec,
                            picture_fn=run.pictures.for_variables(variables))
    run.writer.scalars(run.step, split, scores)
    if grid is not None:
        run.writer.image(run.step, "predictions", grid)
    shown = [*run.spec.task.headline, "loss"]
    bar.write(f"step {run.step} {split}: " + ", ".join(f"{k}={scores[k]:.4f}" for k in shown))
    return scores


def evaluate(config, workdir: str, step: Optional[int] = None, split: Optional[str] = None) -> dict:
    """Evaluates the checkpoint of ``workdir`` (newest, or ``step``) on ``split`` the
    way the training loop does (batches of data.eval_size, the same scores).

    ``config=None`` uses the checkpoint's own config; a given config supplies
    the data settings (e.g. another split or data_dir) and is left as it is.
    Writes the metrics to <workdir>/metrics.jsonl and returns them.
    """
    restored = restore(workdir, step)  # its config is a fresh object: changing it is safe
    run_config = restored.config
    if config is not None:
        config_lib.check(config)
        data_cfg = ml_collections.ConfigDict(config.data.to_dict())
        with data_cfg.ignore_type():
            if data_cfg.channels is None:  # the channels the model takes
                data_cfg.channels = run_config.data.channels
            run_config.data = data_cfg
    info = _data().info(run_config.data)
    dp = DataParallel(run_config.parallel)
    dp.check_batch_size(int(run_config.eval_batch_size))
    spec = build.step_spec(run_config, class_names=info.class_names, axis_name=dp.axis_name,
                           with_optimizer=False, module=restored.model)
    variables = dp.replicate(to_host(restored.variables))
    p_eval = dp.eval_step(functools.partial(eval_step, spec=spec))
    split = split or run_config.data.eval_split
    scores, _ = run_eval(p_eval, variables, run_config, dp, spec, split=split)
    with contextlib.closing(Writer(workdir, enabled=jax.process_index() == 0)) as writer:
        writer.scalars(restored.step, f"eval_{split}", scores)
    return {"step": restored.step, **scores}
