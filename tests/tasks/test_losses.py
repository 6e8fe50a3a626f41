"""Losses: ignore pixels count for nothing; values match hand computations."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fluxseg.tasks import losses


def _logits_and_mask(seed=0, shape=(2, 5, 6), c=4):
    rng = np.random.RandomState(seed)
    logits = rng.randn(*shape, c).astype(np.float32) * 2
    mask = rng.randint(0, c, shape).astype(np.int32)
    return logits, mask


def _hand_ce(logits, mask, weights=None):
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    num = den = 0.0
    for idx in np.ndindex(mask.shape):
        t = mask[idx]
        if t == 255 or t < 0:
            continue
        w = 1.0 if weights is None else weights[t]
        num += -logp[idx][t] * w
        den += w
    return num / den


@pytest.mark.parametrize("name", ["softmax_ce", "dice", "softmax_ce+dice"])
def test_ignore_pixels_change_nothing(name):
    logits, mask = _logits_and_mask()
    ignored = mask.copy()
    ignored[0, :2, :] = 255
    ignored[1, 3, 4] = 255
    base = losses.mean_loss(name, logits, ignored, ignore_index=255)
    # Whatever the logits under ignored pixels are, the loss is the same ...
    other = logits.copy()
    other[ignored == 255] = np.random.RandomState(9).randn(int((ignored == 255).sum()), 4) * 50
    np.testing.assert_allclose(losses.mean_loss(name, other, ignored, ignore_index=255), base, rtol=1e-6)
    # ... and so is its gradient there: zero.
    g = jax.grad(lambda l: losses.mean_loss(name, l, ignored, ignore_index=255))(jnp.asarray(logits))
    assert float(jnp.abs(g[ignored == 255]).max()) == 0.0
    assert float(jnp.abs(g[ignored != 255]).max()) > 0.0


def test_softmax_ce_matches_hand_computation_with_ignore_and_class_weights():
    logits, mask = _logits_and_mask(1)
    mask[0, 0, :3] = 255
    np.testing.assert_allclose(losses.mean_loss("softmax_ce", logits, mask, ignore_index=255), _hand_ce(logits, mask),
                               rtol=1e-5)
    w = np.array([0.5, 2.0, 1.0, 3.0], np.float32)
    got = losses.mean_loss("softmax_ce", logits, mask, class_weights=w, ignore_index=255)
    np.testing.assert_allclose(got, _hand_ce(logits, mask, w), rtol=1e-5)


def test_ignored_rows_in_classification_labels():
    logits = np.random.RandomState(2).randn(4, 3).astype(np.float32)
    labels = np.array([0, 2, -1, 1], np.int32)
    got = losses.mean_loss("softmax_ce", logits, labels, ignore_index=255)
    np.testing.assert_allclose(got, _hand_ce(logits[[0, 1, 3]], labels[[0, 1, 3]]), rtol=1e-6)


def test_sigmoid_bce_is_binary_ce_over_valid_pixels():
    rng = np.random.RandomState(3)
    logits = rng.randn(2, 4, 4, 1).astype(np.float32)
    mask = rng.randint(0, 3, (2, 4, 4)).astype(np.int32)  # any id > 0 is foreground
    mask[1, 0] = 255
    p = 1 / (1 + np.exp(-logits[..., 0]))
    y = (mask > 0).astype(np.float32)
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    want = bce[mask != 255].mean()
    np.testing.assert_allclose(losses.mean_loss("sigmoid_bce", logits, mask, ignore_index=255), want, rtol=1e-5)


def test_dice_is_per_image_and_perfect_prediction_scores_zero():
    mask = np.array([[[0, 1], [1, 2]], [[2, 2], [0, 255]]], np.int32)
    perfect = np.where(mask[..., None] == np.arange(3), 40.0, -40.0).astype(np.float32)
    assert float(losses.mean_loss("dice", perfect, mask, ignore_index=255)) < 1e-4
    # Splitting the batch and summing (total, weight) gives the whole-batch value.
    logits, m = _logits_and_mask(4, shape=(4, 6, 6), c=3)
    t_all, w_all = losses.dice(logits, m, ignore_index=255)
    t1, w1 = losses.dice(logits[:1], m[:1], ignore_index=255)
    t2, w2 = losses.dice(logits[1:], m[1:], ignore_index=255)
    np.testing.assert_allclose((t1 + t2) / (w1 + w2), t_all / w_all, rtol=1e-6)


def test_unknown_loss_names_the_known_ones():
    with pytest.raises(ValueError, match="softmax_ce"):
        losses.parse("softmax_ce+focal")
