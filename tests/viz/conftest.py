"""Fixtures for the fluxseg.viz tests.

Keras and torch references are computed by `make_reference.py` in one
subprocess each, shared by the xdist workers (tests/_reference.py), started
together on first use and read when a test needs them. The Keras run also
takes the filter-ascent start images from this process, so both sides step
from identical pixels.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import _reference
from _viz_helpers import FILTER_IDS, FILTER_SEED, FILTER_SIZE

MAKE_REFERENCE = Path(__file__).with_name("make_reference.py")
ROOT = "viz_reference"


@pytest.fixture(scope="session")
def viz_references(tmp_path_factory, worker_id):
    from fluxseg.viz.filters import dlwp_start

    root = _reference.shared_root(tmp_path_factory, worker_id, ROOT)
    inputs = root / "inputs.npz"
    if not inputs.exists():
        tmp = root / f"inputs.{worker_id}.npz"
        np.savez(tmp, **{"filters/x0": np.asarray(dlwp_start(FILTER_SEED, FILTER_IDS, FILTER_SIZE)), "filters/ids": FILTER_IDS})
        os.replace(tmp, inputs)
    refs = _reference.start(MAKE_REFERENCE, root, str(inputs))
    yield refs
    for ref in refs.values():
        ref.finish()


def pytest_sessionfinish(session):
    """Deletes the ~0.7 GB of reference weights once every worker is done."""
    _reference.remove(session, ROOT)


@pytest.fixture(scope="session")
def keras_viz(viz_references):
    return _reference.get(viz_references, "keras")


@pytest.fixture(scope="session")
def torch_viz(viz_references):
    return _reference.get(viz_references, "torch")


@pytest.fixture(scope="session")
def keras_vgg16(keras_viz):
    """(model, variables) of VGG16 with top, converted from the Keras reference's HDF5 file."""
    from fluxseg import models, weights

    return models.create("vgg16"), weights.convert_keras_h5(keras_viz.file("vgg16_weights_tf_dim_ordering_tf_kernels.h5"), "vgg16")


@pytest.fixture(scope="session")
def keras_vgg16_base(keras_vgg16):
    """The same weights as a convolutional base (include_top=False), which takes any input size."""
    from fluxseg import models

    _, variables = keras_vgg16
    return models.create("vgg16", include_top=False), {"params": {k: v for k, v in variables["params"].items() if k.startswith("block")}}
