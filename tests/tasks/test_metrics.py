"""The metric engine against a hand-computed confusion matrix."""
import jax.numpy as jnp
import numpy as np

from fluxseg.tasks import metrics


def _hand_confusion(pred, target, c):
    cm = np.zeros((c, c), np.int64)
    for p, t in zip(pred.ravel(), target.ravel()):
        if t != 255 and t >= 0:
            cm[t, p] += 1
    return cm


def test_confusion_matrix_matches_hand_count_and_ignores_255():
    rng = np.random.RandomState(0)
    target = rng.randint(0, 4, (3, 7, 5)).astype(np.int32)
    target[0, :3] = 255
    pred = rng.randint(0, 4, (3, 7, 5)).astype(np.int32)
    cm = np.asarray(metrics.confusion_matrix(jnp.asarray(pred), jnp.asarray(target), 4, 255))
    np.testing.assert_array_equal(cm, _hand_confusion(pred, target, 4))
    # Whatever is predicted on ignored pixels changes nothing.
    pred2 = pred.copy()
    pred2[target == 255] = (pred2[target == 255] + 1) % 4
    cm2 = np.asarray(metrics.confusion_matrix(jnp.asarray(pred2), jnp.asarray(target), 4, 255))
    np.testing.assert_array_equal(cm2, cm)
    assert metrics.scores(cm2) == metrics.scores(cm)


def test_scores_from_a_known_matrix():
    # rows = truth, columns = prediction; class 3 absent from truth and prediction.
    cm = np.array([[50, 2, 3, 0],
                   [4, 30, 6, 0],
                   [0, 5, 10, 0],
                   [0, 0, 0, 0]])
    s = metrics.scores(cm, ["a", "b", "c", "d"])
    total = 110
    assert np.isclose(s["pixel_acc"], 90 / total)
    acc = [50 / 55, 30 / 40, 10 / 15]
    assert np.isclose(s["mean_acc"], np.mean(acc))
    iou = [50 / (55 + 54 - 50), 30 / (40 + 37 - 30), 10 / (15 + 19 - 10)]
    assert np.isclose(s["mIoU"], np.mean(iou))       # class d (no pixels anywhere) left out
    assert np.isnan(s["IoU/d"]) and np.isnan(s["acc/d"])
    assert np.isclose(s["fwIoU"], (55 * iou[0] + 40 * iou[1] + 15 * iou[2]) / total)
    assert np.isclose(s["IoU/b"], iou[1])


def test_streaming_sum_equals_one_pass():
    rng = np.random.RandomState(1)
    pred = rng.randint(0, 3, (6, 4, 4))
    target = rng.randint(0, 3, (6, 4, 4))
    whole = metrics.confusion_matrix(pred, target, 3, 255)
    parts = None
    for i in range(0, 6, 2):
        parts = metrics.add(parts, metrics.confusion_matrix(pred[i:i + 2], target[i:i + 2], 3, 255))
    np.testing.assert_array_equal(np.asarray(parts), np.asarray(whole))


def test_topk_hits_by_hand_on_device_and_host():
    logits = np.array([[0.1, 0.5, 0.2, 0.0, 0.9, 0.3],   # order: 4 1 5 2 0 3
                       [0.9, 0.1, 0.0, 0.2, 0.3, 0.4],   # order: 0 5 4 3 1 2
                       [0.0, 0.1, 0.2, 0.3, 0.4, 0.5],   # padding row
                       [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]], np.float32)
    labels = np.array([1, 2, -1, 5], np.int32)
    for k, want in [(1, 1), (2, 2), (5, 2), (6, 3)]:  # row 0 at rank 2, row 1 at rank 6, row 3 at rank 1
        assert int(metrics.topk_hits(jnp.asarray(logits), jnp.asarray(labels), k, 6, 255)) == want
        assert int(metrics.topk_hits(logits, labels, k, 6, 255)) == want
    # The ignore index and ids past the classes never count, as in the confusion matrix.
    assert int(metrics.topk_hits(logits, np.array([255, 2, 6, 5]), 5, 6, 255)) == 1


def test_host_counts_equal_device_counts_and_stay_exact_past_2_to_the_31():
    """A Cityscapes-sized split and more: 3000 images of 1024x2048 = 6.3e9 pixels."""
    rng = np.random.RandomState(0)
    target = rng.choice(3, (1024, 2048), p=[0.7, 0.2, 0.1]).astype(np.int32)  # road-like majority
    target[:, :100] = 255  # an ignored band
    pred = np.where(rng.rand(1024, 2048) < 0.9, target, (target + 1) % 3)
    per_image = metrics.confusion_counts(pred, target, 3, 255)
    assert per_image.dtype == np.int64
    np.testing.assert_array_equal(per_image, np.asarray(metrics.confusion_matrix(pred, target, 3, 255)))
    total = None
    for _ in range(3000):
        total = metrics.add(total, per_image)
    assert total.dtype == np.int64 and int(total.sum()) == 3000 * 1024 * (2048 - 100) > 2 ** 32
    assert int(total[0, 0]) > 2 ** 31  # one cell alone passes int32's range
    np.testing.assert_array_equal(total, 3000 * per_image.astype(object))
    # An int32 matrix would have wrapped: the same sum in int32 is wrong.
    assert int(np.sum(np.full(3000, per_image[0, 0], np.int32), dtype=np.int32)) != int(total[0, 0])
    a, b = metrics.scores(total), metrics.scores(per_image)
    for k in ("pixel_acc", "mean_acc", "mIoU", "fwIoU"):
        assert abs(a[k] - b[k]) < 1e-12
