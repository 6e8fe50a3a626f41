"""fluxseg_isbi2012 from generated multi-page TIFFs laid out like the challenge files."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow_datasets as tfds

import fluxseg.data as fd
from fluxseg.data import isbi
from fluxseg.data.isbi import fixture


@pytest.fixture(scope="module")
def isbi_env(tmp_path_factory):
    manual = tmp_path_factory.mktemp("isbi_manual")
    arrays = fixture.write_isbi(manual, size=(40, 48))
    return manual, arrays, tmp_path_factory.mktemp("tfds")


def _cfg(manual, data_dir, **kw):
    cfg = fd.default_config()
    cfg.update(name="fluxseg_isbi2012", manual_dir=str(manual), data_dir=str(data_dir),
               crop_size=(32, 32), eval_size=(40, 48), **kw)
    return cfg


def test_slices_split_and_labels_map_to_classes(isbi_env):
    manual, arrays, data_dir = isbi_env
    info = fd.info(_cfg(manual, data_dir))
    assert info.num_examples == {"train": 25, "validation": 5, "test": 30}
    assert info.class_names == ("membrane", "cell") and info.channels == 1
    builder = fd.load_builder(_cfg(manual, data_dir))
    for split, first in (("train", 0), ("validation", 25)):
        for ex in tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)):
            z = int(ex["slice"])
            assert z >= first
            np.testing.assert_array_equal(ex["image"][..., 0], arrays["volume"][z])
            np.testing.assert_array_equal(ex["segmentation_mask"][..., 0],
                                          arrays["labels"][z] // 255)
    test = list(tfds.as_numpy(builder.as_dataset(split="test")))
    assert all((ex["segmentation_mask"] == 255).all() for ex in test)  # unlabelled = ignore


def test_validation_size_is_a_config(isbi_env):
    manual, _, data_dir = isbi_env
    info = fd.info(_cfg(manual, data_dir, builder_config="val10"))
    assert info.num_examples["train"] == 20 and info.num_examples["validation"] == 10


def test_pipeline_keeps_one_channel_unless_asked(isbi_env):
    manual, arrays, data_dir = isbi_env
    cfg = _cfg(manual, data_dir)
    batch = next(fd.eval_iterator(cfg, "validation", global_batch_size=5,
                                  process_index=0, process_count=1))
    assert batch["image"].shape == (5, 40, 48, 1)
    got = sorted(im[..., 0].tobytes() for im in batch["image"])  # tfds orders by key hash
    assert got == sorted(v.tobytes() for v in arrays["volume"][25:])
    assert set(np.unique(batch["mask"])) == {0, 1}
    cfg.channels = 3
    batch = next(fd.train_iterator(cfg, global_batch_size=4, seed=0,
                                   process_index=0, process_count=1))
    assert batch["image"].shape == (4, 32, 32, 3)
    assert (batch["image"][..., 0] == batch["image"][..., 2]).all()


def test_missing_files_are_named_with_the_directory(tmp_path):
    (tmp_path / "train-volume.tif").write_bytes(b"")
    cfg = _cfg(tmp_path, tmp_path / "tfds")
    with pytest.raises(FileNotFoundError) as err:
        fd.info(cfg)
    msg = str(err.value)
    assert "train-labels.tif, test-volume.tif not found in " + str(tmp_path) in msg
    assert all(f in msg for f in isbi.FILES) and "data.manual_dir" in msg


def test_labels_other_than_0_255_are_refused(tmp_path):
    arrays = fixture.write_isbi(tmp_path, num_slices=4, size=(16, 16))
    labels = arrays["labels"].copy()
    labels[2, 3, 5] = 128  # e.g. an interpolated label stack
    fixture.save_stack(tmp_path / "train-labels.tif", labels)
    with pytest.raises(ValueError, match=r"train-labels.tif: slice 2 pixel \(3, 5\) has label 128"):
        isbi.builder.labels_to_classes(isbi.builder.read_stack(tmp_path / "train-labels.tif"),
                                       tmp_path / "train-labels.tif")


def test_rgb_tiff_is_refused(tmp_path):
    from PIL import Image
    Image.new("RGB", (8, 8)).save(tmp_path / "x.tif")
    with pytest.raises(ValueError, match=r"x.tif, page 0: expected 8-bit grey"):
        isbi.builder.read_stack(tmp_path / "x.tif")


def test_two_processes_cover_every_slice_once_per_epoch(isbi_env):
    manual, arrays, data_dir = isbi_env
    cfg = _cfg(manual, data_dir, builder_config="val10", hflip=False)
    cfg.crop_size = (40, 48)  # whole slices: each row identifies its slice
    seen = []
    for p in range(2):
        it = fd.train_iterator(cfg, global_batch_size=4, seed=3, process_index=p, process_count=2)
        for _ in range(5):  # 20 train slices / 2 processes / 2 per batch = 5 steps an epoch
            seen += [im[..., 0].tobytes() for im in next(it)["image"]]
    assert sorted(seen) == sorted(v.tobytes() for v in arrays["volume"][:20])
