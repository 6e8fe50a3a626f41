"""train_iterator / eval_iterator: exact resume, sharding, exact evaluation."""
from __future__ import annotations

import collections
from itertools import islice

import numpy as np
import pytest

import fluxseg.data as fd


def _train(cfg, steps, **kw):
    kw = {"global_batch_size": 8, "seed": 0, "process_index": 0, "process_count": 1, **kw}
    return list(islice(fd.train_iterator(cfg, **kw), steps))


def _same(a, b):
    return all(x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)
               for x, y in zip(a, b)) and len(a) == len(b)


@pytest.mark.parametrize("buffer", [5, 10_000], ids=["read_each_epoch", "kept_in_memory"])
def test_resume_is_byte_identical(shapes_cfg, buffer):
    # Augmentation on, so element-level randomness is part of what must match.
    # A buffer smaller than the split (resume must not rely on a full shuffle;
    # each epoch reads the files again), and one holding the whole split (its
    # records are kept across epochs, every epoch from one pipeline).
    shapes_cfg.update(crop_size=(24, 24), scale_range=(0.5, 2.0), hflip=True, shuffle_buffer=buffer)
    full = _train(shapes_cfg, 14)  # 6 steps an epoch: crosses two epochs
    assert full[0]["image"].shape == (8, 24, 24, 3) and full[0]["image"].dtype == np.uint8
    assert full[0]["mask"].shape == (8, 24, 24) and full[0]["mask"].dtype == np.int32
    assert _same(full[3:5], _train(shapes_cfg, 2, start_step=3))
    assert _same(full[7:14], _train(shapes_cfg, 7, start_step=7))
    assert not _same(full[:2], _train(shapes_cfg, 2, seed=1))


def test_each_epoch_is_a_new_permutation_of_the_split(shapes_cfg, shapes_examples, digest):
    train = {digest(ex["image"]): ex for ex in shapes_examples["train"]}
    batches = _train(shapes_cfg, 12)
    epochs = [[digest(im) for b in batches[e * 6:(e + 1) * 6] for im in b["image"]]
              for e in range(2)]
    for order in epochs:
        assert sorted(order) == sorted(train)  # every example once per epoch
    assert epochs[0] != epochs[1]
    for b in batches:  # masks travel with their images
        for im, mask in zip(b["image"], b["mask"]):
            np.testing.assert_array_equal(mask, train[digest(im)]["segmentation_mask"][..., 0])


def test_processes_read_disjoint_shards_covering_the_split(shapes_cfg, shapes_examples, digest):
    seen = []
    for p in range(2):
        batches = _train(shapes_cfg, 6, process_index=p, process_count=2)
        assert batches[0]["image"].shape == (4, 32, 32, 3)
        seen.append({digest(im) for b in batches for im in b["image"]})
    assert not seen[0] & seen[1]
    assert seen[0] | seen[1] == {digest(ex["image"]) for ex in shapes_examples["train"]}


