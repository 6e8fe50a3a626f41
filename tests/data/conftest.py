"""Fixtures for the data tests: everything is generated under tmp dirs."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

import fluxseg.data as fd
import tensorflow_datasets as tfds

tfds.disable_progress_bar()
fd.register_builders()  # the fixtures below call tfds.builder directly


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory):
    """A data_dir holding fluxseg_shapes/small (32x32, 48/18/10 examples).

    Written as 4 files per split, like big datasets, so that the pipeline's
    seeded file shuffling is exercised too.
    """
    data_dir = tmp_path_factory.mktemp("tfds")
    build_shapes(data_dir)
    return data_dir


def build_shapes(data_dir):
    tfds.builder("fluxseg_shapes/small", data_dir=data_dir).download_and_prepare(
        download_config=tfds.download.DownloadConfig(num_shards=4))


@pytest.fixture(scope="session")
def shapes_builder():
    return build_shapes


@pytest.fixture
def shapes_cfg(shapes_dir):
    cfg = fd.default_config()
    cfg.builder_config = "small"
    cfg.data_dir = str(shapes_dir)
    cfg.crop_size = (32, 32)
    cfg.hflip = False
    cfg.num_parallel_calls = 2
    return cfg


@pytest.fixture(scope="session")
def shapes_examples(shapes_dir):
    """{split: list of numpy example dicts in file order}."""
    builder = tfds.builder("fluxseg_shapes/small", data_dir=shapes_dir)
    return {split: list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))
            for split in ("train", "validation", "test")}


@pytest.fixture(scope="session")
def digest():
    """array -> hashable identity (tests match pipeline rows to examples)."""
    return lambda array: hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()
