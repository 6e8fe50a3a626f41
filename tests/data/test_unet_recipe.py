"""The U-Net paper's training recipe: weight map, elastic deformation, overlap-tile crops."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import fluxseg.data as fd
from fluxseg.data import elastic, recipe, train_crop, weight_map
from fluxseg.data._tf import tf
from fluxseg.data.isbi import fixture


def test_weight_map_equals_hand_computation_on_two_cells():
    # Two cells (columns 0-2 and 7-11) with a 4-pixel gap (columns 3-6).
    mask = np.zeros((5, 12), np.uint8)
    mask[:, :3] = 1
    mask[:, 7:] = 1
    w = weight_map.border_weights(mask, w0=10.0, sigma=5.0, ignore_index=255)
    # Balance: 60 pixels, 2 classes; 20 background -> 60/40, 40 cell -> 60/80.
    # In the gap d1 + d2 = (c - 2) + (7 - c) = 5 for every column c.
    gap = 1.5 + 10.0 * np.exp(-25.0 / 50.0)
    want = np.where(mask == 1, 0.75, gap)
    np.testing.assert_allclose(w, want, rtol=1e-6)


def test_weight_map_ignores_unlabelled_and_single_cells():
    mask = np.zeros((6, 6), np.uint8)
    mask[1:3, 1:3] = 1
    mask[5, :] = 255
    w = weight_map.border_weights(mask, w0=10.0, sigma=5.0, ignore_index=255)
    assert (w[5] == 0).all()                   # ignored pixels weigh nothing
    # 30 valid pixels: 4 cell, 26 background; one cell: no border term.
    np.testing.assert_allclose(w[:5][mask[:5] == 1], 30 / (2 * 4))
    np.testing.assert_allclose(w[:5][mask[:5] == 0], 30 / (2 * 26))


def _naive(mask, w0, sigma):
    """Every cell's distance transform on the whole image (the definition)."""
    cells, n = ndimage.label(mask == 1)
    d = np.sort(np.stack([ndimage.distance_transform_edt(cells != i) for i in range(1, n + 1)]), 0)
    term = w0 * np.exp(-((d[0] + d[1]) ** 2) / (2 * sigma ** 2))
    return weight_map.class_balance(mask, 255) + np.where(mask == 0, term, 0)


