"""The CPU forms of convolution and max pooling equal the plain `lax` ops.

Outputs and gradients (input and kernel) are compared for odd and even
sizes and every kernel/stride/padding the zoo uses, ties included for the
pool (zeros after a ReLU are the common case), and whole models are compared
with the forms switched on and off.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from fluxseg import models
from fluxseg.models import conv as conv_lib
from fluxseg.runtime import backend as ff
from fluxseg.models import layers
from fluxseg.models.pool import max_pool_slices

RNG = np.random.default_rng(0)


def _rand(*shape, ties=False):
    x = RNG.standard_normal(shape).astype(np.float32)
    return jnp.asarray(np.maximum(np.round(x), 0) if ties else x)


def _vjp_pair(f, g, *args):
    """Outputs and gradients of f and g at args, for one random cotangent."""
    yf, vf = jax.vjp(f, *args)
    yg, vg = jax.vjp(g, *args)
    ct = _rand(*yf.shape)
    return (yf, yg), list(zip(vf(ct), vg(ct)))


@pytest.fixture
def forms(monkeypatch):
    def set_(mode):
        monkeypatch.setenv(ff.ENV, mode)
    return set_


@pytest.mark.parametrize("size", [7, 8, 9])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("pads", [((0, 0), (0, 0)), ((1, 1), (1, 1)), ((0, 2), (1, 0))])
def test_pointwise_conv_equals_lax(forms, size, stride, pads):
    forms("on")
    x, k = _rand(2, size, size + 1, 5), _rand(1, 1, 5, 6)
    plain = lambda x, k: lax.conv_general_dilated(x, k, (stride, stride), pads, dimension_numbers=("NHWC", "HWIO", "NHWC"))  # noqa: E731
    fast = lambda x, k: conv_lib.conv2d(x, k, (stride, stride), pads)  # noqa: E731
    (a, b), grads = _vjp_pair(plain, fast, x, k)
    assert a.shape == b.shape
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)
    for ga, gb in grads:
        np.testing.assert_allclose(gb, ga, rtol=1e-5, atol=1e-5)


def test_pointwise_form_is_a_matmul_on_cpu(forms):
    """The point of the form: no convolution is left in the 1x1 program (forward and gradients)."""
    x, k = _rand(2, 8, 8, 4), _rand(1, 1, 4, 3)
    loss = lambda x, k: (conv_lib.conv2d(x, k, (2, 2)) ** 2).sum()  # noqa: E731
    forms("on")
    on = jax.jit(jax.grad(loss, (0, 1))).lower(x, k).as_text()
    forms("off")
    off = jax.jit(jax.grad(loss, (0, 1))).lower(x, k).as_text()
    assert "convolution" not in on and "dot_general" in on
    assert "convolution" in off


@pytest.mark.parametrize("window,stride,padding,ceil_mode,size", [
    (2, 2, 0, False, 8), (2, 2, 0, False, 9),      # U-Net, VGG, small CNN (floor)
    (3, 2, 1, False, 8), (3, 2, 1, False, 9),      # torchvision ResNet stem
    (3, 2, 0, False, 10), (3, 2, 0, False, 11),    # Keras ResNet50 (after its zero pad)
    (2, 2, 0, True, 9), (2, 2, 0, True, 7),        # Caffe ceil_mode (FCN-VGG16)
])
@pytest.mark.parametrize("ties", [False, True])
def test_max_pool_equals_lax(forms, window, stride, padding, ceil_mode, size, ties):
    x = _rand(2, size, size + 1, 3, ties=ties)
    pool = lambda x: layers.max_pool(x, window, stride, padding, ceil_mode)  # noqa: E731
    forms("off")
    ya, va = jax.vjp(pool, x)
    forms("on")
    yb, vb = jax.vjp(pool, x)
    ct = _rand(*ya.shape)
    np.testing.assert_array_equal(yb, ya)
    # Ties go to the first maximum in the window, as select-and-scatter does:
    # equal up to float summation order where windows overlap.
    np.testing.assert_allclose(vb(ct)[0], va(ct)[0], rtol=1e-6, atol=1e-6)


def test_max_pool_tie_goes_to_first_tap():
    x = jnp.zeros((1, 2, 2, 1))
    g = jax.grad(lambda x: max_pool_slices(x, 2, 2, ((0, 0), (0, 0))).sum())(x)
    np.testing.assert_array_equal(g[0, :, :, 0], [[1.0, 0.0], [0.0, 0.0]])


def test_conv_module_matches_nn_conv():
    x = _rand(2, 9, 9, 5)
    for kernel, stride, pad in [(1, 1, 0), (1, 2, 0), (3, 1, 1), (7, 2, 3)]:
        kw = dict(strides=(stride, stride), padding=layers.sym_pad(pad))
        ours, theirs = conv_lib.Conv(6, (kernel, kernel), **kw), nn.Conv(6, (kernel, kernel), **kw)
        v_ours, v_theirs = ours.init(jax.random.key(1), x), theirs.init(jax.random.key(1), x)
        # Same parameter names, shapes and initial values: checkpoints and converted weights carry over.
        assert jax.tree.structure(v_ours) == jax.tree.structure(v_theirs)
        for a, b in zip(jax.tree.leaves(v_ours), jax.tree.leaves(v_theirs)):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(ours.apply(v_theirs, x), theirs.apply(v_theirs, x), rtol=1e-5, atol=1e-5)
    y = conv_lib.Conv(4, (1, 1), dtype=jnp.bfloat16).init_with_output(jax.random.key(0), x)[0]
    assert y.dtype == jnp.bfloat16


def test_conv_module_rejects_string_padding():
    with pytest.raises(ValueError, match="explicit"):
        conv_lib.Conv(4, (3, 3), padding="SAME").init(jax.random.key(0), _rand(1, 5, 5, 2))


def test_switch(monkeypatch):
    monkeypatch.delenv(ff.ENV, raising=False)
    assert ff.fast_forms() == (jax.default_backend() == "cpu")
    monkeypatch.setenv(ff.ENV, "off")
    assert not ff.fast_forms()
    monkeypatch.setenv(ff.ENV, "fast")
    with pytest.raises(ValueError, match="auto, on, off"):
        ff.fast_forms()


@pytest.mark.parametrize("name,kw,shape", [
    ("resnet50", dict(width=8, num_classes=5), (2, 64, 64, 3)),
    ("resnet50_keras", dict(num_classes=5), (1, 64, 64, 3)),
    ("unet", dict(features=4, num_classes=3), (1, 188, 188, 1)),
    ("fcn_vgg16", dict(num_classes=3), (1, 40, 40, 3)),
])
def test_models_same_with_forms_on_and_off(forms, name, kw, shape):
    """A train-mode forward and the parameter gradients agree with the forms on and off.

    In float64, so that the comparison is tight: in float32 the BatchNorm of
    a 2x2 map over a batch of 2 amplifies summation-order differences to 1e-2.
    """
    model = models.create(name, **kw)
    with jax.enable_x64(True):
        x = _rand(*shape).astype(jnp.float64)
        variables = jax.tree.map(lambda v: v.astype(jnp.float64), model.init(jax.random.key(0), x, train=False))
        params, rest = variables["params"], {k: v for k, v in variables.items() if k != "params"}

        def loss(p):
            out = model.apply({"params": p, **rest}, x, train=True, mutable=list(rest), rngs={"dropout": jax.random.key(1)})
            logits = out[0] if isinstance(out, tuple) else out
            assert logits.dtype == jnp.float64
            return jnp.mean(logits ** 2)

        results = {}
        for mode in ("off", "on"):
            forms(mode)
            results[mode] = jax.jit(jax.value_and_grad(loss))(params)
    (l_off, g_off), (l_on, g_on) = results["off"], results["on"]
    np.testing.assert_allclose(l_on, l_off, rtol=1e-10)
    for a, b in zip(jax.tree.leaves(g_off), jax.tree.leaves(g_on)):
        a, b = np.asarray(a), np.asarray(b)
        np.testing.assert_allclose(b, a, rtol=1e-7, atol=1e-9 * np.abs(a).max() + 1e-12)
