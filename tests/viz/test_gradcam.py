"""Grad-CAM properties that any correct implementation has (Selvaraju et al. 2017; Adebayo et al. 2018)."""
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _viz_helpers import random_variables
from fluxseg import models, viz
from fluxseg.models.layers import tap


class ConvGapDense(nn.Module):
    """conv -> ReLU -> global average pool -> dense: the architecture CAM (Zhou et al. 2016) is defined on."""

    @nn.compact
    def __call__(self, x, train=False):
        a = tap(self, "conv", nn.relu(nn.Conv(16, (3, 3), padding="VALID", name="conv")(x)))
        return nn.Dense(5, name="dense")(a.mean(axis=(1, 2)))


class TwoBranches(nn.Module):
    """Classes 0-1 read the 'left' branch only, classes 2-3 the 'right' one; `dead` puts a ReLU
    that is off everywhere (a huge negative bias) between the left branch and its head."""

    dead: bool = False

    @nn.compact
    def __call__(self, x, train=False):
        a = tap(self, "left", nn.relu(nn.Conv(8, (3, 3), name="left")(x)))
        b = tap(self, "right", nn.relu(nn.Conv(8, (3, 3), name="right")(x)))
        a = nn.relu(a - 1e6) if self.dead else a
        return jnp.concatenate([nn.Dense(2, name="head_left")(a.mean(axis=(1, 2))),
                                nn.Dense(2, name="head_right")(b.mean(axis=(1, 2)))], axis=-1)


def _spearman(a, b):
    ra, rb = (np.argsort(np.argsort(v.ravel())) for v in (a, b))
    return float(np.corrcoef(ra, rb)[0, 1])


@pytest.fixture(scope="module")
def resnet():
    model = models.create("resnet18", width=16, num_classes=10)
    x = jax.random.normal(jax.random.key(1), (4, 160, 128, 3))  # layer4: 5x4
    return model, random_variables(model, x), x


def test_gradcam_on_conv_gap_dense_is_cam_over_hw():
    model = ConvGapDense()
    x = jax.random.normal(jax.random.key(2), (3, 13, 17, 3))
    v = random_variables(model, x)
    targets = [0, 3, 4]
    raw = np.asarray(viz.gradcam(model, v, x, "conv", targets, relu=False, normalize=False))
    acts = np.asarray(viz.activations(model, v, x, ["conv"])["conv"], np.float64)  # [3, 11, 15, 16]
    w = np.asarray(v["params"]["dense"]["kernel"], np.float64)  # [16, 5]
    cam = np.einsum("bhwk,kb->bhw", acts, w[:, targets])  # Zhou et al.: sum_k w_k^c A^k
    h, wd = acts.shape[1:3]
    np.testing.assert_allclose(raw, cam / (h * wd), rtol=1e-5, atol=1e-6 * np.abs(cam).max() / (h * wd))
    # With a softmax probability as the score (the book's recipe) the map is no longer the class's CAM.
    prob = viz.gradcam(model, v, x, "conv", lambda z: jax.nn.softmax(z)[jnp.arange(3), jnp.asarray(targets)], relu=False, normalize=False)
    corr = [_spearman(np.asarray(prob[i]), cam[i]) for i in range(3)]
    assert min(corr) < 0.99, corr


def test_batch_with_different_targets_equals_one_image_at_a_time(resnet):
    model, v, x = resnet
    targets = [1, 5, 9, 2]
    batch = np.asarray(viz.gradcam(model, v, x, "layer4", targets, relu=False, normalize=False))
    for i, t in enumerate(targets):
        one = np.asarray(viz.gradcam(model, v, x[i : i + 1], "layer4", t, relu=False, normalize=False))[0]
        np.testing.assert_allclose(batch[i], one, rtol=1e-4, atol=1e-5 * np.abs(one).max())
    # Different targets give different maps for the same image (the targets are really per image).
    other = np.asarray(viz.gradcam(model, v, x, "layer4", 0, relu=False, normalize=False))
    assert not np.allclose(batch[1], other[1], rtol=1e-2)
    # None = each image's own top class.
    top = np.asarray(jax.jit(model.apply)(v, x)).argmax(-1)
    np.testing.assert_allclose(viz.gradcam(model, v, x, "layer4"), viz.gradcam(model, v, x, "layer4", top.tolist()), rtol=1e-5)


def test_wrong_target_length_and_bad_layers_are_errors(resnet):
    model, v, x = resnet
    with pytest.raises(ValueError, match="3 entries for a batch of 4"):
        viz.gradcam(model, v, x, "layer4", [1, 2, 3])
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        viz.gradcam(model, v, x, "layer4", 10)
    with pytest.raises(KeyError, match="layer4"):
        viz.gradcam(model, v, x, "layer5")
    with pytest.raises(ValueError, match="feature map"):
        viz.gradcam(model, v, x, "fc")


def test_raw_map_is_linear_in_the_target(resnet):
    model, v, x = resnet
    raw = lambda f: np.asarray(viz.gradcam(model, v, x, "layer4", f, relu=False, normalize=False))  # noqa: E731
    a, b = raw(lambda z: z[:, 2]), raw(lambda z: z[:, 7])
    ab = raw(lambda z: 2.0 * z[:, 2] - 3.0 * z[:, 7])
    np.testing.assert_allclose(ab, 2 * a - 3 * b, rtol=1e-4, atol=1e-5 * np.abs(ab).max())
    assert not np.allclose(a, b, rtol=0.1)


