"""Grayscale end to end: a 1-channel dataset trains, restores and predicts a 1-channel U-Net."""
from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest

from _helpers import isbi_errors_by_hand, tiny_config
from fluxseg import infer
from fluxseg.data.isbi import fixture
from fluxseg.train import checkpoint, loop


def test_one_channel_unet_trains_restores_and_predicts(tmp_path):
    import tensorflow_datasets as tfds
    tfds.disable_progress_bar()
    manual = tmp_path / "manual"
    fixture.write_isbi(manual, num_slices=12, size=(40, 40))
    c = tiny_config(str(tmp_path / "tfds"), **{
        "data.name": "fluxseg_isbi2012", "data.builder_config": "val3",
        "data.manual_dir": str(manual), "data.eval_size": (48, 48),
        "batch_size": 4, "num_train_steps": 3, "checkpoint_every_steps": 3,
        "isbi_metrics": True})
    result = loop.train_and_evaluate(c, str(tmp_path / "run"))
    assert result["step"] == 3 and np.isfinite(result["loss"])
    # Every validation slice has 40x40 scored pixels: the mean per-slice error is 1 - accuracy.
    assert result["pixel_error"] == pytest.approx(1 - result["pixel_acc"], abs=1e-9)
    # Both ISBI scores, recomputed from the saved model's predictions with scikit-image.
    pixel_error, rand_error = isbi_errors_by_hand(str(tmp_path / "run"))
    assert result["pixel_error"] == pytest.approx(pixel_error, rel=1e-9)
    assert result["rand_error"] == pytest.approx(rand_error, rel=1e-9)

    meta = json.load(open(os.path.join(tmp_path, "run", "config.json")))
    assert meta["data"]["channels"] == 1  # decided once, recorded with the checkpoint
    restored = checkpoint.restore(str(tmp_path / "run"))
    kernels = [x.shape for x in jax.tree_util.tree_leaves(restored.variables["params"])
               if x.ndim == 4]
    assert any(k[2] == 1 for k in kernels)  # the first conv sees one channel
    grey = np.random.default_rng(0).integers(0, 256, (45, 37), dtype=np.uint8)
    mask = infer.predict(restored, grey)
    assert mask.shape == (45, 37) and set(np.unique(mask)) <= {0, 1}
    # An RGB image of the same grey content gives the same prediction.
    np.testing.assert_array_equal(infer.predict(restored, np.repeat(grey[..., None], 3, -1)), mask)
