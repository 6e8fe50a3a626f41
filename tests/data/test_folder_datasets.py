"""fluxseg_image_folder and fluxseg_segmentation_folder on generated folders."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest
from PIL import Image

import fluxseg.data as fd

RNG = np.random.default_rng(0)


def _jpeg(path, size=(40, 48), mode="RGB"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    arr = RNG.integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(arr).convert(mode).save(path, format="JPEG" if mode != "L" else "PNG")


def _cls_cfg(root, tmp_path, **kw):
    cfg = fd.default_config()
    cfg.update(name="fluxseg_image_folder", task="classification", manual_dir=str(root),
               data_dir=str(tmp_path / "tfds"), crop_size=(32, 32), **kw)
    return cfg


def test_train_and_valid_subfolders_car_or_truck_layout(tmp_path):
    root = tmp_path / "car_or_truck"
    for split, n in (("train", 3), ("valid", 2)):
        for c in ("Car", "Truck"):
            for i in range(n):
                _jpeg(str(root / split / c / f"{c}{i}.jpg"))
    _jpeg(str(root / "train" / "Truck" / "cmyk.jpg"), mode="CMYK")  # converted, not refused
    info = fd.info(_cls_cfg(root, tmp_path))
    assert info.class_names == ("Car", "Truck") and info.num_classes == 2
    assert info.num_examples == {"train": 7, "validation": 4}
    batch = next(fd.eval_iterator(_cls_cfg(root, tmp_path, eval_mode="resize"), "validation",
                                  global_batch_size=4, process_index=0, process_count=1))
    assert sorted(batch["label"].tolist()) == [0, 0, 1, 1]


def test_class_folders_split_by_fraction_and_cache_follows_content(tmp_path):
    root = tmp_path / "PetImages"
    for c in ("Cat", "Dog"):
        for i in range(20):
            _jpeg(str(root / c / f"{i}.jpg"))
    cfg = _cls_cfg(root, tmp_path, validation_fraction=0.25)
    first = fd.info(cfg)
    assert first.num_examples["train"] + first.num_examples["validation"] == 40
    assert 4 <= first.num_examples["validation"] <= 18
    time.sleep(0.01)
    _jpeg(str(root / "Dog" / "new.jpg"))  # a new file: a new config, not the stale cache
    second = fd.info(cfg)
    assert sum(second.num_examples.values()) == 41


def test_undecodable_and_16bit_images_are_named(tmp_path):
    root = tmp_path / "bad"
    for c in ("a", "b"):
        for i in range(2):
            _jpeg(str(root / c / f"{i}.jpg"))
    (root / "a" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ValueError, match=r"broken.jpg: not a readable image"):
        fd.info(_cls_cfg(root, tmp_path))
    os.remove(root / "a" / "broken.jpg")
    Image.fromarray(np.full((40, 48), 4000, np.uint16)).save(root / "b" / "deep.png")
    with pytest.raises(ValueError, match=r"deep.png: I;16 image \(16-bit or float\)"):
        fd.info(_cls_cfg(root, tmp_path))


def test_images_smaller_than_the_crop_are_named(tmp_path):
    root = tmp_path / "small"
    for c in ("a", "b"):
        for i in range(2):
            _jpeg(str(root / "train" / c / f"{i}.jpg"))
            _jpeg(str(root / "validation" / c / f"{i}.jpg"))
    _jpeg(str(root / "train" / "b" / "tiny.jpg"), size=(20, 60))
    with pytest.raises(ValueError, match=r"tiny.jpg is 20x60"):
        fd.info(_cls_cfg(root, tmp_path))
    fd.info(_cls_cfg(root, tmp_path, random_resized_crop=True))  # resized crops: any size works


def _seg_folder(root, n=6, palette=True, values=(0, 1, 2), size=(36, 40), start=0):
    os.makedirs(root / "images", exist_ok=True), os.makedirs(root / "masks", exist_ok=True)
    masks = {}
    for i in range(start, start + n):
        stem = f"img_{i:03d}"
        Image.fromarray(RNG.integers(0, 256, (*size, 3), dtype=np.uint8)).save(
            root / "images" / f"{stem}.jpg")
        m = RNG.choice(np.array(values, np.uint8), size)
        im = Image.fromarray(m, mode="P" if palette else "L")
        if palette:  # colours unrelated to the ids: the ids are the palette indices
            im.putpalette([v for i in range(256) for v in (i, 255 - i, 0)])
        im.save(root / "masks" / f"{stem}.png")
        masks[f"images/{stem}.jpg"] = m
    return masks


def _seg_cfg(root, tmp_path, **kw):
    cfg = fd.default_config()
    cfg.update(name="fluxseg_segmentation_folder", manual_dir=str(root),
               data_dir=str(tmp_path / "tfds"), crop_size=(32, 32), eval_size=(36, 40),
               validation_fraction=0.5, **kw)
    return cfg


def test_palette_masks_are_indices_matched_by_stem(tmp_path):
    import tensorflow_datasets as tfds
    root = tmp_path / "seg"
    masks = _seg_folder(root)
    (root / "classes.txt").write_text("background\nroad\ncar\n")
    cfg = _seg_cfg(root, tmp_path)
    info = fd.info(cfg)
    assert info.class_names == ("background", "road", "car")
    assert sum(info.num_examples.values()) == 6
    builder = fd.load_builder(cfg)
    for ex in tfds.as_numpy(builder.as_dataset(split="train+validation")):
        np.testing.assert_array_equal(ex["segmentation_mask"][..., 0],
                                      masks[ex["file_name"].decode()])


def test_grey_0_255_masks_map_through_the_classes_file(tmp_path):
    import tensorflow_datasets as tfds
    root = tmp_path / "seg"
    masks = _seg_folder(root, palette=False, values=(0, 255))
    (root / "classes.txt").write_text("0 background\n255 cell\n")
    builder = fd.load_builder(_seg_cfg(root, tmp_path))
    for ex in tfds.as_numpy(builder.as_dataset(split="train+validation")):
        np.testing.assert_array_equal(ex["segmentation_mask"][..., 0],
                                      masks[ex["file_name"].decode()] // 255)


def test_mask_values_outside_the_classes_are_named(tmp_path):
    root = tmp_path / "seg"
    _seg_folder(root, values=(0, 1, 5))
    (root / "classes.txt").write_text("background\nroad\n")
    with pytest.raises(ValueError, match=r"masks/img_\d+\.png: mask values \[5\] are not classes"):
        fd.info(_seg_cfg(root, tmp_path))


def test_unmatched_and_rgb_masks_are_refused(tmp_path):
    root = tmp_path / "seg"
    _seg_folder(root, n=3)
    os.remove(root / "masks" / "img_001.png")
    with pytest.raises(ValueError, match=r"img_001.jpg has no mask"):
        fd.info(_seg_cfg(root, tmp_path))
    Image.new("RGB", (40, 36)).save(root / "masks" / "img_001.png")
    with pytest.raises(ValueError, match=r"img_001.png: mask mode 'RGB'"):
        fd.info(_seg_cfg(root, tmp_path))


def test_mixed_size_folder_evaluates_with_the_defaults(tmp_path):
    # No data.eval_size: eval batches take the split's largest height and width, read
    # from the prepared files, and every image keeps all its pixels.
    root = tmp_path / "mixed"
    masks = _seg_folder(root, n=4, size=(36, 40))
    masks.update(_seg_folder(root, n=3, size=(50, 32), start=4))
    cfg = _seg_cfg(root, tmp_path)
    cfg.update(eval_size=None, validation_fraction=0.0)
    seen = 0
    for batch in fd.eval_iterator(cfg, "train", global_batch_size=4, process_index=0,
                                  process_count=1):
        assert batch["image"].shape == (4, 50, 40, 3)
        for mask, valid in zip(batch["mask"], batch["valid"]):
            if valid:
                h, w = (36, 40) if (mask[36:] == 255).all() else (50, 32)
                assert (mask[h:] == 255).all() and (mask[:, w:] == 255).all()
                seen += 1
    assert seen == 7


def test_truncated_and_damaged_jpegs_are_named_never_skipped(tmp_path, monkeypatch):
    root = tmp_path / "seg"
    _seg_folder(root, n=4)
    good = (root / "images" / "img_001.jpg").read_bytes()
    (root / "images" / "img_001.jpg").write_bytes(good[:len(good) // 2])
    with pytest.raises(ValueError, match=r"img_001.jpg: cannot decode the image"):
        fd.info(_seg_cfg(root, tmp_path))
    (root / "images" / "img_001.jpg").write_bytes(good)
    # A record damaged after preparation: the window decode fails and the stream stops,
    # naming the dataset to prepare again (the folder check above names the file).
    from fluxseg.data import decode, train_crop
    real = decode.window
    monkeypatch.setattr(train_crop.decode, "window", lambda encoded, feature, draw: real(
        fd.tf.strings.substr(encoded, 0, fd.tf.strings.length(encoded) // 2), feature, draw))
    cfg = _seg_cfg(root, tmp_path, scale_range=(0.5, 1.5))
    cfg.validation_fraction = 0.0
    with pytest.raises(ValueError, match=r"fluxseg_segmentation_folder .* could not be decoded.*"
                                         r"delete .* and prepare the dataset again"):
        next(fd.train_iterator(cfg, global_batch_size=2, seed=0, process_index=0,
                               process_count=1))
