"""Real forward/backward passes at small widths: features, BatchNorm modes, freezing, factories, dtypes."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from fluxseg import models


def init(model, x, seed=0):
    return jax.jit(lambda x: model.init(jax.random.key(seed), x, train=False))(x)


def test_named_features_of_fcn_resnet18():
    model = models.create("fcn_resnet18", variant="8s", width=8, num_classes=4)
    x = jax.random.normal(jax.random.key(1), (2, 64, 96, 3))
    v = init(model, x)
    out, feats = models.features(model, v, x, ["backbone/layer2", "backbone/layer3", "backbone/layer4", "logits"])
    assert feats["backbone/layer2"].shape == (2, 8, 12, 16)
    assert feats["backbone/layer3"].shape == (2, 4, 6, 32)
    assert feats["backbone/layer4"].shape == (2, 2, 3, 64)
    np.testing.assert_array_equal(feats["logits"], out)
    with pytest.raises(KeyError, match="available: .*backbone/layer1"):
        models.features(model, v, x, ["backbone/layer9"])


def test_keras_resnet50_taps_the_unet_skip_names():
    model = models.create("unet_resnet50", num_classes=2, full_resolution=False)
    v = jax.eval_shape(lambda x: model.init(jax.random.key(0), x), jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32))
    names = ["encoder/conv1_relu", "encoder/conv2_block3_out", "encoder/conv3_block4_out", "encoder/conv4_block6_out", "encoder/conv5_block3_out"]
    shapes = jax.eval_shape(lambda v, x: models.features(model, v, x, names)[1], v, jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32))
    assert [shapes[n].shape for n in names] == [(1, 32, 32, 64), (1, 16, 16, 256), (1, 8, 8, 512), (1, 4, 4, 1024), (1, 2, 2, 2048)]


def test_batchnorm_uses_batch_statistics_only_in_training():
    model = models.create("resnet18", width=8, num_classes=5)
    x = 3.0 + 2.0 * jax.random.normal(jax.random.key(2), (4, 32, 32, 3))
    v = init(model, x)
    y_eval = model.apply(v, x, train=False)
    y_train, upd = model.apply(v, x, train=True, mutable=["batch_stats"])
    assert not np.allclose(y_eval, y_train, atol=1e-3)
    # Flax momentum 0.9 == PyTorch momentum 0.1: new = 0.9 * old + 0.1 * batch mean
    x_mean = np.asarray(nn.Conv(8, (7, 7), (2, 2), padding=((3, 3), (3, 3)), use_bias=False).apply(
        {"params": v["params"]["conv1"]}, x)).mean(axis=(0, 1, 2))
    np.testing.assert_allclose(upd["batch_stats"]["bn1"]["mean"], 0.1 * x_mean, rtol=1e-4, atol=1e-5)


def test_dropout_needs_an_rng_only_in_training():
    model = models.create("cnn_small")
    x = jnp.ones((1, 76, 76, 3))
    v = init(model, x)
    model.apply(v, x, train=False)
    a = model.apply(v, x, train=True, rngs={"dropout": jax.random.key(0)})
    b = model.apply(v, x, train=True, rngs={"dropout": jax.random.key(1)})
    assert not np.allclose(a, b)
    with pytest.raises(Exception, match="dropout"):
        model.apply(v, x, train=True)


def test_the_hybrid_differentiates_through_its_frozen_vgg16_and_names_it_frozen():
    # Freezing is the optimiser's business (train/step.py): the forward function itself
    # passes true gradients to VGG16, which Grad-CAM and filter ascent need (issue 20).
    model = models.create("hybrid_vgg16_resnet50", num_classes=3)
    x = jax.random.normal(jax.random.key(3), (2, 32, 32, 3))
    v = init(model, x)

    def loss(params):
        logits, _ = model.apply({**v, "params": params}, x, train=True, mutable=["batch_stats"])
        return jnp.sum(logits**2)

    grads = traverse_util.flatten_dict(jax.jit(jax.grad(loss))(v["params"]), sep="/")
    vgg = [np.abs(g).max() for k, g in grads.items() if k.startswith("vgg16/")]
    rest = [np.abs(g).max() for k, g in grads.items() if not k.startswith("vgg16/")]
    assert len(vgg) == 26 and min(vgg) > 0.0
    assert max(rest) > 0.0
    assert models.frozen_patterns(model) == (r"^vgg16/",)
    assert models.frozen_patterns(models.create("hybrid_vgg16_resnet50", freeze_vgg=False)) == ()


class TaggedConv(nn.Conv):
    """A stand-in for a faster convolution: behaves like nn.Conv, is recognisable by type."""


@pytest.mark.parametrize("name,kw,hwc", [
    ("fcn_resnet18", {"variant": "8s", "width": 8}, (64, 64, 3)),
    ("unet", {"features": 4, "padding": "same"}, (32, 32, 1)),
    ("resnet50_keras", {}, (32, 32, 3)),
    ("vgg16", {}, (32, 32, 3)),
])
def test_every_convolution_comes_from_the_ops_factories(name, kw, hwc):
    seen = []

    def record(next_fun, args, kwargs, context):
        seen.append(type(context.module))
        return next_fun(*args, **kwargs)

    model = models.create(name, ops=models.Ops(conv=TaggedConv), **kw)
    with nn.intercept_methods(record):
        jax.eval_shape(lambda x: model.init(jax.random.key(0), x), jax.ShapeDtypeStruct((1, *hwc), jnp.float32))
    assert TaggedConv in seen
    assert not any(t is nn.Conv for t in seen), "a model built nn.Conv directly instead of ops.conv"


def test_bfloat16_compute_keeps_float32_parameters():
    model = models.create("unet", features=4, padding="same", dtype=jnp.bfloat16)
    x = jnp.ones((1, 32, 32, 1))
    v = init(model, x)
    assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(v["params"]))
    assert jax.jit(model.apply)(v, x).dtype == jnp.bfloat16
