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
    cm = np.asarray(metrics.confusion_matrix(jnp.asarray(pred), jnp.asarray(target), 4))
    np.testing.assert_array_equal(cm, _hand_confusion(pred, target, 4))
    # Whatever is predicted on ignored pixels changes nothing.
    pred2 = pred.copy()
    pred2[target == 255] = (pred2[target == 255] + 1) % 4
    cm2 = np.asarray(metrics.confusion_matrix(jnp.asarray(pred2), jnp.asarray(target), 4))
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
    whole = metrics.confusion_matrix(pred, target, 3)
    parts = None
    for i in range(0, 6, 2):
        parts = metrics.add(parts, metrics.confusion_matrix(pred[i:i + 2], target[i:i + 2], 3))
    np.testing.assert_array_equal(np.asarray(parts), np.asarray(whole))


def test_topk_counts_by_hand():
    logits = np.array([[0.1, 0.5, 0.2, 0.0, 0.9, 0.3],   # order: 4 1 5 2 0 3
                       [0.9, 0.1, 0.0, 0.2, 0.3, 0.4],   # order: 0 5 4 3 1 2
                       [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]], np.float32)
    labels = np.array([1, 2, -1], np.int32)               # last row is padding
    out = {k: int(v) for k, v in metrics.topk_correct(jnp.asarray(logits), jnp.asarray(labels)).items()}
    assert out == {"count": 2, "top1": 0, "top5": 1}
    assert metrics.topk_scores(out) == {"top1": 0.0, "top5": 0.5}