def test_randomising_the_top_layer_changes_the_map(resnet):
    """Adebayo et al. 2018: a saliency method must depend on the weights it explains.

    Only the classifier is re-initialised, so layer4's activations are the
    same; a method that ignored the gradient (e.g. plain activation maps)
    would give the same maps and fail.
    """
    model, v, x = resnet
    base = np.asarray(viz.gradcam(model, v, x, "layer4", 3, relu=False, normalize=False))
    fresh = random_variables(model, x, seed=7)
    params = dict(v["params"], fc=fresh["params"]["fc"])
    swapped = np.asarray(viz.gradcam(model, {**v, "params": params}, x, "layer4", 3, relu=False, normalize=False))
    same_acts = viz.activations(model, {**v, "params": params}, x, ["layer4"])["layer4"]
    np.testing.assert_allclose(same_acts, viz.activations(model, v, x, ["layer4"])["layer4"])
    corr = [_spearman(base[i], swapped[i]) for i in range(len(x))]
    assert np.mean(corr) < 0.5, corr
    # Re-initialising layer4 as well (the cascade goes on from the top) changes it too.
    params["layer4_1"] = fresh["params"]["layer4_1"]
    deeper = np.asarray(viz.gradcam(model, {**v, "params": params}, x, "layer4", 3, relu=False, normalize=False))
    assert np.mean([_spearman(base[i], deeper[i]) for i in range(len(x))]) < 0.5


def test_a_zero_gradient_at_the_layer_is_said_in_words_not_drawn_as_a_flat_map():
    x = jax.random.normal(jax.random.key(6), (2, 12, 12, 3))
    model = TwoBranches()
    v = random_variables(model, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a reachable target: no warning
        assert np.abs(np.asarray(viz.gradcam(model, v, x, "left", 1, relu=False, normalize=False))).max() > 0
    # Class 3 is computed from the other branch: unreachable from 'left'.
    with pytest.warns(UserWarning, match=r"exactly zero for image\(s\) \[0, 1\].*does not depend on this layer"):
        flat = viz.gradcam(model, v, x, "left", 3)
    assert not np.asarray(flat).any()
    # A dead ReLU between the layer and the score.
    with pytest.warns(UserWarning, match="dead layer"):
        viz.gradcam(TwoBranches(dead=True), v, x, "left", 0)


def test_segmentation_target_on_fcn():
    model = models.create("fcn_resnet18", width=8, num_classes=4)
    x = jax.random.normal(jax.random.key(3), (2, 64, 96, 3))
    v = random_variables(model, x)
    logits = np.asarray(jax.jit(model.apply)(v, x))
    raw = lambda t: np.asarray(viz.gradcam(model, v, x, "backbone/layer4", t, relu=False, normalize=False))  # noqa: E731
    # region None = the pixels predicted as the class; same as passing that mask explicitly.
    pred = logits.argmax(-1) == 2
    assert pred.any()
    np.testing.assert_allclose(raw(viz.segmentation_target(2)), raw(viz.segmentation_target(2, pred)), rtol=1e-5)
    # Disjoint regions add up: the map of the left half plus the right half is the map of the whole.
    left = np.zeros((64, 96), bool)
    left[:, :48] = True
    whole = raw(viz.segmentation_target(1, np.ones((64, 96), bool)))
    parts = raw(viz.segmentation_target(1, left)) + raw(viz.segmentation_target(1, ~left))
    np.testing.assert_allclose(whole, parts, rtol=1e-4, atol=1e-5 * np.abs(whole).max())
    # Upsampled to the image, as for classifiers; class indices alone are refused with a hint.
    assert viz.gradcam(model, v, x, "backbone/layer4", viz.segmentation_target(1), size=(64, 96)).shape == (2, 64, 96)
    with pytest.raises(ValueError, match="segmentation_target"):
        viz.gradcam(model, v, x, "backbone/layer4", 1)


def test_upsampling_a_one_hot_cell_of_a_7x9_map_peaks_in_its_block():
    h, w, H, W = 7, 9, 56, 99  # blocks of 8 x 11 pixels: an H/W swap cannot land inside
    cams = np.zeros((h * w, h, w), np.float32)
    cams[np.arange(h * w), np.repeat(np.arange(h), w), np.tile(np.arange(w), h)] = 1.0
    up = np.asarray(viz.upsample(jnp.asarray(cams), (H, W)))
    assert up.shape == (h * w, H, W)
    for k in range(h * w):
        i, j = divmod(k, w)
        r, c = np.unravel_index(up[k].argmax(), (H, W))
        assert 8 * i <= r < 8 * (i + 1) and 11 * j <= c < 11 * (j + 1), (i, j, r, c)
        # Half-pixel centres: the block's own pixels hold the largest mass of the cell.
        assert up[k, 8 * i : 8 * i + 8, 11 * j : 11 * j + 11].sum() >= 0.5 * up[k].sum()
