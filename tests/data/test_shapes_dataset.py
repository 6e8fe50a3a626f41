"""fluxseg_shapes: deterministic, correctly labelled, disjoint splits."""
from __future__ import annotations

import collections

import numpy as np
import pytest

from fluxseg.data.shapes import draw


def test_two_builds_write_identical_records(shapes_dir, shapes_builder, tmp_path):
    shapes_builder(tmp_path)
    first = sorted((shapes_dir / "fluxseg_shapes/small/1.0.0").glob("*.tfrecord*"))
    second = sorted((tmp_path / "fluxseg_shapes/small/1.0.0").glob("*.tfrecord*"))
    assert [p.name for p in first] == [p.name for p in second] and len(first) == 12
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_example_depends_only_on_seed_split_index():
    later = draw.draw_example(0, "train", 7, 32)
    for i in range(7):  # drawing other examples first must not matter
        draw.draw_example(0, "train", i, 32)
    again = draw.draw_example(0, "train", 7, 32)
    for key in later:
        np.testing.assert_array_equal(later[key], again[key])
    assert not np.array_equal(later["image"], draw.draw_example(0, "validation", 7, 32)["image"])
    assert not np.array_equal(later["image"], draw.draw_example(1, "train", 7, 32)["image"])


def test_splits_sized_as_configured_and_disjoint(shapes_examples, digest):
    sizes = {split: len(examples) for split, examples in shapes_examples.items()}
    assert sizes == {"train": 48, "validation": 18, "test": 10}
    seen = collections.Counter(
        digest(ex["image"]) for exs in shapes_examples.values() for ex in exs)
    assert max(seen.values()) == 1  # no image twice, within or across splits


def test_every_class_appears(shapes_examples):
    train = shapes_examples["train"]
    assert set(np.unique(np.stack([ex["segmentation_mask"] for ex in train]))) == set(range(6))
    assert {int(ex["label"]) for ex in train} == set(range(5))
    for ex in train:
        assert ex["image"].shape == (32, 32, 3) and ex["image"].dtype == np.uint8
        assert ex["segmentation_mask"].shape == (32, 32, 1)


def test_labels_and_presence_agree_with_masks(shapes_examples):
    most_pixels = 0
    for ex in shapes_examples["train"]:
        counts = np.bincount(ex["segmentation_mask"].ravel(), minlength=6)
        np.testing.assert_array_equal(ex["objects_present"], counts[1:] > 0)
        assert counts[ex["label"] + 1] > 0  # the largest object is visible
        most_pixels += int(np.argmax(counts[1:]) == ex["label"])
    # The largest single object usually also gives its class the most pixels
    # (not always: two small objects of one class can outnumber it).
    assert most_pixels >= 0.75 * len(shapes_examples["train"])


@pytest.mark.parametrize("cls, area", [
    (1, np.pi), (2, 1.6 ** 2), (3, 3 * np.sqrt(3) / 4),
    (4, np.pi * (1 - 0.55 ** 2)), (5, 2 * 2 * 0.6 - 0.6 ** 2)])
def test_shape_masks_have_their_geometric_area(cls, area):
    r, size = 50.0, 160
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    mask = draw._shape_mask(cls, xx - 80, yy - 80, r, theta=0.3)
    assert abs(mask.sum() / (area * r * r) - 1) < 0.03


def test_single_object_example_mask_label_and_colour(monkeypatch):
    monkeypatch.setattr(draw, "_MIN_OBJECTS", 1)
    monkeypatch.setattr(draw, "_MAX_OBJECTS", 1)
    for i in range(20):
        ex = draw.draw_example(3, "test", i, 64)
        mask = ex["segmentation_mask"][..., 0]
        classes = set(np.unique(mask)) - {0}
        assert classes == {ex["label"] + 1}
        assert ex["objects_present"].sum() == 1 and ex["objects_present"][ex["label"]]
        # The mask covers what was painted: object pixels are far in colour
        # from the background pixels' median, background ones are not.
        img = ex["image"].astype(np.float32)
        bg = np.median(img[mask == 0], axis=0)
        assert np.median(np.linalg.norm(img[mask > 0] - bg, axis=-1)) > 40
