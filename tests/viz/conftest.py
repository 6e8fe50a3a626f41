"""Fixtures for the fluxseg.viz tests.

Keras and torch references are computed by `make_reference.py` in one
subprocess each (TensorFlow and torch crash in one process; this process
imports neither), started together on first use and read when a test needs
them. The Keras run also takes the filter-ascent start images from this
process, so both sides step from identical pixels.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

MAKE_REFERENCE = Path(__file__).with_name("make_reference.py")
FRAMEWORK_MODULES = {"keras": ("keras", "tensorflow"), "torch": ("torch", "torchvision")}
from _viz_helpers import FILTER_IDS, FILTER_SEED, FILTER_SIZE  # noqa: E402


class Reference:
    """One framework's reference run, shared by every pytest-xdist worker of the session.

    The first worker to create `<dir>.started` launches the subprocess; the
    others wait for its `done` file (or its failure log).
    """

    def __init__(self, framework: str, root: Path, inputs: Path):
        self.framework, self.dir, self.log = framework, root / framework, root / f"{framework}.log"
        self._proc, self._arrays = None, None
        try:
            fd = os.open(root / f"{framework}.started", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.close(fd)
        env = dict(os.environ, KERAS_BACKEND="tensorflow", CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
        self._proc = subprocess.Popen([sys.executable, str(MAKE_REFERENCE), framework, str(self.dir), str(inputs)],
                                      env=env, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT)

    def _failed(self, rc):
        tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
        pytest.fail(f"make_reference.py {self.framework} failed (rc={rc}):\n{tail}")

    def wait(self, timeout: float = 900) -> "Reference":
        if self._arrays is None:
            if self._proc is not None:
                rc = self._proc.wait()
                if rc != 0:
                    (self.dir.parent / f"{self.framework}.failed").write_text(str(rc))
            deadline = time.monotonic() + timeout
            while not (self.dir / "done").exists():
                if (self.dir.parent / f"{self.framework}.failed").exists() or time.monotonic() > deadline:
                    self._failed("see log")
                time.sleep(0.5)
            self._arrays = dict(np.load(self.dir / "reference.npz"))
        return self

    @property
    def arrays(self) -> dict:
        return self.wait()._arrays

    def file(self, name: str) -> Path:
        return self.wait().dir / name

    def finish(self, timeout: float = 900):
        # Wait rather than kill: another worker may still be waiting for this run.
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


@pytest.fixture(scope="session")
def viz_references(tmp_path_factory, worker_id):
    from fluxseg.viz.filters import dlwp_start

    # The parent of the per-worker base temp is common to all xdist workers of this run.
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if worker_id != "master" else base) / "viz_reference"
    root.mkdir(exist_ok=True)
    inputs = root / "inputs.npz"
    if not inputs.exists():
        tmp = root / f"inputs.{worker_id}.npz"
        np.savez(tmp, **{"filters/x0": np.asarray(dlwp_start(FILTER_SEED, FILTER_IDS, FILTER_SIZE)), "filters/ids": FILTER_IDS})
        os.replace(tmp, inputs)
    refs = {fw: Reference(fw, root, inputs) for fw, mods in FRAMEWORK_MODULES.items()
            if all(importlib.util.find_spec(m) is not None for m in mods)}
    yield refs
    for ref in refs.values():
        ref.finish()


def pytest_sessionfinish(session):
    """On the controlling process (after every worker is done): delete the ~0.7 GB of reference weights."""
    if hasattr(session.config, "workerinput"):
        return
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None:
        shutil.rmtree(factory.getbasetemp() / "viz_reference", ignore_errors=True)


def _get(refs, fw):
    if fw not in refs:
        pytest.skip(f"{' and '.join(FRAMEWORK_MODULES[fw])} not installed (pip install -e '.[test]')")
    return refs[fw].wait()


@pytest.fixture(scope="session")
def keras_viz(viz_references):
    return _get(viz_references, "keras")


@pytest.fixture(scope="session")
def torch_viz(viz_references):
    return _get(viz_references, "torch")


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