@pytest.mark.parametrize("process_count, global_batch", [(2, 8), (4, 8), (1, 5)])
def test_eval_counts_every_example_once(shapes_cfg, shapes_examples, digest,
                                        process_count, global_batch):
    expected = collections.Counter(digest(ex["image"]) for ex in shapes_examples["validation"])
    seen, lengths = collections.Counter(), set()
    for p in range(process_count):
        it = fd.eval_iterator(shapes_cfg, "validation", global_batch_size=global_batch,
                              process_index=p, process_count=process_count)
        batches = list(it)
        lengths |= {len(batches), len(it)}
        for b in batches:
            assert b["valid"].shape == (global_batch // process_count,)
            for im, mask, valid in zip(b["image"], b["mask"], b["valid"]):
                if valid:
                    seen[digest(im)] += 1
                else:
                    assert (mask == 255).all() and (im == 0).all()
    assert seen == expected
    assert len(lengths) == 1  # same batch count on every process
    assert it.num_examples == 18


def test_classification_batches(shapes_cfg, shapes_examples, digest):
    shapes_cfg.task = "classification"
    labels = {digest(ex["image"]): ex["label"] for ex in shapes_examples["train"]}
    batch = _train(shapes_cfg, 1)[0]
    assert set(batch) == {"image", "label"} and batch["label"].dtype == np.int32
    assert [labels[digest(im)] for im in batch["image"]] == batch["label"].tolist()
    info = fd.info(shapes_cfg)
    assert info.num_classes == 5 and info.class_names[0] == "circle"
    last = list(fd.eval_iterator(shapes_cfg, "test", global_batch_size=4,
                                 process_index=0, process_count=1))[-1]
    assert last["valid"].tolist() == [True, True, False, False]
    assert last["label"].tolist()[2:] == [-1, -1]


def test_binary_masks(shapes_cfg):
    shapes_cfg.binary = True
    batch = _train(shapes_cfg, 1)[0]
    assert set(np.unique(batch["mask"])) == {0, 1}
    assert fd.info(shapes_cfg).num_classes == 2


def test_cache_gives_a_reproducible_stream(shapes_cfg):
    shapes_cfg.cache = True
    full = _train(shapes_cfg, 8)
    assert _same(full[6:8], _train(shapes_cfg, 2, start_step=6))


def test_info_describes_the_dataset(shapes_cfg):
    info = fd.info(shapes_cfg)
    assert info.num_classes == 6 and info.class_names[:2] == ("background", "circle")
    assert info.num_examples == {"train": 48, "validation": 18, "test": 10}
    assert info.image_shape == (32, 32, 3) and info.colormap.shape == (6, 3)


def test_tensorflow_sees_no_accelerator():
    assert fd.tf.config.get_visible_devices("GPU") == []


def test_every_pipeline_runs_without_the_autotuning_thread(shapes_cfg, monkeypatch):
    # Destroying an iterator waits for tf.data's autotuning thread, which may be
    # asleep on its timer: with it, the default run stalled 1-10 s at each new
    # epoch. Every pipeline this module starts (one per training epoch of a
    # split larger than the shuffle buffer, one for all epochs of a split the
    # buffer holds, the eval and full-size ones) must run without it, and in a
    # fixed order.
    import tensorflow as tf
    seen, real = [], tf.data.Dataset.as_numpy_iterator

    def record(ds):
        seen.append(ds.options())
        return real(ds)

    monkeypatch.setattr(tf.data.Dataset, "as_numpy_iterator", record)
    _train(shapes_cfg, 8)  # 6 steps an epoch, 48 examples kept: one pipeline for both epochs
    assert len(seen) == 1
    shapes_cfg.shuffle_buffer = 5
    _train(shapes_cfg, 8)  # read each epoch: two epochs' pipelines
    list(fd.eval_iterator(shapes_cfg, "validation", global_batch_size=4))
    list(fd.full_size_iterator(shapes_cfg, "validation"))
    assert len(seen) == 5
    assert all(o.autotune.enabled is False and o.deterministic is True for o in seen)


@pytest.mark.parametrize("channels", [None, 1], ids=["as_stored", "to_grey"])
def test_cache_holds_decoded_examples_and_changes_no_batch(shapes_cfg, monkeypatch, channels):
    # A fixed-size split that fits in memory is cached decoded (decoding every
    # epoch again was half the default run's pipeline CPU time). The stream
    # must be the batches of the encoded cache, across epochs and on resume,
    # with the channel conversion decode does kept in the cache.
    from fluxseg.data import pipeline
    shapes_cfg.update(cache=True, channels=channels, crop_size=(24, 24), scale_range=(0.5, 2.0), hflip=True)
    calls, real = [], pipeline._Reader.decoded
    monkeypatch.setattr(pipeline._Reader, "decoded", lambda self, ex: calls.append(1) or real(self, ex))
    monkeypatch.setattr(pipeline, "DECODED_CACHE_BYTES", 0)
    encoded = _train(shapes_cfg, 14)  # 6 steps an epoch: three epochs
    assert not calls
    monkeypatch.setattr(pipeline, "DECODED_CACHE_BYTES", 1 << 30)
    decoded = _train(shapes_cfg, 14)
    assert calls, "the decoded cache was not used"
    assert decoded[0]["image"].shape == (8, 24, 24, channels or 3)
    assert _same(decoded, encoded)
    assert _same(decoded[7:14], _train(shapes_cfg, 7, start_step=7))


def test_decoded_size_is_known_only_for_fixed_size_images(shapes_cfg):
    import types

    import tensorflow_datasets as tfds

    from fluxseg.data import pipeline

    def reader(image_shape, mask_shape):
        features = {shapes_cfg.image_key: tfds.features.Image(shape=image_shape),
                    shapes_cfg.mask_key: tfds.features.Image(shape=mask_shape),
                    shapes_cfg.label_key: tfds.features.ClassLabel(num_classes=5)}
        return pipeline._Reader(shapes_cfg, types.SimpleNamespace(info=types.SimpleNamespace(features=features)))

    # uint8 image (3 channels, or 1 when converted to grey) plus a uint8 mask.
    assert reader((32, 32, 3), (32, 32, 1)).decoded_bytes(48) == 48 * (32 * 32 * 3 + 32 * 32)
    shapes_cfg.channels = 1
    assert reader((32, 32, 3), (32, 32, 1)).decoded_bytes(48) == 48 * (32 * 32 + 32 * 32)
    assert reader((None, None, 3), (None, None, 1)).decoded_bytes(48) is None   # VOC-like
    assert reader((32, 32, 3), (None, None, 1)).decoded_bytes(48) is None
    shapes_cfg.task = "classification"  # uint8 grey image and an int32 label
    assert reader((32, 32, 3), (32, 32, 1)).decoded_bytes(48) == 48 * (32 * 32 + 4)
