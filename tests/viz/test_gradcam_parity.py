"""Grad-CAM on converted weights equals Keras (GradientTape) and torch (autograd) on the same weights."""
import jax.numpy as jnp
import numpy as np
import pytest

from _viz_helpers import rel_err
from fluxseg import models, viz, weights

TOL = 1e-4  # max |flax - reference| <= TOL * max |reference|


def test_vgg16_block5_conv3_matches_keras_gradient_tape(keras_vgg16, keras_viz):
    model, variables = keras_vgg16
    ref = keras_viz.arrays
    x, targets = jnp.asarray(ref["x224"]), ref["vgg16/targets"]  # two images, classes 386 and 7
    cam, scores = viz.gradcam(model, variables, x, "block5_conv3", targets, relu=False, normalize=False, return_scores=True)
    assert cam.shape == (2, 14, 14)
    assert rel_err(scores, ref["vgg16/logits"][np.arange(2), targets]) <= TOL
    assert rel_err(cam, ref["vgg16/gradcam"]) <= TOL
    # The reference maps are not trivially zero or one-signed: the comparison is on real structure.
    assert (ref["vgg16/gradcam"] > 0).any() and (ref["vgg16/gradcam"] < 0).any()


@pytest.mark.parametrize("arch,fname", [("resnet18", "resnet18-f37072fd.pth"), ("resnet50", "resnet50-0676ba61.pth")])
def test_resnet_layer4_matches_torch_autograd(arch, fname, torch_viz):
    ref = torch_viz.arrays
    variables = weights.convert_torchvision(torch_viz.file(fname), arch)
    x, targets = jnp.asarray(ref["xres"]), ref["res/targets"]  # 96x128: a non-square 3x4 layer4
    cam = viz.gradcam(models.create(arch), variables, x, "layer4", targets, relu=False, normalize=False)
    assert cam.shape == (2, 3, 4)
    assert rel_err(cam, ref[f"{arch}/gradcam"]) <= TOL
    # Normalised maps agree too (ReLU, per-image max), the form users look at.
    norm = np.maximum(ref[f"{arch}/gradcam"], 0)
    peak = norm.max(axis=(1, 2), keepdims=True)
    norm = np.where(peak > 0, norm / np.where(peak > 0, peak, 1), 0)  # an all-negative map stays zero
    got = viz.gradcam(models.create(arch), variables, x, "layer4", targets)
    assert np.abs(np.asarray(got) - norm).max() <= TOL
