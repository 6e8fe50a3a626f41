"""Bad input fails early with a message that says what to do."""
from __future__ import annotations

import pytest

import fluxseg.data as fd


def test_batch_not_divisible_by_processes(shapes_cfg):
    with pytest.raises(ValueError, match="multiple of the process count 4"):
        fd.train_iterator(shapes_cfg, global_batch_size=6, seed=0,
                          process_index=0, process_count=4)
    with pytest.raises(ValueError, match="multiple of the process count 4"):
        fd.eval_iterator(shapes_cfg, "test", global_batch_size=6,
                         process_index=0, process_count=4)


def test_crop_larger_than_images(shapes_cfg):
    shapes_cfg.crop_size = (48, 32)
    with pytest.raises(ValueError, match=r"crop_size=\(48, 32\).*32x32"):
        fd.train_iterator(shapes_cfg, global_batch_size=8, seed=0,
                          process_index=0, process_count=1)
    shapes_cfg.scale_range = (1.0, 2.0)  # allowed once images can grow enough
    fd.train_iterator(shapes_cfg, global_batch_size=8, seed=0, process_index=0, process_count=1)


def test_eval_size_smaller_than_images_in_pad_mode(shapes_cfg):
    shapes_cfg.eval_size = (16, 16)
    with pytest.raises(ValueError, match="eval_mode='resize'"):
        fd.eval_iterator(shapes_cfg, "test", global_batch_size=2, process_index=0, process_count=1)
    shapes_cfg.eval_mode = "resize"
    batch = next(fd.eval_iterator(shapes_cfg, "test", global_batch_size=2,
                                  process_index=0, process_count=1))
    assert batch["image"].shape == (2, 16, 16, 3)


def test_batch_larger_than_shard(shapes_cfg):
    with pytest.raises(ValueError, match="smaller global_batch_size"):
        fd.train_iterator(shapes_cfg, global_batch_size=64, seed=0,
                          process_index=0, process_count=2)


def test_unknown_dataset_and_config(shapes_cfg):
    shapes_cfg.name = "fluxseg_shape"
    with pytest.raises(ValueError) as err:
        fd.info(shapes_cfg)
    msg = str(err.value)
    assert "data.name='fluxseg_shape'" in msg and "did you mean ['fluxseg_shapes'," in msg
    for name in ("fluxseg_shapes", "fluxseg_voc2012", "fluxseg_isbi2012", "fluxseg_image_folder",
                 "fluxseg_segmentation_folder"):  # every dataset fluxseg builds
        assert name in msg
    shapes_cfg.name, shapes_cfg.builder_config = "fluxseg_shapes", "huge"
    with pytest.raises(ValueError, match="builder_config='huge'"):
        fd.info(shapes_cfg)


def test_bad_config_values(shapes_cfg):
    for field, value, match in [("task", "detection", "data.task"),
                                ("crop_size", (32,), "crop_size"),
                                ("scale_range", (2.0, 1.0), "scale_range"),
                                ("eval_mode", "tile", "eval_mode")]:
        cfg = shapes_cfg.copy_and_resolve_references()
        with cfg.unlocked():
            cfg[field] = value
        with pytest.raises(ValueError, match=match):
            fd.info(cfg)


def test_unknown_split(shapes_cfg):
    with pytest.raises(ValueError, match="has splits"):
        fd.eval_iterator(shapes_cfg, "val", global_batch_size=2, process_index=0, process_count=1)
