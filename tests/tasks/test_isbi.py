"""ISBI pixel error and Rand error, against scikit-image's adapted_rand_error."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import _reference
from fluxseg.tasks import isbi as isbi_metrics

metrics = _reference.need("skimage.metrics")


@pytest.mark.parametrize("seed", range(6))
def test_rand_error_equals_skimage_on_random_label_images(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(5, 40)), int(rng.integers(5, 40)))
    true = rng.integers(0, int(rng.integers(2, 9)), shape)
    pred = rng.integers(0, int(rng.integers(2, 9)), shape)
    if seed % 2:  # blocky, correlated segmentations too, not only noise
        pred = np.where(rng.random(shape) < 0.8, true, pred)
    want = metrics.adapted_rand_error(true, pred)
    np.testing.assert_allclose(isbi_metrics.adapted_rand_error(true, pred), want, rtol=1e-12)


def test_perfect_and_merged_segmentations():
    true = np.zeros((6, 9), int)
    true[:, :4], true[:, 5:] = 1, 2          # two cells, membrane column 4
    assert isbi_metrics.adapted_rand_error(true, true)[0] == 0.0
    merged = (true > 0).astype(int)          # the membrane missed: one object
    # 48 scored pixels in two cells of 24: pairs inside the cells 2*24*23, all pairs 48*47.
    err = 1 - (2 * 24 * 23) / (0.5 * 2 * 24 * 23 + 0.5 * 48 * 47)
    assert isbi_metrics.adapted_rand_error(true, merged)[0] == pytest.approx(err)


def test_slice_sums_score_connected_cells_and_skip_unlabelled_slices():
    mask = np.zeros((8, 8), int)
    mask[:, :3], mask[:, 5:] = 1, 1
    pred = mask.copy()
    pred[:, 3:5] = 1                         # the membrane predicted as cell: cells merge
    other = mask.copy()
    other[:2] = 0                            # a second slice, with fewer cell pixels predicted
    sums = isbi_metrics.sums(pred, mask, 255)
    for more in (isbi_metrics.sums(other, mask, 255), isbi_metrics.sums(pred, np.full((8, 8), 255), 255)):
        sums = {k: sums[k] + more[k] for k in sums}  # the unlabelled third slice adds nothing
    s = isbi_metrics.scores(sums)
    assert sums["pixel_error_count"] == sums["rand_error_count"] == 2
    assert s["pixel_error"] == pytest.approx((16 / 64 + 12 / 64) / 2)
    truth = ndimage.label(mask == 1)[0]      # 4-connected cells, as the challenge counts objects
    want = [metrics.adapted_rand_error(truth, ndimage.label(p == 1)[0])[0] for p in (pred, other)]
    assert s["rand_error"] == pytest.approx(np.mean(want)) and want[0] != want[1]
    empty = isbi_metrics.scores(isbi_metrics.sums(pred, np.full((8, 8), 255), 255))
    assert np.isnan(empty["pixel_error"]) and np.isnan(empty["rand_error"])
