"""ISBI pixel error and Rand error, against scikit-image's adapted_rand_error."""
from __future__ import annotations

import numpy as np
import pytest

from fluxseg.tasks import isbi as isbi_metrics

metrics = pytest.importorskip("skimage.metrics")


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


def test_accumulator_scores_connected_cells_and_skips_unlabelled():
    mask = np.zeros((1, 8, 8), int)
    mask[0, :, :3], mask[0, :, 5:] = 1, 1
    pred = mask.copy()
    pred[0, :, 3:5] = 1                      # the membrane predicted as cell: cells merge
    acc = isbi_metrics.Accumulator()
    acc.add(pred, mask)
    acc.add(pred, np.full((1, 8, 8), 255))   # unlabelled slice: not scored
    s = acc.scores()
    assert s["pixel_error"] == pytest.approx(16 / 64)
    truth = isbi_metrics.objects(mask[0])
    assert s["rand_error"] == pytest.approx(metrics.adapted_rand_error(truth, (pred[0] == 1) * 1)[0])
    assert len(acc.pixel_errors) == 1
