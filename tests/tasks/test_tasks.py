"""The task objects: one binary rule, one ignore index, the same scores from device and host sums."""
import jax.numpy as jnp
import numpy as np
import pytest

from fluxseg import tasks
from fluxseg.tasks import losses


def _seg(num_classes, ignore=255, names=None, **kw):
    return tasks.create("segmentation", num_classes, ignore, names, **kw)


def test_a_one_channel_head_reads_every_id_above_0_as_foreground_in_loss_and_scores():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 6, (3, 8, 8)).astype(np.int32)
    target[0, :2] = 4                       # the ignore index of this task: never counted
    logits = rng.normal(size=(3, 8, 8, 1)).astype(np.float32)
    task = _seg(1, ignore=4)
    fg = (logits[..., 0] > 0).astype(np.int64)
    keep = target != 4
    want = np.zeros((2, 2), np.int64)
    np.add.at(want, ((target[keep] > 0).astype(np.int64), fg[keep]), 1)
    assert want[1].sum() > 0 and (target[keep] >= 2).any()  # ids >= 2 are there to be read as 1
    device = np.asarray(task.eval_sums(jnp.asarray(logits), jnp.asarray(target))["confusion"])
    host = task.count(fg, target)["confusion"]
    np.testing.assert_array_equal(device, want)
    np.testing.assert_array_equal(host, want)
    # The loss reads the same foreground and skips the same pixels.
    y = (target > 0).astype(np.float32)
    z = logits[..., 0].astype(np.float64)
    bce = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    got = losses.mean_loss("sigmoid_bce", jnp.asarray(logits), jnp.asarray(target), ignore_index=4)
    np.testing.assert_allclose(float(got), bce[keep].mean(), rtol=1e-5)


def test_device_and_host_sums_give_the_same_scores():
    rng = np.random.default_rng(1)
    seg = _seg(4, names=("a", "b", "c", "d"), isbi_metrics=False)
    logits = rng.normal(size=(2, 6, 5, 4)).astype(np.float32)
    target = rng.integers(0, 4, (2, 6, 5)).astype(np.int32)
    target[1, 0] = 255
    device = seg.scores(seg.eval_sums(jnp.asarray(logits), jnp.asarray(target)))
    host = None
    for lg, tg in zip(logits, target):
        host = tasks.metrics.add(host, seg.count(lg.argmax(-1), tg))
    assert seg.scores(host) == device and "IoU/d" in device
    cls = tasks.create("classification", 7, 255, tuple("abcdefg"))
    logits = rng.normal(size=(12, 7)).astype(np.float32)
    labels = rng.integers(0, 7, 12).astype(np.int32)
    labels[3] = -1                             # a padding row
    device = cls.scores(cls.eval_sums(jnp.asarray(logits), jnp.asarray(labels)))
    host = cls.count(logits.argmax(-1), labels, probs=logits)
    assert cls.scores(host) == device
    ranks = [int(np.sum(lg > lg[y])) for lg, y in zip(logits, labels) if y >= 0]
    assert device["top1"] == np.mean([r < 1 for r in ranks]) and device["top5"] == np.mean([r < 5 for r in ranks])


def test_names_and_headlines():
    assert _seg(1, names=("background", "circle", "square")).names == ("background", "foreground")
    assert tasks.create("classification", 1, 255, ("cat", "dog")).names == ("cat", "dog")
    assert _seg(3).names == ("0", "1", "2")
    with pytest.raises(ValueError, match="3 outputs but 2 class names"):
        _seg(3, names=("a", "b"))
    assert _seg(3).headline == ("mIoU", "pixel_acc", "mean_acc", "fwIoU")
    assert _seg(3, isbi_metrics=True).headline[-2:] == ("pixel_error", "rand_error")
    assert tasks.create("classification", 6, 255).headline == ("top1", "top5", "mean_acc")
    # With five classes or fewer the top five hold every class: no top5 to report.
    assert tasks.create("classification", 5, 255).headline == ("top1", "mean_acc")
    assert "top5" not in tasks.create("classification", 5, 255).eval_sums(
        jnp.zeros((2, 5)), jnp.array([0, 1]))
