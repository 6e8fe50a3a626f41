"""Experiment configs on their real data layouts: a few steps each on a generated fixture."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
from PIL import Image

from _helpers import REPO, isbi_errors_by_hand, top1_by_hand
from fluxseg.data.isbi import fixture
from fluxseg.train import loop


def _config(name, arg):
    spec = importlib.util.spec_from_file_location(name[:-3], os.path.join(REPO, "experiments", name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def _short(c, tmp_path, steps=2, batch=2):
    c.data.data_dir = str(tmp_path / "tfds")
    c.data.num_parallel_calls = 1
    c.num_epochs = None  # else num_epochs overrides num_train_steps
    c.num_train_steps, c.batch_size, c.eval_batch_size = steps, batch, batch
    c.progress_bar, c.async_checkpoints = False, False
    c.checkpoint_every_steps, c.eval_every_steps, c.num_eval_images = steps, 0, 0
    c.init_rng_impl = "rbg"
    return c


def test_s4_isbi_recipe_runs_on_generated_tiffs(tmp_path):
    import tensorflow_datasets as tfds
    tfds.disable_progress_bar()
    fixture.write_isbi(tmp_path / "manual", num_slices=8, size=(100, 100))
    c = _short(_config("s4_unet.py", "isbi"), tmp_path)
    c.data.manual_dir = str(tmp_path / "manual")
    c.data.builder_config = "val3"
    # CPU-sized: width 2 and the smallest valid tile (188 -> 4x4 output), same
    # recipe otherwise: 92 px mirrored context, elastic, border weights.
    c.model_kwargs.features = 2
    c.data.crop_size = c.data.eval_size = (188, 188)
    result = loop.train_and_evaluate(c, str(tmp_path / "run"))
    assert result["step"] == 2 and np.isfinite(result["loss"])
    assert "rand_error" in result
    # The ISBI scores, recomputed from the saved model's predictions with scikit-image;
    # every slice scores the same 4x4 pixels, so the pixel error is 1 - accuracy too.
    pixel_error, rand_error = isbi_errors_by_hand(str(tmp_path / "run"))
    assert result["pixel_error"] == pytest.approx(pixel_error, rel=1e-9)
    assert result["pixel_error"] == pytest.approx(1 - result["pixel_acc"], abs=1e-9)
    assert result["rand_error"] == pytest.approx(rand_error, rel=1e-9)


def test_s2_small_cnn_runs_on_a_class_folder(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "validation"):
        for c in ("cats", "dogs"):
            os.makedirs(tmp_path / "pets" / split / c)
            for i in range(4):
                size = tuple(int(v) for v in rng.integers(120, 200, 2))
                Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(
                    tmp_path / "pets" / split / c / f"{c}.{i}.jpg")
    c = _short(_config("s2_cnn_small.py", "folder"), tmp_path, batch=4)
    c.data.manual_dir = str(tmp_path / "pets")
    result = loop.train_and_evaluate(c, str(tmp_path / "run"))
    hits, total = top1_by_hand(str(tmp_path / "run"))
    assert result["step"] == 2 and total == 8 and result["top1"] == hits / total


def test_s1_car_or_truck_runs_on_its_folder_layout(tmp_path):
    rng = np.random.default_rng(1)
    for split in ("train", "valid"):            # the Kaggle course's folder names
        for c in ("Car", "Truck"):
            os.makedirs(tmp_path / "cot" / split / c)
            for i in range(2):
                Image.fromarray(rng.integers(0, 256, (128, 160, 3), dtype=np.uint8)).save(
                    tmp_path / "cot" / split / c / f"{i}.jpg")
    c = _short(_config("s1_car_or_truck.py", "folder"), tmp_path, batch=2)
    c.data.manual_dir = str(tmp_path / "cot")
    c.pretrained = None                         # no ImageNet files offline
    result = loop.train_and_evaluate(c, str(tmp_path / "run"))
    hits, total = top1_by_hand(str(tmp_path / "run"))
    assert result["step"] == 2 and total == 4 and result["top1"] == hits / total
    assert np.isfinite(result["loss"])
