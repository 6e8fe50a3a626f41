"""Pooling demos: max pooling's shift behaviour, GAP features, bilinear transposed-conv doubling."""
import jax
import jax.numpy as jnp
import numpy as np

from _viz_helpers import random_variables
from fluxseg import models
from fluxseg.viz import pooling


def test_shift_by_the_stride_shifts_the_pooled_map_exactly():
    rng = np.random.default_rng(0)
    x = np.zeros((32, 32), np.float32)
    x[8:20, 6:18] = rng.uniform(0.1, 1, (12, 12))  # a random shape away from the borders
    pooled = np.asarray(pooling.max_pool(x))
    moved = np.asarray(pooling.max_pool(pooling.shift(x, 2, 4)))
    np.testing.assert_array_equal(moved[1:, 2:], pooled[:-1, :-2])
    # Three poolings: a shift by 8 = 2**3 moves the result by exactly one cell.
    a, b = pooling.repeated_max_pool(x, 3)[-1], pooling.repeated_max_pool(pooling.shift(x, 8, 0), 3)[-1]
    np.testing.assert_array_equal(b[1:], a[:-1])


def test_shift_inside_one_pooling_window_leaves_the_output_unchanged():
    x = np.zeros((32, 32), np.float32)
    for (r, c), v in zip([(8, 16), (0, 24), (16, 8)], [1.0, 0.5, 0.7]):
        x[r, c] = v  # dots at the top-left corner of 8x8 windows
    stages = pooling.repeated_max_pool(x, 3)
    for dy, dx in [(1, 1), (5, 3), (7, 7)]:  # stays in each dot's 8x8 window
        moved = pooling.repeated_max_pool(pooling.shift(x, dy, dx), 3)
        np.testing.assert_array_equal(moved[3], stages[3])
        assert not np.array_equal(moved[0], stages[0])
    # One pooling is not enough for a move of 5: the demo's point is *repeated* pooling.
    assert not np.array_equal(pooling.repeated_max_pool(pooling.shift(x, 5, 3), 1)[1], stages[1])


def test_same_padding_matches_tensorflow_rule():
    # tf.nn.pool 'SAME': output ceil(n / s), padding (total // 2, rest), -inf padding never wins.
    x = -np.arange(25, dtype=np.float32).reshape(5, 5)  # all negative: zero padding would show
    y = np.asarray(pooling.max_pool(x))
    assert y.shape == (3, 3)
    np.testing.assert_array_equal(y, -np.array([[0, 2, 4], [10, 12, 14], [20, 22, 24]], np.float32))


def test_shift_demo_loses_the_shift_after_repeated_pooling():
    demo = pooling.shift_demo(seed=0, max_shift=3, times=4)
    assert demo["shift"] != (0, 0)
    assert demo["differs"][0] > 0 and demo["differs"][-1] == 0


def test_gap_features_are_channel_means_of_the_last_map():
    model = models.create("vgg16", include_top=False)
    x = jax.random.normal(jax.random.key(0), (2, 64, 64, 3))
    v = random_variables(model, x)
    feats = pooling.gap_features(model, v, x)  # block5_pool: 2x2x512
    assert feats.shape == (2, 512)
    np.testing.assert_allclose(feats, np.asarray(jax.jit(model.apply)(v, x)).mean(axis=(1, 2)), rtol=1e-4, atol=1e-6)
    # gap_classifier: the vector its Dense head reads.
    gap = models.create("gap_classifier", backbone="vgg16", num_classes=3)
    gv = {"params": {"backbone": v["params"], "dense": {"kernel": jnp.eye(512)[:, :3], "bias": jnp.zeros(3)}}}
    np.testing.assert_allclose(pooling.gap_features(gap, gv, x)[:, :3], jax.jit(gap.apply)(gv, x), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(pooling.gap_features(gap, gv, x), feats, rtol=1e-4, atol=1e-6)


def test_bilinear_transposed_conv_doubles_an_image():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:20, :30].astype(np.float32)
    img = np.stack([yy * 3 + 10, xx * 2 + 5, np.full_like(yy, 77)], -1)  # two ramps and a constant
    up = pooling.bilinear_upsample2x(img)
    assert up.shape == (40, 60, 3)
    # Inside the border, bilinear interpolation of a ramp is the ramp at half-pixel positions.
    Y, X = np.mgrid[:40, :60].astype(np.float32)
    np.testing.assert_allclose(up[2:-2, 2:-2, 0], ((Y + 0.5) / 2 - 0.5)[2:-2, 2:-2] * 3 + 10, rtol=1e-5)
    np.testing.assert_allclose(up[2:-2, 2:-2, 1], ((X + 0.5) / 2 - 0.5)[2:-2, 2:-2] * 2 + 5, rtol=1e-5)
    np.testing.assert_allclose(up[1:-1, 1:-1, 2], 77, rtol=1e-6)
    noisy = rng.uniform(0, 255, (9, 13, 3)).astype(np.float32)
    np.testing.assert_allclose(pooling.bilinear_upsample2x(noisy)[1::2, 1::2][:-1, :-1].mean(), noisy[:-1, :-1].mean(), rtol=0.05)


def test_transposed_convolution_example():
    np.testing.assert_array_equal(pooling.transposed_conv_example(), [[2, 1, 3, 1], [1, 1, 1, 1], [4, 1, 5, 1], [1, 1, 1, 1]])
