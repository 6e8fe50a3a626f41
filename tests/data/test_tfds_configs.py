"""The experiment configs' tfds datasets (oxford_iiit_pet, cifar10) through the pipeline.

tfds's mock_data stands in for the real files: the builders' own feature
specs are used, and the examples (encoded like the real ones: trimap PNGs
with values 1 pet / 2 background / 3 border, 32x32 CIFAR images) come from
`as_dataset_fn`. mock_data knows no split sizes, so the pipeline is told
the number of examples.
"""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

import fluxseg.data as fd
from fluxseg.data import pipeline
from fluxseg.data._tf import tf

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
N = 8


def _data_config(name, arg):
    spec = importlib.util.spec_from_file_location(name[:-3], os.path.join(REPO, "experiments", name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg).data


def _pets(self, split, decoders=None, **kwargs):
    rng = np.random.default_rng(0)
    examples = {"image": [], "segmentation_mask": [], "label": []}
    for i in range(N):
        h, w = 300 + 10 * i, 280
        trimap = rng.integers(1, 4, (h, w, 1)).astype(np.uint8)
        examples["image"].append(tf.io.encode_jpeg(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)))
        examples["segmentation_mask"].append(tf.io.encode_png(trimap))
        examples["label"].append(i % 37)
    return tf.data.Dataset.from_tensor_slices({k: tf.stack(v) for k, v in examples.items()})


def _cifar(self, split, decoders=None, **kwargs):
    rng = np.random.default_rng(1)
    images = [tf.io.encode_png(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(N)]
    return tf.data.Dataset.from_tensor_slices({"image": tf.stack(images),
                                               "label": tf.constant(np.arange(N) % 10)})


@pytest.fixture
def known_sizes(monkeypatch):
    monkeypatch.setattr(pipeline, "_num_examples", lambda builder, split, name: N)


def test_pets_trimaps_become_pet_vs_background(known_sizes, tmp_path):
    cfg = _data_config("s0b_unet_resnet50.py", "pets")
    cfg.update(data_dir=str(tmp_path), download=True, num_parallel_calls=1, color_jitter=(0, 0, 0),
               scale_range=(1.0, 1.0))
    with tfds.testing.mock_data(as_dataset_fn=_pets):
        batch = next(fd.train_iterator(cfg, global_batch_size=4, seed=0,
                                       process_index=0, process_count=1))
        evals = next(fd.eval_iterator(cfg, "test", global_batch_size=4,
                                      process_index=0, process_count=1))
    assert batch["image"].shape == (4, 256, 256, 3)
    assert set(np.unique(batch["mask"])) == {0, 1, 255}   # pet 1, background 0, border unscored
    assert set(np.unique(evals["mask"])) <= {0, 1, 255} and evals["valid"].all()


def test_cifar10_is_upsampled_for_the_hybrid(known_sizes, tmp_path):
    cfg = _data_config("s0a_hybrid.py", "cifar10")
    cfg.update(data_dir=str(tmp_path), download=True, num_parallel_calls=1)
    with tfds.testing.mock_data(as_dataset_fn=_cifar):
        info = fd.info(cfg)
        batch = next(fd.train_iterator(cfg, global_batch_size=4, seed=0,
                                       process_index=0, process_count=1))
    assert info.num_classes == 10  # (mock_data has no label-name files: names are "0".."9")
    assert batch["image"].shape == (4, 224, 224, 3) and batch["label"].max() < 10
    # x7 bilinear: neighbouring pixels of one source pixel's block are close.
    assert np.abs(np.diff(batch["image"].astype(int), axis=1)).mean() < 20


@pytest.mark.parametrize("name,arg", [("s0a_hybrid.py", "cifar10"), ("s0b_unet_resnet50.py", "pets")])
def test_offline_error_says_where_tfds_wants_the_files(name, arg, tmp_path):
    cfg = _data_config(name, arg)
    cfg.data_dir = str(tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        fd.info(cfg)
    msg = str(err.value)
    assert f"tfds build {cfg.name} --data_dir={tmp_path}" in msg
    assert str(tmp_path / "downloads" / "manual") in msg and cfg.name in msg
