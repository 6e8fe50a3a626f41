"""Orbax checkpoints: save during training, restore to resume or to predict.

Layout: ``<workdir>/checkpoints/<step>/`` with three items
  variables  {'params', 'batch_stats'}   (all a notebook needs)
  opt        {'step', 'opt_state', 'rng'}
  meta       JSON: the resolved config, the data position, the device count
Saves are asynchronous; the newest ``keep_last`` checkpoints and the best
``keep_best`` by an eval metric are kept. Arrays are saved replicated and
restored onto whatever sharding the caller asks for, so a checkpoint written
on 8 devices (or 2 hosts) restores on 1.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Callable, Optional

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from fluxseg.train import config as config_lib
from fluxseg.train.step import TrainState

ITEMS = ("variables", "opt", "meta")


class _QuietOrbax(logging.Filter):
    # Orbax warns on every save without metrics (periodic saves have none by
    # design) and on every read-only manager (restore opens one on purpose).
    NOISE = ("did not provide metrics", "Given directory is read only",
             "read_only=True, setting")

    def filter(self, record):
        return not any(n in record.getMessage() for n in self.NOISE)


logging.getLogger("absl").addFilter(_QuietOrbax())


def checkpoint_dir(workdir: str) -> str:
    return os.path.join(os.path.abspath(workdir), "checkpoints")


class Checkpoints:
    """A thin CheckpointManager for TrainState + meta.

    A training run passes its config's checkpoint keys (keep_last, keep_best,
    best_metric, best_mode, async_checkpoints); ``reader`` opens a workdir to read.
    """

    def __init__(self, workdir: str, *, keep_last: int, keep_best: int, best_metric: str,
                 best_mode: str, async_save: bool, read_only: bool = False):
        self.best_metric = best_metric
        policies = [ocp.checkpoint_managers.LatestN(n=max(int(keep_last), 1))]
        get = lambda m: float(m[best_metric])  # noqa: E731
        if keep_best:
            policies.append(ocp.checkpoint_managers.BestN(
                get_metric_fn=get, reverse=(best_mode == "min"), n=int(keep_best),
                keep_checkpoints_without_metrics=False))
        options = ocp.CheckpointManagerOptions(
            best_fn=get if keep_best else None, best_mode=best_mode, read_only=read_only,
            enable_async_checkpointing=async_save, create=not read_only,
            preservation_policy=None if read_only else
            ocp.checkpoint_managers.AnyPreservationPolicy(policies))
        self.manager = ocp.CheckpointManager(checkpoint_dir(workdir), item_names=ITEMS,
                                             options=options)

    @classmethod
    def reader(cls, workdir: str) -> "Checkpoints":
        """The checkpoints of ``workdir``, read-only (keeping and ranking play no part)."""
        return cls(workdir, keep_last=1, keep_best=0, best_metric="", best_mode="max",
                   async_save=False, read_only=True)

    def latest_step(self) -> Optional[int]:
        return self.manager.latest_step()

    def best_step(self) -> Optional[int]:
        return self.manager.best_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def save(self, state: TrainState, meta: dict, metrics: Optional[dict] = None) -> bool:
        """Starts an async save of ``state`` at ``meta['step']``; every process calls it."""
        if metrics is not None:
            metrics = {k: float(v) for k, v in metrics.items()
                       if isinstance(v, (int, float, np.floating, np.integer))}
            if self.best_metric not in metrics:
                metrics = None
        args = ocp.args.Composite(
            variables=ocp.args.StandardSave({"params": state.params,
                                             "batch_stats": state.batch_stats}),
            opt=ocp.args.StandardSave({"step": state.step, "opt_state": state.opt_state,
                                       "rng": state.rng}),
            meta=ocp.args.JsonSave(meta))
        return self.manager.save(int(meta["step"]), args=args, metrics=metrics, force=True)

    def meta(self, step: int) -> dict:
        return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

    def restore_variables(self, step: int, abstract_variables) -> dict:
        """{'params', 'batch_stats'} onto the shardings of ``abstract_variables``."""
        out = self.manager.restore(step, args=ocp.args.Composite(
            variables=ocp.args.StandardRestore(abstract_variables)))
        return out["variables"]

    def restore_model_variables(self, step: int, model, image_shape, sharding) -> dict:
        """``model``'s variables ({'params'[, 'batch_stats']}) of ``step`` onto ``sharding``.

        The target shapes come from ``model.init`` on one image of ``image_shape``
        (the meta's), traced only; models without BatchNorm get no 'batch_stats'.
        """
        shapes = jax.eval_shape(
            lambda: model.init(jax.random.PRNGKey(0), jax.numpy.zeros((1, *image_shape)), train=False))
        target = {"params": shapes["params"], "batch_stats": shapes.get("batch_stats", {})}
        variables = self.restore_variables(step, abstract(target, sharding))
        if not variables["batch_stats"]:
            variables = {"params": variables["params"]}
        return variables

    def restore_state(self, step: int, abstract_state: TrainState) -> TrainState:
        """The full TrainState onto the shardings of ``abstract_state``."""
        out = self.manager.restore(step, args=ocp.args.Composite(
            variables=ocp.args.StandardRestore({"params": abstract_state.params,
                                                "batch_stats": abstract_state.batch_stats}),
            opt=ocp.args.StandardRestore({"step": abstract_state.step,
                                          "opt_state": abstract_state.opt_state,
                                          "rng": abstract_state.rng})))
        v, o = out["variables"], out["opt"]
        return TrainState(step=o["step"], params=v["params"], batch_stats=v["batch_stats"],
                          opt_state=o["opt_state"], rng=o["rng"])

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()


def abstract(tree: Any, sharding) -> Any:
    """ShapeDtypeStructs of ``tree`` (arrays or eval_shape output) placed on ``sharding``."""
    return jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)


@dataclasses.dataclass(eq=False)  # compared and hashed by identity: predictors are cached per object
class Restored:
    """A trained model ready for a notebook: ``model.apply(variables, x)``.

    model: the flax module (no cross-device BatchNorm axis).
    variables: {'params', 'batch_stats'?} on one device.
    config: the resolved training config (ConfigDict), migrated to today's keys;
        config.data.channels is the input channels the model takes.
    preprocess: uint8/float RGB [...,H,W,3] -> model input (the weights' own).
    step: the training step of the checkpoint.
    """
    model: Any
    variables: dict
    config: ml_collections.ConfigDict
    preprocess: Callable
    step: int
    workdir: str


def restore(workdir: str, step: Optional[int] = None, *, device=None) -> Restored:
    """Loads the checkpoint of ``workdir`` (the latest, or ``step``) onto one device."""
    from fluxseg.train import build

    ckpt = Checkpoints.reader(workdir)
    try:
        steps = ckpt.all_steps()
        if not steps:
            raise FileNotFoundError(
                f"no checkpoint in {checkpoint_dir(workdir)}; train first with "
                f"`python launch.py --workdir {workdir}`")
        if step is None:
            step = max(steps)
        elif step not in steps:
            raise FileNotFoundError(f"no checkpoint for step {step} in {checkpoint_dir(workdir)}; "
                                    f"available steps: {sorted(steps)}")
        meta = ckpt.meta(step)
        config = config_lib.saved_config(meta["config"], meta["image_shape"])
        model = build.model(config)
        sharding = jax.sharding.SingleDeviceSharding(device or jax.local_devices()[0])
        variables = ckpt.restore_model_variables(step, model, tuple(meta["image_shape"]), sharding)
    finally:
        ckpt.close()
    return Restored(model=model, variables=variables, config=config,
                    preprocess=build.preprocess_fn(config), step=int(step), workdir=workdir)
