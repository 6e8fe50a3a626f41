"""Checkpoints: written on 8 devices, restored on 1; keep-last/keep-best."""
import json
import os

import jax
import numpy as np

from _helpers import HERE, run_python
from fluxseg import infer
from fluxseg.train import checkpoint, loop


def test_checkpoint_from_8_devices_restores_on_1_and_predicts_the_same(small_shapes_dir, tmp_path):
    workdir, out = str(tmp_path / "run8"), str(tmp_path / "out.npz")
    proc = run_python([os.path.join(HERE, "_restore_check.py"), small_shapes_dir, workdir, out],
                      devices=8)
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    ref = np.load(out)
    assert jax.device_count() == 1
    restored = checkpoint.restore(workdir)
    assert restored.step == info["step"] == 4
    ckpts = checkpoint.Checkpoints(workdir, read_only=True)
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
    ckpts = checkpoint.Checkpoints(workdir, read_only=True)
    assert set(ckpts.all_steps()) == {7, 8} | {best}
    assert ckpts.best_step() == best
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