def test_windowed_distances_equal_the_definition_on_many_cells():
    _, labels = fixture.cell_slice(np.random.default_rng(3), (96, 80), num_cells=20)
    mask = (labels // 255).astype(np.uint8)
    np.testing.assert_allclose(weight_map.border_weights(mask, w0=10, sigma=5, ignore_index=255),
                               _naive(mask, 10, 5), atol=1e-5)


def test_zero_displacement_is_the_identity():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    mask = rng.integers(0, 5, (17, 23, 1), dtype=np.uint8)
    weight = rng.random((17, 23, 1)).astype(np.float32)
    out = elastic.elastic(image, mask, tf.zeros((17, 23, 2)), weight)
    np.testing.assert_array_equal(out[0], image)
    np.testing.assert_array_equal(out[1], mask)
    np.testing.assert_allclose(out[2], weight, rtol=1e-6)


def test_displacement_field_is_smooth_with_the_asked_spread():
    fields = np.stack([elastic.displacement_field(tf.constant([s, 1], tf.int64), (64, 64),
                                                  grid=3, sigma=10.0).numpy() for s in range(200)])
    assert 8.0 < fields[:, 32, 32].std() < 12.0          # ~sigma at a grid point
    assert np.abs(np.diff(fields, axis=1)).max() < 5.0    # bicubic: no jumps between pixels


def test_a_constant_shift_moves_image_and_mask_together():
    image = np.arange(12 * 10, dtype=np.uint8).reshape(12, 10, 1)
    field = tf.fill((12, 10, 2), 2.0)  # sample 2 px down and right
    out, mask, _ = elastic.elastic(image, image, field)
    np.testing.assert_array_equal(out.numpy()[:8, :6], image[2:10, 2:8])
    np.testing.assert_array_equal(mask.numpy()[:8, :6], image[2:10, 2:8])


def _two_level(rng, n=4, size=(48, 56)):
    """Images whose mask can be read off the pixels: 20 = class 0, 220 = class 1."""
    out = []
    for _ in range(n):
        _, labels = fixture.cell_slice(rng, size, num_cells=6, membrane=3)
        mask = (labels // 255).astype(np.uint8)
        out.append((np.where(mask == 1, 220, 20).astype(np.uint8)[..., None], mask[..., None]))
    return out


def _cfg(**kw):
    cfg = fd.default_config()
    cfg.update(crop_size=(40, 40), mirror_margin=8, elastic_sigma=10.0, border_weight_w0=10.0,
               hflip=True, **kw)
    return cfg


def test_recipe_keeps_image_mask_and_weight_aligned():
    cfg = _cfg()
    assert not train_crop.applies(cfg)  # mirrored context and elastic: the recipe path
    for k, (image, mask) in enumerate(_two_level(np.random.default_rng(1))):
        full_w = weight_map.border_weights(mask[..., 0], w0=10.0, sigma=5.0, ignore_index=255)
        img, msk, w = (t.numpy() for t in recipe.train_transform(
            tf.constant(image), tf.constant(mask), tf.constant([7, k], tf.int64), cfg))
        assert img.shape == (40, 40, 1) and msk.shape == (40, 40, 1) and w.shape == (40, 40, 1)
        pure = np.isin(img, (20, 220))  # pixels sampled from one region only
        assert pure.mean() > 0.7
        np.testing.assert_array_equal(msk[pure], (img[pure] == 220).astype(np.uint8))
        # A pixel sampled from cell pixels only (220) gets the cells' weight: the
        # weight map moved with the image (inside cells it is the class weight).
        cell_w = full_w[mask[..., 0] == 1][0]
        # (220 after rounding: up to 0.5/200 of the weight may come from background)
        np.testing.assert_allclose(w[img == 220], cell_w, atol=0.0025 * w.max())
        assert (w[img == 20] > cell_w).all()  # background: rarer class plus border term


def test_mirror_margin_gives_mirrored_context():
    image = np.arange(30 * 30, dtype=np.int32).reshape(30, 30, 1) % 251
    image = image.astype(np.uint8)
    mask = np.zeros((30, 30, 1), np.uint8)
    cfg = fd.default_config()
    cfg.update(crop_size=(46, 46), mirror_margin=8, hflip=False)
    out, _, _ = recipe.train_transform(tf.constant(image), tf.constant(mask),
                                       tf.constant([0, 0], tf.int64), cfg)
    # 30 + 2*8 = 46: the only crop is the whole padded image, a reflection at each side.
    want = np.pad(image, ((8, 8), (8, 8), (0, 0)), mode="reflect")
    np.testing.assert_array_equal(out.numpy(), want)


def test_pipeline_batches_carry_the_weight_map(tmp_path):
    manual = tmp_path / "manual"
    fixture.write_isbi(manual, num_slices=8, size=(48, 48))
    cfg = _cfg(name="fluxseg_isbi2012", builder_config="val3", manual_dir=str(manual),
               data_dir=str(tmp_path / "tfds"), num_parallel_calls=1)
    batch = next(fd.train_iterator(cfg, global_batch_size=2, seed=0,
                                   process_index=0, process_count=1))
    assert batch["weight"].shape == (2, 40, 40) and batch["weight"].dtype == np.float32
    assert batch["weight"][batch["mask"] == 0].max() > 2.0  # the border term in the gaps
    again = next(fd.train_iterator(cfg, global_batch_size=2, seed=0,
                                   process_index=0, process_count=1))
    np.testing.assert_array_equal(batch["weight"], again["weight"])  # reproducible
    cfg.cache = True  # weight maps computed once before the cache: the same batches
    cached = next(fd.train_iterator(cfg, global_batch_size=2, seed=0,
                                    process_index=0, process_count=1))
    for key in ("image", "mask", "weight"):
        np.testing.assert_array_equal(cached[key], batch[key])


def test_mirror_margin_larger_than_the_image_is_refused(shapes_cfg):
    shapes_cfg.mirror_margin = 40
    with pytest.raises(ValueError, match="mirror_margin=40 must be smaller"):
        fd.train_iterator(shapes_cfg, global_batch_size=8, seed=0, process_index=0,
                          process_count=1)


@pytest.mark.parametrize("field,value,match", [
    ("mirror_margin", -1, "mirror_margin=-1"), ("elastic_grid", 1, "elastic_grid=1"),
    ("border_weight_sigma", 0.0, "border_weight_sigma=0.0"),
    ("color_jitter", (0.2, 1.5, 0.0), r"color_jitter=\(0.2, 1.5, 0.0\)")])
def test_bad_recipe_options_are_named(shapes_cfg, field, value, match):
    shapes_cfg[field] = value
    with pytest.raises(ValueError, match=match):
        fd.train_iterator(shapes_cfg, global_batch_size=8, seed=0, process_index=0,
                          process_count=1)
