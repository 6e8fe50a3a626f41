"""Gradient-based inspection through a frozen part: freezing is the optimiser's business only.

Frozen parts (`frozen_patterns()`) are kept fixed by the optimiser and
skipped by the train step's differentiation; the model's forward function
is the same, so Grad-CAM and filter ascent get true gradients through them.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _viz_helpers import random_variables
from fluxseg import models, viz
from fluxseg.runtime import backend


def test_gradcam_on_the_frozen_gap_classifier_is_cam_over_hw():
    """The seed's transfer-learning classifier: frozen ResNet-18, global average pooling, dense."""
    model = models.create("gap_classifier", backbone="resnet18", freeze_backbone=True, num_classes=3)
    assert models.frozen_patterns(model) == (r"^backbone/",)
    x = jax.random.normal(jax.random.key(4), (2, 96, 64, 3))
    v = random_variables(model, x)
    targets = [0, 2]
    raw = np.asarray(viz.gradcam(model, v, x, "backbone/layer4", targets, relu=False, normalize=False))
    acts = np.asarray(viz.activations(model, v, x, ["backbone/layer4"])["backbone/layer4"], np.float64)  # [2, 3, 2, 512]
    w = np.asarray(v["params"]["dense"]["kernel"], np.float64)
    h, wd = acts.shape[1:3]
    cam = np.einsum("bhwk,kb->bhw", acts, w[:, targets]) / (h * wd)
    assert np.abs(cam).min() > 0
    np.testing.assert_allclose(raw, cam, rtol=1e-5, atol=1e-6 * np.abs(cam).max())


@pytest.fixture(scope="module")
def hybrid():
    model = models.create("hybrid_vgg16_resnet50", num_classes=4)
    assert models.frozen_patterns(model) == (r"^vgg16/",)
    x = jax.random.normal(jax.random.key(5), (2, 32, 32, 3))
    return model, random_variables(model, x), x


def test_gradcam_on_the_frozen_hybrid_at_a_vgg_layer_is_the_derivative_of_the_score(hybrid, monkeypatch):
    """Above VGG16 the hybrid is not conv -> GAP -> dense, so CAM does not apply; what holds for
    any network: with A the layer's maps [h, w, C] and y the score, shifting every position of
    the layer by the activation vector at one position (i, j) changes y at the rate
    sum_i'j'k dy/dA_i'j'k A_ijk = h*w * sum_k w_k A_ijk = h*w * cam_ij (w_k = mean_i'j' dy/dA_i'j'k).
    Those rates come from forward-mode differentiation here, which Grad-CAM does not use."""
    model, v, x = hybrid
    layer, targets = "vgg16/block5_conv3", np.array([1, 3])
    raw = np.asarray(viz.gradcam(model, v, x, layer, targets.tolist(), relu=False, normalize=False))
    acts = np.asarray(viz.activations(model, v, x, [layer])[layer])  # [2, 2, 2, 512]
    b, h, w, c = acts.shape
    # One direction per position: the activation vector there, repeated over the whole map.
    directions = jnp.broadcast_to(acts.reshape(b, 1, 1, h * w, c), (b, h, w, h * w, c))

    def scores(s):  # s [B, h*w]: how far to move along each direction
        pert = {"vgg16": {"block5_conv3": jnp.einsum("bijpc,bp->bijc", directions, s)}}
        return model.apply({**v, "perturbations": pert}, x, train=False)[jnp.arange(b), targets]

    monkeypatch.setenv(backend.ENV, "off")  # the CPU max-pool defines a reverse rule only
    rates = np.asarray(jax.jit(jax.jacfwd(scores))(jnp.zeros((b, h * w))))[np.arange(b), np.arange(b)]
    expect = rates.reshape(b, h, w) / (h * w)
    assert np.abs(expect).min() > 0
    np.testing.assert_allclose(raw, expect, rtol=1e-4, atol=1e-5 * np.abs(expect).max())


def test_filter_ascent_climbs_through_the_frozen_vgg16(hybrid):
    """The hybrid's adapter sits above the frozen VGG16: its filters are reached through it."""
    model, v, _ = hybrid
    pats = viz.filter_patterns(model, v, "adapter", [0, 1, 2], size=32, steps=3, preprocess=lambda z: z / 255.0)
    live = pats.losses.max(axis=1) > 0
    assert live.sum() >= 2  # with these weights filter 2 is dead behind its ReLU (no gradient either)
    assert not pats.no_gradient[live].any()
    assert (pats.losses[live, -1] > pats.losses[live, 0]).all()
