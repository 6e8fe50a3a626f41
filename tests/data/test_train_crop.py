"""The short training path (fluxseg.data.train_crop): host and device give the same crops.

The folder's images are coloured by their masks (a colour per class, grey
where the mask is unlabelled, nothing black), so any misalignment between
image and mask, and any padding, shows in the pixels.
"""
from __future__ import annotations

import io
import os
from itertools import islice

import jax
import numpy as np
import pytest
from PIL import Image

import fluxseg.data as fd
from fluxseg.data import decode, device_augment, window as W
from fluxseg.data._tf import tf

PALETTE = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200], [220, 220, 40],
                    [40, 220, 220], [150, 60, 200]], np.uint8)
GREY = np.array([128, 128, 128], np.uint8)  # where the mask says 255 (unlabelled)
SIZES = [(24, 30), (48, 64), (40, 40), (30, 56), (56, 28), (36, 48)]


def _colour(mask):
    return np.where((mask == 255)[..., None], GREY, PALETTE[np.minimum(mask, 5)])


@pytest.fixture(scope="module")
def blocky(tmp_path_factory):
    """A segmentation folder of 12 PNG images of mixed sizes, 4x4-pixel class blocks."""
    root = tmp_path_factory.mktemp("blocky")
    os.makedirs(root / "images"), os.makedirs(root / "masks")
    rng = np.random.default_rng(0)
    for i in range(12):
        h, w = SIZES[i % len(SIZES)]
        blocks = rng.choice(np.array([0, 1, 2, 3, 4, 5, 255], np.uint8), (h // 4, w // 4))
        mask = np.kron(blocks, np.ones((4, 4), np.uint8))
        Image.fromarray(_colour(mask)).save(root / "images" / f"{i:02d}.png")
        m = Image.fromarray(mask, mode="P")
        m.putpalette([v for j in range(256) for v in (j, j, j)])
        m.save(root / "masks" / f"{i:02d}.png")
    return root


def _cfg(root, tmp_path_factory, **kw):
    cfg = fd.default_config()
    kw = {"scale_range": (0.5, 2.0), **kw}
    cfg.update(name="fluxseg_segmentation_folder", manual_dir=str(root),
               data_dir=str(tmp_path_factory.getbasetemp() / "tfds"), crop_size=(32, 40),
               validation_fraction=0.0, num_parallel_calls=2, **kw)
    return cfg


def _batches(cfg, steps, start_step=0, seed=3):
    it = fd.train_iterator(cfg, global_batch_size=6, seed=seed, start_step=start_step,
                           process_index=0, process_count=1)
    return list(islice(it, steps))


def _finish(batch, cfg, dense=True):
    fn = jax.jit(device_augment.make(cfg, dense))
    return {k: np.asarray(v) for k, v in fn(batch).items()}


def _check_aligned(image, mask):
    """Colour follows the mask away from block edges; black exactly where the crop is padding."""
    black = (image == 0).all(-1)
    assert (mask[black] == 255).all()
    m = mask.astype(np.int32)
    interior = np.zeros_like(black)
    same = np.ones_like(m[1:-1, 1:-1], bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            same &= m[1 + dy:m.shape[0] - 1 + dy, 1 + dx:m.shape[1] - 1 + dx] == m[1:-1, 1:-1]
    interior[1:-1, 1:-1] = same
    interior &= ~black
    # Bilinear blends across block edges; inside a block the colour is exact (to rounding).
    diff = np.abs(image[interior].astype(int) - _colour(mask[interior]).astype(int))
    assert diff.max(initial=0) <= 1
    return interior.sum(), black.any()


@pytest.mark.parametrize("mode", ["host", "device"])
def test_crops_keep_image_and_mask_aligned(blocky, tmp_path_factory, mode):
    cfg = _cfg(blocky, tmp_path_factory, hflip=True, augment_on=mode)
    checked, padded, n, corners = 0, 0, 0, set()
    for batch in _batches(cfg, 6):
        if mode == "device":
            assert batch["image"].dtype == np.uint8 and batch["mask"].dtype == np.uint8
            batch = _finish(batch, cfg)
        assert batch["image"].shape == (6, 32, 40, 3) and batch["mask"].shape == (6, 32, 40)
        for image, mask in zip(batch["image"], batch["mask"]):
            c, p = _check_aligned(np.asarray(image), np.asarray(mask))
            checked, padded, n = checked + c, padded + p, n + 1
            if p:  # a small image: placed at a random offset inside the crop
                rows, cols = np.nonzero(~(np.asarray(image) == 0).all(-1))
                corners.add((rows.min(), cols.min()))
    assert checked > 0.25 * n * 32 * 40  # block interiors: a quarter of all pixels
    assert 0 < padded < n                # small scales padded, large ones did not
    assert len(corners) > 1


@pytest.mark.parametrize("recipe", ["scale", "cut", "jitter"])
def test_device_path_gives_the_host_path_crops(blocky, tmp_path_factory, recipe):
    kw = {"scale": {}, "cut": {"scale_range": (1.0, 1.0)},
          "jitter": {"color_jitter": (0.3, 0.3, 0.3)}}[recipe]
    host = _batches(_cfg(blocky, tmp_path_factory, augment_on="host", **kw), 4)
    cfg = _cfg(blocky, tmp_path_factory, augment_on="device", **kw)
    for h, d in zip(host, _batches(cfg, 4)):
        d = _finish(d, cfg)
        np.testing.assert_array_equal(d["mask"], h["mask"])      # the same pixel, every pixel
        diff = np.abs(d["image"] - h["image"].astype(np.float32))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01      # to float rounding


def test_classification_crops_match_and_resume(tmp_path, tmp_path_factory):
    root = tmp_path / "cls"
    rng = np.random.default_rng(1)
    for c in ("a", "b"):
        os.makedirs(root / c)
        for i in range(6):
            h, w = SIZES[i]
            Image.fromarray(rng.integers(0, 256, (h, w, 3), np.uint8)).save(
                root / c / f"{i}.jpg", quality=95)
    cfg = fd.default_config()
    cfg.update(name="fluxseg_image_folder", task="classification", manual_dir=str(root),
               data_dir=str(tmp_path / "tfds"), crop_size=(24, 24), random_resized_crop=True,
               color_jitter=(0.2, 0.2, 0.2), validation_fraction=0.0)
    host = _batches(cfg.copy_and_resolve_references(), 3)
    cfg.augment_on = "device"
    device = _batches(cfg, 3)
    for h, d in zip(host, device):
        assert d["image"].shape == (6, 24, 24, 3) and d["image"].dtype == np.uint8
        out = _finish(d, cfg, dense=False)
        np.testing.assert_array_equal(out["label"], h["label"])
        assert np.abs(out["image"] - h["image"].astype(np.float32)).max() <= 1
    for a, b in zip(device[1:], _batches(cfg, 2, start_step=1)):
        assert all(np.array_equal(a[k], b[k]) for k in a)


def test_device_stream_resumes_byte_identical(blocky, tmp_path_factory):
    cfg = _cfg(blocky, tmp_path_factory, augment_on="device", color_jitter=(0.2, 0.2, 0.2))
    full = _batches(cfg, 5)  # 2 steps an epoch: crosses two epoch boundaries
    assert full[0]["image"].shape[1:] == (56, 64, 3)  # the bucket: the largest height and width
    again = _batches(cfg, 2, start_step=3)
    for a, b in zip(full[3:], again):
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(_batches(cfg, 1, seed=4)[0]["aug_ints"], full[0]["aug_ints"])


def test_scale_crop_draws_follow_the_recipe():
    # 4000 draws on a 1000x1000 image, crop 100x100, scale 0.5-2: the window
    # is the crop over the scale, so (hi - lo) / window estimates the scale.
    hw = tf.fill([4000, 2], 1000)
    u = tf.random.stateless_uniform([4000, W.SCALE_CROP_DRAWS], tf.constant([5, 9], tf.int64))
    ints, floats = (x.numpy() for x in W.scale_crop(u, hw, (100, 100), (0.5, 2.0), True,
                                                    (0.2, 0.0, 0.4)))
    scale = (ints[:, 1] - ints[:, 0]) / ints[:, 6]
    assert 0.49 < scale.min() and scale.max() < 2.02
    assert abs(scale.mean() - 1.25) < 0.02 and abs(np.median(scale) - 1.25) < 0.04  # U(0.5, 2)
    assert abs(ints[:, 8].mean() - 0.5) < 0.03                                       # flips
    assert ((ints[:, 4] >= 0) & (ints[:, 4] + ints[:, 6] <= 1000)).all()             # windows inside
    b, c, s = floats.T
    assert 0.8 <= b.min() and b.max() <= 1.2 and (c == 1).all() and 0.6 <= s.min() <= s.max() <= 1.4
    assert abs(b.mean() - 1) < 0.01 and abs(s.mean() - 1) < 0.02


def test_resized_crop_boxes_follow_the_inception_rule():
    boxes = []
    for i in range(600):
        hw = tf.constant([300, 400]) if i < 590 else tf.constant([30, 900])  # last: no box fits
        ints = W.resized_crop(tf.constant([1, i], tf.int64), hw, (224, 224), True, (0, 0, 0))[0]
        boxes.append(ints.numpy()[0])
    boxes = np.array(boxes)
    y, x, h, w = boxes[:590, 4:8].T
    area, aspect = h * w / (300 * 400), w / h
    assert 0.079 < area.min() and area.max() <= 1.0 and 0.3 < area.mean() < 0.7
    assert (aspect > 0.74).all() and (aspect < 1.35).all()
    assert ((y >= 0) & (y + h <= 300) & (x >= 0) & (x + w <= 400)).all()
    assert 0.4 < boxes[:, 8].mean() < 0.6                             # flips
    np.testing.assert_array_equal(boxes[-1, 4:8], [0, 0, 30, 900])   # the whole image


def test_jpeg_window_decodes_as_the_whole_image_cut(tmp_path):
    rng = np.random.default_rng(2)
    pixels = np.kron(rng.integers(0, 256, (12, 15, 3), np.uint8), np.ones((8, 8, 1), np.uint8))
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=95)
    encoded = tf.constant(buf.getvalue())
    import tensorflow_datasets as tfds
    feature = tfds.features.Image(shape=(None, None, 3))
    full = tf.io.decode_jpeg(encoded, channels=3).numpy()
    np.testing.assert_array_equal(decode.header_size(encoded, feature).numpy(), (96, 120))
    for box in ([0, 0, 96, 120], [17, 33, 40, 51], [88, 100, 8, 20]):
        def draw(hw, box=box):
            assert hw.shape == (2,)
            return tf.constant([0] * 4 + box + [0]), tf.ones([3])
        got = decode.window(encoded, feature, draw)[0].numpy()
        y, x, h, w = box
        assert got.shape == (h, w, 3)
        diff = np.abs(got.astype(int) - full[y:y + h, x:x + w].astype(int))
        # Exact, but for the window's last column when the image goes on: its chroma
        # upsampling has no right neighbour to read.
        assert diff[:, :-1].max() == 0 and diff[:, -1].max() <= 4
    with pytest.raises(tf.errors.InvalidArgumentError):   # truncated: an error, never a grey image
        decode.window(tf.constant(buf.getvalue()[:len(buf.getvalue()) // 2]), feature,
                      lambda hw: (tf.constant([0, 96, 0, 120, 0, 0, 96, 120, 0]), tf.ones([3])))
