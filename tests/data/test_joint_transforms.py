"""Image and mask stay aligned through random scale, crop and flip."""
from __future__ import annotations

import numpy as np
import pytest

from fluxseg.data import transforms as T
from fluxseg.data._tf import tf

# Class id -> colour; no class is black, so black pixels can only be padding.
PALETTE = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200], [220, 220, 40],
                    [40, 220, 220], [150, 60, 200]], np.uint8)


def _blocky_example(h=40, w=56, block=8, seed=0):
    """A mask of random 8x8 class blocks, and the image it colours."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, len(PALETTE), (h // block, w // block))
    mask = np.kron(blocks, np.ones((block, block), np.int64)).astype(np.uint8)
    return PALETTE[mask], mask[..., None]


def _interior(mask: np.ndarray) -> np.ndarray:
    """Pixels whose 3x3 neighbourhood has a single (non-ignore) class."""
    m = mask.astype(np.int32)
    same = np.ones_like(m[1:-1, 1:-1], bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            same &= m[1 + dy:m.shape[0] - 1 + dy, 1 + dx:m.shape[1] - 1 + dx] == m[1:-1, 1:-1]
    out = np.zeros_like(m, bool)
    out[1:-1, 1:-1] = same & (m[1:-1, 1:-1] != 255)
    return out


def _augment(image, mask, position, **kw):
    kw = {"crop_size": (32, 32), "scale_range": (0.5, 2.0), "hflip": True,
          "ignore_index": 255, **kw}
    out = T.train_transform(tf.constant(image), tf.constant(mask),
                            T.element_seed(7, position), **kw)
    return out[0].numpy(), out[1].numpy()[..., 0]


def test_colour_derived_mask_stays_consistent():
    image, mask = _blocky_example()
    checked, padded = 0, 0
    for position in range(40):
        out_img, out_mask = _augment(image, mask, position)
        assert out_img.shape == (32, 32, 3) and out_mask.shape == (32, 32)
        assert out_img.dtype == np.uint8 and out_mask.dtype == np.uint8
        inside = _interior(out_mask)
        diff = np.abs(out_img[inside].astype(int) - PALETTE[out_mask[inside]].astype(int))
        assert diff.max(initial=0) <= 1, position
        # Padding: the mask is ignore exactly where the image is black.
        pad = out_mask == 255
        np.testing.assert_array_equal(pad, (out_img == 0).all(-1))
        checked += inside.sum()
        padded += pad.any()
    assert checked > 0.5 * 40 * 32 * 32  # the check covered most pixels
    assert 0 < padded < 40  # scales < 1 needed padding, others did not


def test_flip_and_crop_move_image_and_mask_together():
    image, mask = _blocky_example(32, 32)
    flips = 0
    for position in range(16):
        out_img, out_mask = _augment(image, mask, position, scale_range=(1.0, 1.0))
        flipped = np.array_equal(out_mask, mask[:, ::-1, 0])
        assert flipped or np.array_equal(out_mask, mask[..., 0])
        np.testing.assert_array_equal(out_img, image[:, ::-1] if flipped else image)
        flips += flipped
    assert 3 <= flips <= 13


def test_transforms_are_keyed_by_position_only():
    image, mask = _blocky_example()
    a = _augment(image, mask, 5)
    b = _augment(image, mask, 5)
    c = _augment(image, mask, 6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_small_images_are_placed_randomly_inside_the_crop():
    image, mask = _blocky_example(16, 16)
    corners = set()
    for position in range(12):
        _, out_mask = _augment(image, mask, position, scale_range=(1.0, 1.0), hflip=False)
        rows, cols = np.nonzero(out_mask != 255)
        assert rows.max() - rows.min() == 15 and cols.max() - cols.min() == 15
        corners.add((rows.min(), cols.min()))
    assert len(corners) > 1


@pytest.mark.parametrize("hw", [(32, 32), (40, 56), (16, 16)])
def test_crop_is_the_same_with_the_image_size_known_or_not(hw):
    # random_crop returns an image already of the crop's size untouched when
    # its static shape says so; with the shape unknown it takes the general path.
    image, mask = _blocky_example(*hw)
    unknown = tf.TensorSpec([None, None, None], tf.uint8)

    @tf.function(input_signature=[unknown, unknown, tf.TensorSpec([2], tf.int64)])
    def crop_unknown_shape(image, mask, seed):
        return T.random_crop(image, mask, seed, (32, 32), 255)

    for position in range(8):
        seed = T.element_seed(3, position)
        known = T.random_crop(tf.constant(image), tf.constant(mask), seed, (32, 32), 255)
        general = crop_unknown_shape(tf.constant(image), tf.constant(mask), seed)
        for a, b in zip(known, general):
            assert a.shape == (32, 32, a.shape[-1])
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    if hw == (32, 32):
        np.testing.assert_array_equal(known[0].numpy(), image)


@pytest.mark.parametrize("mode", ["pad", "resize"])
def test_eval_transforms(mode):
    image, mask = _blocky_example(24, 40)
    if mode == "pad":
        out_img, out_mask = T.pad_to(tf.constant(image), tf.constant(mask), (32, 48), 255)
        np.testing.assert_array_equal(out_mask.numpy()[:24, :40], mask)
        assert (out_mask.numpy()[24:] == 255).all() and (out_img.numpy()[:, 40:] == 0).all()
        with pytest.raises(tf.errors.InvalidArgumentError, match="eval_size"):
            T.pad_to(tf.constant(image), tf.constant(mask), (16, 48), 255)
    else:
        out_img, out_mask = T.resize_to(tf.constant(image), tf.constant(mask), (48, 80))
        doubled = np.kron(mask[..., 0], np.ones((2, 2)))
        np.testing.assert_array_equal(out_mask.numpy()[..., 0], doubled)
        inside = _interior(out_mask.numpy()[..., 0])
        assert (out_img.numpy()[inside] == PALETTE[out_mask.numpy()[..., 0][inside]]).all()
