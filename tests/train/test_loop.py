"""The training loop end to end on the tiny shapes dataset (one CPU device)."""
import glob
import json
import math
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from _helpers import CACHE_ENV, REPO, saved_model_predictions
from fluxseg.runtime import backend
from fluxseg.train import checkpoint, loop


SHAPES = ("background", "circle", "square", "triangle", "ring", "cross")  # fluxseg_shapes' classes


def _variables(workdir, step=None):
    r = checkpoint.restore(workdir, step)
    return r.step, jax.tree_util.tree_map(np.asarray, r.variables)


def _lines(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("donate", [True, False], ids=["donated", "kept"])
def test_resume_continues_exactly(tiny, tmp_path, monkeypatch, donate):
    # 8 steps = 1 1/3 epochs of the 48-image split; the interrupted run stops
    # at step 5 (mid-epoch) and its second half crosses the epoch boundary.
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    # Saves are asynchronous while the next steps may donate the state's
    # buffers (GPU/TPU do; this CPU does not unless told, both are run): the
    # straight run's step-5 checkpoint is followed by 3 more steps, the
    # interrupted run's is its last act; they must be equal.
    monkeypatch.setattr(backend, "donate_argnums", lambda *argnums: argnums if donate else ())
    cfg = dict(num_train_steps=8, checkpoint_every_steps=5, async_checkpoints=True)
    result = loop.train_and_evaluate(tiny(**cfg), straight)
    first = loop.train_and_evaluate(tiny(max_steps_per_run=5, **cfg), resumed)
    # A planned stop is reported as such, not as a preemption.
    assert first["step"] == 5 and first["stopped"] == "max_steps_per_run"
    assert "preempted" not in first
    assert 5 in checkpoint.Checkpoints.reader(resumed).all_steps()
    _, at5 = _variables(resumed, 5)
    jax.tree_util.tree_map(np.testing.assert_array_equal, _variables(straight, 5)[1], at5)
    again = loop.train_and_evaluate(tiny(**cfg), resumed)
    assert again["step"] == 8

    s1, v1 = _variables(straight)
    s2, v2 = _variables(resumed)
    assert s1 == s2 == 8
    jax.tree_util.tree_map(np.testing.assert_array_equal, v1, v2)       # bit-identical
    moved = jax.tree_util.tree_leaves(jax.tree_util.tree_map(
        lambda a, b: float(np.abs(a - b).max()), v1, at5))
    assert max(moved) > 0                                                # steps 6-8 did train
    assert again["mIoU"] == result["mIoU"]

    # evaluate() of the saved checkpoint gives the run's own final metrics.
    ev = loop.evaluate(None, straight)
    assert ev["step"] == 8 and math.isclose(ev["mIoU"], result["mIoU"], rel_tol=1e-9)

    # What a researcher watches: JSON lines, TensorBoard events, a PNG.
    lines = _lines(straight)
    train = [l for l in lines if l["split"] == "train"]
    assert [l["step"] for l in train] == [2, 4, 5, 6, 8]   # every 2 steps and at checkpoints
    assert all(math.isfinite(l["loss"]) and l["images_per_s"] > 0 for l in train)
    assert all(0 <= l["data_wait"] <= 1 for l in train)   # the share of time spent on next(batches)
    val = [l for l in lines if l["split"] == "validation"]
    assert val[-1]["step"] == 8 and "IoU/circle" in val[-1]
    # The logged line is the returned result, and its scores are those of the saved model's
    # own class ids on every valid validation pixel, counted here with numpy.
    assert val[-1]["mIoU"] == result["mIoU"]
    cm = np.zeros((6, 6), np.int64)
    for ids, batch, _ in saved_model_predictions(straight):
        keep = np.asarray(batch["valid"])
        np.add.at(cm, (np.asarray(batch["mask"])[keep].ravel(), ids[keep].ravel()), 1)
    assert cm.sum() == 18 * 32 * 32
    union = cm.sum(0) + cm.sum(1) - np.diag(cm)
    iou = {name: cm[k, k] / union[k] for k, name in enumerate(SHAPES) if union[k]}
    assert math.isclose(result["mIoU"], np.mean(list(iou.values())), rel_tol=1e-12)
    assert result["pixel_acc"] == np.trace(cm) / cm.sum()
    for name, value in iou.items():
        assert math.isclose(val[-1][f"IoU/{name}"], value, rel_tol=1e-12)
    assert os.path.getsize(os.path.join(straight, "predictions_8.png")) > 0
    from fluxseg.data._tf import tf
    tags = set()
    for path in glob.glob(os.path.join(straight, "tensorboard", "*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(v.tag for v in event.summary.value)
    assert {"train/loss", "train/data_wait", "validation/mIoU", "predictions"} <= tags


def test_device_augmentation_trains_and_resumes_exactly(tiny, tmp_path):
    # augment_on='device': the host sends uint8 windows and draws, the step rescales,
    # crops, flips and jitters them; an interrupted run still continues bit-identically.
    cfg = {"num_train_steps": 4, "checkpoint_every_steps": 2, "eval_every_steps": 0,
           "num_eval_images": 0, "data.augment_on": "device", "data.crop_size": (16, 32),
           "data.scale_range": (0.75, 1.5), "data.color_jitter": (0.2, 0.2, 0.2)}
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    loop.train_and_evaluate(tiny(**cfg), straight)
    assert loop.train_and_evaluate(tiny(max_steps_per_run=2, **cfg), resumed)["step"] == 2
    loop.train_and_evaluate(tiny(**cfg), resumed)
    (s1, v1), (s2, v2) = _variables(straight), _variables(resumed)
    assert s1 == s2 == 4
    jax.tree_util.tree_map(np.testing.assert_array_equal, v1, v2)
    assert checkpoint.restore(straight).config.data.augment_on == "device"


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny, tmp_path):
    workdir = str(tmp_path / "nan")
    loop.train_and_evaluate(tiny(num_train_steps=8, max_steps_per_run=2), workdir)
    # Resume with a learning rate past float32's range: step 3's update sends the
    # parameters to ~1e38, so step 4's logits overflow and its loss is NaN.
    bad = tiny(num_train_steps=8, checkpoint_every_steps=2, **{"optim.learning_rate": 1e38})
    with pytest.raises(loop.NonFiniteLossError, match=r"NaN/Inf between steps 3 and 4.*step 2"):
        loop.train_and_evaluate(bad, workdir)
    ckpts = checkpoint.Checkpoints.reader(workdir)
    assert ckpts.all_steps() == [2]
    _, v = _variables(workdir)
    assert all(np.isfinite(x).all() for x in jax.tree_util.tree_leaves(v))


def test_sigterm_saves_and_exits_cleanly(small_shapes_dir, tmp_path):
    workdir = str(tmp_path / "term")
    args = [sys.executable, "launch.py", "--workdir", workdir,
            "--config.model_kwargs.features=4", "--config.data.builder_config=small",
            f"--config.data.data_dir={small_shapes_dir}", "--config.data.crop_size=(32, 32)",
            "--config.batch_size=8", "--config.num_train_steps=100000",
            "--config.log_every_steps=1", "--config.checkpoint_every_steps=100000",
            "--config.progress_bar=False", "--config.init_rng_impl=rbg"]
    env = dict(os.environ, **CACHE_ENV, JAX_PLATFORMS="cpu")
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    metrics = os.path.join(workdir, "metrics.jsonl")
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(metrics) and len(open(metrics).readlines()) >= 2:
            break
        time.sleep(0.5)
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert '"preempted": true' in out
    saved = checkpoint.Checkpoints.reader(workdir).all_steps()
    logged = max(l["step"] for l in _lines(workdir))
    assert len(saved) == 1 and 2 <= saved[0] < 100000 and saved[0] >= logged


def test_pretrained_weights_and_their_preprocessing_reach_the_checkpoint(tiny, tmp_path,
                                                                         monkeypatch):
    import fluxseg.weights

    calls = []

    def fake_init_from_pretrained(model, variables, source, *, path=None, dont_load=()):
        calls.append((type(model).__name__, source, path, tuple(dont_load)))
        loaded = jax.tree_util.tree_map(lambda x: np.full(x.shape, 0.01, x.dtype), variables)
        return loaded, "torch", "fake report"

    monkeypatch.setattr(fluxseg.weights, "init_from_pretrained", fake_init_from_pretrained)
    workdir = str(tmp_path / "pre")
    cfg = tiny(num_train_steps=1, pretrained="torchvision", pretrained_path="/w.pth",
               pretrained_dont_load=("head/",))
    cfg.optim.learning_rate = 0.0
    cfg.optim.warmup_steps = 0
    loop.train_and_evaluate(cfg, workdir)
    assert calls == [("UNet", "torchvision", "/w.pth", ("head/",))]   # the run's own module
    restored = checkpoint.restore(workdir)
    assert restored.config.preprocess == "torch"
    from fluxseg.weights import preprocess
    assert restored.preprocess is preprocess.torch
    leaves = jax.tree_util.tree_leaves(restored.variables["params"])
    assert all(np.allclose(np.asarray(x), 0.01) for x in leaves)   # lr 0: still the loaded weights
