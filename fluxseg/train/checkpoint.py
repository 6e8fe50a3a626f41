"""Orbax checkpoints: save during training, restore to resume or to predict.

Layout: ``<workdir>/checkpoints/<step>/`` with three items
  variables  {'params', 'batch_stats'}   (all a notebook needs)
  opt        {'step', 'opt_state', 'rng'}
  meta       JSON: the resolved config, the data position, the device count
and ``fluxseg_checksums.json``, the size and CRC-32 of each of their files
(fluxseg/train/checksums.py). Saves are asynchronous; the newest
``keep_last`` checkpoints and the best ``keep_best`` by an eval metric are
kept. Arrays are saved replicated and restored onto whatever sharding the
caller asks for, so a checkpoint written on 8 devices (or 2 hosts) restores
on 1. Every read checks the files against the checksum list first; a step
that cannot be read back is reported by name (fluxseg/train/damage.py), never
silently skipped or returned as garbage.
"""
from __future__ import annotations

import dataclasses
import gc
import glob
import logging
import os
import sys
from typing import Any, Callable, Optional

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from fluxseg.train import checksums, config as config_lib, damage
from fluxseg.train.damage import (RESUME_DAMAGED, CheckpointMismatchError,  # noqa: F401  (re-exported)
                                  DamagedCheckpointError, Problem)
from fluxseg.train.step import TrainState

ITEMS = ("variables", "opt", "meta")
INFERENCE_ITEMS = ("variables", "meta")  # what restore and evaluate read
UNFINISHED = ".orbax-checkpoint-tmp"     # Orbax's name for a step (or item) still being written
log = logging.getLogger("fluxseg.train")


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


class _Quiet:
    """Keeps the coroutines Orbax leaves behind after a failed read from printing their
    tracebacks ("Exception ignored in ..."): the failure is reported once, in words."""

    def __enter__(self):
        self.hook, sys.unraisablehook = sys.unraisablehook, lambda unraisable: None

    def __exit__(self, *exc):
        gc.collect()  # the abandoned coroutines are finalised here, while the hook is quiet
        sys.unraisablehook = self.hook


