"""Colour jitter (image only), random-resized-crop, mask_map."""
from __future__ import annotations

import numpy as np
import pytest

import fluxseg.data as fd
from fluxseg.data import augment, recipe
from fluxseg.data import transforms as T
from fluxseg.data._tf import tf


def test_color_jitter_changes_values_not_geometry():
    rng = np.random.default_rng(0)
    image = rng.integers(30, 220, (20, 24, 3), dtype=np.uint8)
    out = augment.color_jitter(image, tf.constant([1, 2], tf.int64), (0.4, 0.4, 0.4)).numpy()
    assert out.shape == image.shape and not np.array_equal(out, image)
    # Brightness only: every pixel scaled by one factor -> ratios agree everywhere.
    bright = augment.color_jitter(image, tf.constant([1, 2], tf.int64), (0.4, 0, 0)).numpy()
    factor = np.median(bright / image)
    np.testing.assert_allclose(bright, np.clip(np.round(image * factor), 0, 255), atol=1)
    same = augment.color_jitter(image, tf.constant([1, 2], tf.int64), (0, 0, 0)).numpy()
    np.testing.assert_array_equal(same, image)


def test_jitter_in_the_recipe_leaves_the_mask_alone():
    cfg = fd.default_config()
    cfg.update(crop_size=(16, 16), hflip=True, color_jitter=(0.5, 0.5, 0.5))
    image = np.repeat(np.arange(16 * 16, dtype=np.int32).reshape(16, 16, 1) % 200, 3, -1)
    mask = (np.arange(16 * 16).reshape(16, 16, 1) % 7).astype(np.uint8)
    for k in range(4):
        img, msk, w = recipe.train_transform(tf.constant(image.astype(np.uint8)), tf.constant(mask),
                                             tf.constant([k, 0], tf.int64), cfg)
        msk = msk.numpy()
        assert w is None
        flipped = np.array_equal(msk, mask[:, ::-1])
        assert flipped or np.array_equal(msk, mask)  # geometry: only the flip
        plain = image[:, ::-1] if flipped else image
        # The jittered image is a monotone function of the original: same order of pixels.
        order = np.argsort(plain[..., 0].ravel(), kind="stable")
        assert (np.diff(img.numpy()[..., 0].ravel()[order].astype(int)) >= 0).all()


def test_random_resized_crop_takes_a_box_and_resizes_it():
    # Columns encode x: a crop resized keeps columns increasing, rows constant.
    image = np.tile(np.arange(0, 200, 2, dtype=np.uint8)[None, :, None], (80, 1, 3))
    sizes = set()
    for s in range(8):
        out = augment.random_resized_crop(image, tf.constant([s, 3], tf.int64), (32, 32)).numpy()
        assert out.shape == (32, 32, 3)
        assert (out == out[:1]).all()                          # rows unchanged
        assert (np.diff(out[0, :, 0].astype(int)) >= 0).all()  # order of columns kept
        sizes.add((int(out[0, 0, 0]), int(out[0, -1, 0])))
    assert len(sizes) > 1  # different boxes for different seeds


def test_mask_map_turns_stored_values_into_classes():
    mask = tf.constant(np.array([[1, 2], [3, 2]], np.uint8)[..., None])
    out = T.map_mask_values(mask, (255, 1, 0, 255), "oxford_iiit_pet").numpy()[..., 0]
    np.testing.assert_array_equal(out, [[1, 0], [255, 0]])
    with pytest.raises(tf.errors.InvalidArgumentError, match="not in data.mask_map"):
        T.map_mask_values(tf.constant(np.full((2, 2, 1), 7, np.uint8)), (0, 1, 2), "x")
