"""Checkpoints: written on 8 devices, restored on 1; keep-last/keep-best."""
import json
import os

import jax
import numpy as np
import pytest

from _helpers import run_python
from fluxseg import infer
from fluxseg.train import checkpoint, loop

HERE = os.path.dirname(os.path.abspath(__file__))


def test_checkpoint_from_8_devices_restores_on_1_and_predicts_the_same(small_shapes_dir, tmp_path):
    workdir, out = str(tmp_path / "run8"), str(tmp_path / "out.npz")
    proc = run_python([os.path.join(HERE, "_restore_check.py"), small_shapes_dir, workdir, out],
                      devices=8)
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    ref = np.load(out)
    assert jax.device_count() == 1
    restored = checkpoint.restore(workdir)
    assert restored.step == info["step"] == 4
    ckpts = checkpoint.Checkpoints.reader(workdir)
    assert ckpts.meta(4)["num_devices"] == 8 and ckpts.meta(4)["parallel"] == "pmap"
    for path, v in jax.tree_util.tree_flatten_with_path(restored.variables)[0]:
        key = "var:" + "/".join(str(k.key) for k in path)
        np.testing.assert_array_equal(np.asarray(v), ref[key])
    logits = infer.predict_logits(restored, ref["image"])
    assert logits.shape == (45, 50, 6)
    np.testing.assert_allclose(logits, ref["logits"], atol=1e-5)
    np.testing.assert_array_equal(infer.predict(restored, ref["image"]), ref["pred"])


def test_keeps_last_n_and_best_k(tiny, tmp_path):
    workdir = str(tmp_path / "keep")
    cfg = tiny(num_train_steps=8, eval_every_steps=2, checkpoint_every_steps=1, keep_last=2,
               keep_best=1, log_every_steps=1)
    loop.train_and_evaluate(cfg, workdir)
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        evals = [json.loads(l) for l in f if '"validation"' in l]
    scores = {e["step"]: e["mIoU"] for e in evals}
    best = max(scores, key=lambda s: (scores[s], s))
    ckpts = checkpoint.Checkpoints.reader(workdir)
    assert set(ckpts.all_steps()) == {7, 8} | {best}
    # Every checkpoint carries the config and the data position (its step).
    meta = ckpts.meta(8)
    assert meta["step"] == 8 and meta["config"]["model"] == "unet"


def test_a_saved_config_lacking_newer_keys_restores_with_their_defaults(tiny_run, monkeypatch):
    """A run saved before data.eval_mode and optim.eps existed reads today's default eps, and
    the eval_mode it was evaluated with then (resize), not today's default (pad)."""
    from fluxseg.train.config import base_config

    meta = checkpoint.Checkpoints.meta

    def old_meta(self, step):
        m = meta(self, step)
        del m["config"]["data"]["eval_mode"], m["config"]["optim"]["eps"]
        return m
    monkeypatch.setattr(checkpoint.Checkpoints, "meta", old_meta)
    restored = checkpoint.restore(tiny_run)
    default = base_config()
    assert default.data.eval_mode == "pad" and restored.config.data.eval_mode == "resize"
    assert restored.config.optim.eps == default.optim.eps
    # What the run did save is kept, not reset to the defaults.
    assert restored.config.data.builder_config == "small" and restored.config.num_classes == 6
    assert restored.config.optim.learning_rate == 3e-3 != default.optim.learning_rate


FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "config_3958f7b.json")


def test_a_config_saved_before_one_key_per_concept_restores_migrated(tiny_run, small_shapes_dir,
                                                                    monkeypatch, tmp_path):
    """fixtures/config_3958f7b.json is the config.json that the code of commit 3958f7b saved
    for a tiny run like tiny_run (its meta holds the same): task, num_classes and
    ignore_index at the top and again under data, and a top-level ignore_index=0 override,
    the value its loss used. Restored, each concept is one key, and the scores skip class 0."""
    import copy

    import fluxseg
    from fluxseg.train import build, config as config_lib

    with open(FIXTURE) as f:
        old = json.load(f)
    assert old["ignore_index"] == 0 and old["data"]["ignore_index"] == 255 and "num_classes" in old["data"]
    old["data"]["data_dir"] = small_shapes_dir
    meta = checkpoint.Checkpoints.meta
    monkeypatch.setattr(checkpoint.Checkpoints, "meta",
                        lambda self, step: {**meta(self, step), "config": copy.deepcopy(old)})
    r = checkpoint.restore(tiny_run)
    c = r.config
    assert "task" not in c and "ignore_index" not in c and "num_classes" not in c.data
    assert (c.data.task, c.data.ignore_index, c.num_classes, c.data.channels) == ("segmentation", 0, 6, 3)
    config_lib.check(c)  # today's checks pass
    assert build.task(c).ignore_index == 0
    got = fluxseg.evaluate(tiny_run, restored=r, out_dir=str(tmp_path), progress=False)
    assert got["support"][0] == 0 and min(got["support"][1:]) > 0  # class 0 unscored, the rest scored
    # Older still, saved before the config recorded the input channels: the checkpoint's
    # image shape gives them, and predict needs nothing else.
    del old["data"]["channels"]
    r = checkpoint.restore(tiny_run)
    assert r.config.data.channels == 3
    assert fluxseg.predict(r, np.zeros((40, 24, 3), np.uint8)).shape == (40, 24)


@pytest.mark.parametrize("mode,kept", [("min", {4, 2}), ("max", {4, 3})])
def test_best_mode_keeps_the_lowest_or_the_highest(tmp_path, mode, kept):
    from fluxseg.train.step import TrainState

    state = TrainState(step=np.zeros((), np.int32), params={"w": np.zeros(3, np.float32)},
                       batch_stats={}, opt_state={}, rng=np.zeros(2, np.uint32))
    ckpts = checkpoint.Checkpoints(str(tmp_path), keep_last=1, keep_best=1, best_metric="loss",
                                   best_mode=mode, async_save=False)
    for step, loss in zip((1, 2, 3, 4), (0.5, 0.2, 0.9, 0.7)):
        ckpts.save(state, {"step": step}, metrics={"loss": loss})
    assert ckpts.best_step() == min(kept)
    ckpts.close()
    assert set(checkpoint.Checkpoints.reader(str(tmp_path)).all_steps()) == kept
