"""Evaluation transforms keep image and mask aligned (training crops: test_train_crop.py)."""
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