class Checkpoints:
    """A thin CheckpointManager for TrainState + meta.

    A training run passes its config's checkpoint keys (keep_last, keep_best,
    best_metric, best_mode, async_checkpoints); ``reader`` opens a workdir to read.
    """

    def __init__(self, workdir: str, *, keep_last: int, keep_best: int, best_metric: str,
                 best_mode: str, async_save: bool, read_only: bool = False):
        self.best_metric = best_metric
        self.workdir, self.async_save = workdir, async_save
        self._saving: Optional[int] = None  # the step whose save Orbax is finishing
        policies = [ocp.checkpoint_managers.LatestN(n=max(int(keep_last), 1))]
        get = lambda m: float(m[best_metric])  # noqa: E731
        if keep_best:
            policies.append(ocp.checkpoint_managers.BestN(
                get_metric_fn=get, reverse=(best_mode == "min"), n=int(keep_best),
                keep_checkpoints_without_metrics=False))
        # The checksum list is taken on Orbax's finalising thread, once the items are
        # complete and before the step directory gets its final name: off the training
        # thread, and a committed step always has its list.
        writer = (ocp.AsyncOptions(post_finalization_callback=self._write_checksums)
                  if async_save and not read_only else None)
        options = ocp.CheckpointManagerOptions(
            best_fn=get if keep_best else None, best_mode=best_mode, read_only=read_only,
            enable_async_checkpointing=async_save, create=not read_only, async_options=writer,
            preservation_policy=None if read_only else
            ocp.checkpoint_managers.AnyPreservationPolicy(policies))
        self.manager = ocp.CheckpointManager(checkpoint_dir(workdir), item_names=ITEMS,
                                             options=options)

    @property
    def directory(self) -> str:
        return checkpoint_dir(self.workdir)

    def step_dir(self, step: int) -> str:
        return os.path.join(self.directory, str(step))

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
        # Orbax would wait for the previous save here anyway; waiting first keeps the
        # step whose checksum list the finalising thread writes unambiguous.
        self.manager.wait_until_finished()
        self._saving = int(meta["step"])
        saved = self.manager.save(self._saving, args=args, metrics=metrics, force=True)
        if saved and not self.async_save:
            self._write_checksums()  # already committed: the list goes into the final directory
        return saved

    def _write_checksums(self) -> None:
        step = self._saving
        if step is None or jax.process_index() != 0:  # one writer; Orbax ran a barrier before
            return
        pending = sorted(glob.glob(os.path.join(self.directory, f"{step}{UNFINISHED}*")))
        try:
            checksums.write(pending[-1] if pending else self.step_dir(step), ITEMS)
        except Exception as e:  # noqa: BLE001  a missing list must never cost the checkpoint
            log.warning("could not write the checksum list of checkpoint step %d (%s); "
                        "it will be read without that check", step, damage.one_line(e))

    # -- reading, with damage reported -----------------------------------------
    def _attempt(self, step: int, items, load: Callable[[int], Any]) -> tuple[Optional[Problem], Any]:
        """(None, load(step)) if ``step``'s files of ``items`` are as saved and load works, else (why, None).

        Every process takes part and gets the same verdict (damage.agreed),
        first on the checksums, so that all of them load or none does: Orbax
        ends each restore with a barrier that a process left out would hang.
        """
        found = checksums.problems(self.step_dir(step), items)
        problem = damage.agreed(Problem(damage.listed(found), files_changed=True) if found else None)
        if problem is not None:
            return problem, None
        result = None
        with _Quiet():  # handled inside, so that the failed read's leftovers can be collected
            try:
                result = load(step)
            except CheckpointMismatchError:
                raise
            except Exception as e:  # noqa: BLE001  whatever Orbax raises for unreadable files
                problem = Problem(damage.one_line(e), files_intact=found == [])
        problem = damage.agreed(problem)
        return problem, (result if problem is None else None)

    def _unreadable(self, step: int, items, load, problem: Problem) -> Exception:
        """The error for ``step``: a mismatch if its files are intact, else the damage with the
        steps that ``load`` can read instead (found by trying each)."""
        if problem.files_intact:
            return CheckpointMismatchError(damage.mismatch_message(self.workdir, step, self.step_dir(step), problem))
        intact, others = [], {}
        for s in sorted(self.all_steps(), reverse=True):
            if s != step:
                p, _ = self._attempt(s, items, load)
                if p is None:
                    intact.append(s)
                else:
                    others[s] = p
        return DamagedCheckpointError(
            damage.message(self.workdir, step, self.step_dir(step), problem, intact, others),
            step=step, path=self.step_dir(step), intact=intact)

    def read(self, step: int, items, load: Callable[[int], Any]) -> Any:
        """``load(step)`` once ``step``'s files of ``items`` check out against their list.

        Raises DamagedCheckpointError naming the step, its directory, what could
        not be read and the steps ``load`` can read instead, or
        CheckpointMismatchError where the files are intact but do not fit.
        """
        problem, result = self._attempt(step, items, load)
        if problem is None:
            return result
        raise self._unreadable(step, items, load, problem)

    def report_unfinished(self) -> None:
        """Logs each step whose save never finished (Orbax's temporary directory): it is not a
        checkpoint, every reader ignores it, and Orbax replaces it when that step is saved again."""
        steps = set(self.all_steps())
        for path in sorted(glob.glob(os.path.join(self.directory, f"*{UNFINISHED}*"))):
            name = os.path.basename(path).split(UNFINISHED)[0]
            if name.isdigit() and int(name) not in steps:
                log.warning("checkpoint step %s was never finished (its save was interrupted, or is "
                            "still running) and is ignored: %s", name, path)

    def resume(self, abstract_state: Callable[[], TrainState], *, on_damaged: str,
               check_meta: Callable[[dict], None]) -> Optional[tuple[TrainState, int, dict]]:
        """(state, step, meta) of the newest checkpoint that reads back whole; None if there is none.

        abstract_state() gives the target shapes and shardings; check_meta(meta)
        raises CheckpointMismatchError for a run that is not this one. Damaged
        newer steps: on_damaged='fallback' moves them to
        <workdir>/damaged_checkpoints/ with a warning, 'error' raises the
        DamagedCheckpointError that ``restore`` would. Every process reaches
        the same verdict on each step. Never falls back to a fresh start.
        """
        if on_damaged not in RESUME_DAMAGED:
            raise ValueError(f"config.resume_damaged={on_damaged!r}; expected one of {RESUME_DAMAGED}")
        self.report_unfinished()
        steps = sorted(self.all_steps(), reverse=True)
        if not steps:
            return None
        target = abstract_state()

        def load(s):
            meta = self.meta(s)
            check_meta(meta)
            return self.restore_state(s, target), meta

        damaged: dict[int, Problem] = {}
        for step in steps:
            problem, found = self._attempt(step, ITEMS, load)
            if problem is None:
                break
            if problem.files_intact:
                raise self._unreadable(step, ITEMS, load, problem)
            if on_damaged == "error":
                err = self._unreadable(step, ITEMS, load, problem)
                raise DamagedCheckpointError(
                    f"{err} Training stopped (config.resume_damaged='error'); with 'fallback' it "
                    f"resumes from the newest intact step and moves the damaged ones to "
                    f"{os.path.join(os.path.abspath(self.workdir), damage.DAMAGED_DIR)}.",
                    step=err.step, path=err.path, intact=err.intact)
            damaged[step] = problem
        else:
            raise DamagedCheckpointError(
                f"no checkpoint of {self.workdir} can be read, so training cannot resume: "
                + "; ".join(f"step {s} ({self.step_dir(s)}): {p.what}" for s, p in damaged.items())
                + ". Nothing was moved or deleted. Start a new run in another --workdir, or "
                  "restore the files from a copy.", step=steps[0], path=self.step_dir(steps[0]))
        if damaged:
            dests = damage.aside_paths(self.workdir, list(damaged))
            damage.move_aside({s: self.step_dir(s) for s in damaged}, dests)
            self.manager.reload()
            for s, p in damaged.items():
                log.warning("checkpoint step %d of %s is damaged (%s could not be read: %s); moved to "
                            "%s, nothing deleted. Resuming from step %d, the newest intact "
                            "checkpoint (config.resume_damaged='error' stops instead).",
                            s, self.workdir, self.step_dir(s), p.what, dests[s], step)
        state, meta = found
        return state, step, meta

    def _restore(self, step: int, item: str, args) -> Any:
        """One item of ``step``; a failure is reported with the item's name (damage.ItemUnreadable)."""
        try:
            return self.manager.restore(step, args=ocp.args.Composite(**{item: args}))[item]
        except Exception as e:  # noqa: BLE001  Orbax and TensorStore raise many kinds
            raise damage.ItemUnreadable(item, e) from e

    def meta(self, step: int) -> dict:
        return self._restore(step, "meta", ocp.args.JsonRestore())

    def restore_variables(self, step: int, abstract_variables) -> dict:
        """{'params', 'batch_stats'} onto the shardings of ``abstract_variables``."""
        return self._restore(step, "variables", ocp.args.StandardRestore(abstract_variables))

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
        v = self.restore_variables(step, {"params": abstract_state.params,
                                          "batch_stats": abstract_state.batch_stats})
        o = self._restore(step, "opt", ocp.args.StandardRestore({
            "step": abstract_state.step, "opt_state": abstract_state.opt_state, "rng": abstract_state.rng}))
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
    """Loads the checkpoint of ``workdir`` (the latest, or ``step``) onto one device.

    A step that cannot be read back raises DamagedCheckpointError (an OSError)
    that names it, its directory, what failed and the steps that can be read.
    """
    from fluxseg.train import build

    ckpt = Checkpoints.reader(workdir)
    try:
        steps = ckpt.all_steps()
        ckpt.report_unfinished()
        if not steps:
            raise FileNotFoundError(
                f"no checkpoint in {checkpoint_dir(workdir)}; train first with "
                f"`python launch.py --workdir {workdir}`")
        if step is None:
            step = max(steps)
        elif step not in steps:
            raise FileNotFoundError(f"no checkpoint for step {step} in {checkpoint_dir(workdir)}; "
                                    f"available steps: {sorted(steps)}")
        sharding = jax.sharding.SingleDeviceSharding(device or jax.local_devices()[0])

        def load(s):
            meta = ckpt.meta(s)
            config = config_lib.saved_config(meta["config"], meta["image_shape"])
            model = build.model(config)
            return config, model, ckpt.restore_model_variables(s, model, tuple(meta["image_shape"]), sharding)

        config, model, variables = ckpt.read(step, INFERENCE_ITEMS, load)
    finally:
        ckpt.close()
    return Restored(model=model, variables=variables, config=config,
                    preprocess=build.preprocess_fn(config), step=int(step), workdir=workdir)
