"""Keras and torch reference runs for the parity tests (tests/weights, tests/viz).

TensorFlow and torch crash when imported into one process, and the test
process imports neither: each framework's reference is computed by a
directory's `make_reference.py` in a subprocess of its own. The runs start
on first use, in parallel, once per test session: the first pytest-xdist
worker to create `<root>/<framework>.started` launches the run and the others
wait for its `done` file (or its `.failed` marker). The controlling process
deletes the root at the end of the session (`remove`): the runs write
gigabytes of random weights.

The reference frameworks (Keras, torch/torchvision, torchmetrics,
scikit-image) come with the `[test]` extra, which `.ci/run` installs: a test
that needs one and cannot import it FAILS, so that a broken install is never
reported as a passing suite. Only where they are left out on purpose,
FLUXSEG_NO_REFERENCE_FRAMEWORKS=1 turns those tests into skips.
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

FRAMEWORK_MODULES = {"keras": ("keras", "tensorflow"), "torch": ("torch", "torchvision")}
ABSENT_ENV = "FLUXSEG_NO_REFERENCE_FRAMEWORKS"


def missing(what: str) -> None:
    """Fails the test (the [test] extra should have installed ``what``), or skips it
    where FLUXSEG_NO_REFERENCE_FRAMEWORKS says the reference frameworks are absent."""
    if os.environ.get(ABSENT_ENV):
        pytest.skip(f"{what} not installed ({ABSENT_ENV} is set)", allow_module_level=True)
    pytest.fail(f"{what} cannot be imported, but the parity tests need it: install the test "
                f"extra (pip install -e '.[test]'), or set {ABSENT_ENV}=1 to skip these tests")


def installed(*modules: str) -> bool:
    """Whether every module can be found (without importing it: torch and TF never share a process)."""
    return all(importlib.util.find_spec(m) is not None for m in modules)


def need(module: str):
    """``module`` imported (one that may share the test process), or ``missing``."""
    if not installed(module.split(".")[0]):
        missing(module)
    return importlib.import_module(module)


class Reference:
    """One framework's reference run: files in `.dir`, arrays (reference.npz) in `.arrays`."""

    def __init__(self, script: Path, framework: str, root: Path, *args: str):
        self.framework, self.dir, self.log = framework, root / framework, root / f"{framework}.log"
        self._failed_marker = root / f"{framework}.failed"
        self._proc, self._arrays = None, None
        try:
            fd = os.open(root / f"{framework}.started", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return  # another worker runs it
        os.close(fd)
        env = dict(os.environ, KERAS_BACKEND="tensorflow", CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
        self._proc = subprocess.Popen([sys.executable, str(script), framework, str(self.dir), *args],
                                      env=env, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT)

    def wait(self, timeout: float = 900) -> "Reference":
        if self._arrays is None:
            if self._proc is not None:
                try:
                    rc = self._proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    rc = self._proc.wait()
                if rc != 0:
                    self._failed_marker.write_text(str(rc))
            deadline = time.monotonic() + timeout
            while not (self.dir / "done").exists():
                if self._failed_marker.exists() or time.monotonic() > deadline:
                    tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
                    pytest.fail(f"{self.framework} reference run failed (see {self.log}):\n{tail}")
                time.sleep(0.5)
            self._arrays = dict(np.load(self.dir / "reference.npz"))
        return self

    @property
    def arrays(self) -> dict:
        return self.wait()._arrays

    def file(self, name: str) -> Path:
        return self.wait().dir / name

    def finish(self, timeout: float = 900) -> None:
        # Wait rather than kill: another worker may still be waiting for this run.
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


def shared_root(tmp_path_factory, worker_id: str, name: str) -> Path:
    """`name` under the temporary directory that every xdist worker of this session shares."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if worker_id != "master" else base) / name
    root.mkdir(exist_ok=True)
    return root


def start(script: Path, root: Path, *args: str) -> dict[str, Reference]:
    """{framework: Reference} for the installed frameworks, their runs started."""
    return {fw: Reference(script, fw, root, *args) for fw, mods in FRAMEWORK_MODULES.items()
            if installed(*mods)}


def get(refs: dict[str, Reference], framework: str) -> Reference:
    """The finished run of `framework`; ``missing`` where it is not installed."""
    if framework not in refs:
        missing(" and ".join(FRAMEWORK_MODULES[framework]))
    return refs[framework].wait()


def remove(session, name: str) -> None:
    """At pytest_sessionfinish: on the controlling process only (after every worker
    is done), deletes the shared root `name`."""
    if hasattr(session.config, "workerinput"):
        return
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None:
        shutil.rmtree(factory.getbasetemp() / name, ignore_errors=True)
