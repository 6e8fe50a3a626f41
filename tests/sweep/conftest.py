"""Fixtures of the sweep tests: the tests' shared helpers (tests/_helpers.py),
the small shapes data, and the tiny experiment file."""
from __future__ import annotations

import os
import sys

import pytest

from _sweep_paths import HERE, REPO

sys.path.insert(0, os.path.dirname(HERE))

from _helpers import CACHE_ENV, build_small_shapes  # noqa: E402


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory):
    """fluxseg_shapes/small, built once per session (per xdist worker)."""
    return build_small_shapes(tmp_path_factory.mktemp("tfds"))


@pytest.fixture
def sweep_env(monkeypatch):
    """The environment of sweep processes: the tests' shared JAX compilation cache, CPU only."""
    for k, v in {**CACHE_ENV, "JAX_PLATFORMS": "cpu",
                 "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}.items():
        monkeypatch.setenv(k, v)
    return dict(os.environ)
