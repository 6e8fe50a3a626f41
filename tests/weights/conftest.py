"""Fixtures for the weight-conversion tests.

Reference networks are built by `make_reference.py` in two subprocesses (one
with Keras/TensorFlow, one with torch; the two crash in one process and this
process imports neither). Both start once per session, in parallel, on first
use; their multi-GB output is deleted at the end of the session.

`forward` holds one jitted function per (model, options, mode), so each
network is compiled once per input shape for the whole session.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from fluxseg import models

MAKE_REFERENCE = Path(__file__).with_name("make_reference.py")
FRAMEWORK_MODULES = {"keras": ("keras", "tensorflow"), "torch": ("torch", "torchvision")}
# Parity bound: max |flax - reference| <= TOLERANCE * max |reference|, per map.
TOLERANCE = 1e-4
MEASURED: dict[str, float] = {}


class Reference:
    """One framework's reference run: weight files in `.dir`, arrays in `.arrays`."""

    def __init__(self, framework: str, root: Path):
        self.framework = framework
        self.dir = root / framework
        self.log = root / f"{framework}.log"
        env = dict(os.environ, KERAS_BACKEND="tensorflow", CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
        self._proc = subprocess.Popen(
            [sys.executable, str(MAKE_REFERENCE), framework, str(self.dir)],
            env=env, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT,
        )
        self._arrays = None

    def wait(self) -> "Reference":
        if self._arrays is None:
            rc = self._proc.wait()
            if rc != 0 or not (self.dir / "done").exists():
                tail = self.log.read_text(errors="replace")[-3000:]
                pytest.fail(f"make_reference.py {self.framework} failed (rc={rc}):\n{tail}")
            self._arrays = dict(np.load(self.dir / "reference.npz"))
        return self

    @property
    def arrays(self) -> dict:
        return self.wait()._arrays

    def file(self, name: str) -> Path:
        return self.wait().dir / name

    def kill(self):
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


@pytest.fixture(scope="session")
def references(tmp_path_factory):
    """{'keras': Reference, 'torch': Reference}; both subprocesses start at once and run in parallel."""
    root = tmp_path_factory.mktemp("weights_reference")
    refs = {}
    for fw, mods in FRAMEWORK_MODULES.items():
        if all(importlib.util.find_spec(m) is not None for m in mods):
            refs[fw] = Reference(fw, root)
    yield refs
    for ref in refs.values():
        ref.kill()
    shutil.rmtree(root, ignore_errors=True)  # ~2.5 GB of random weights


def _get(references, fw):
    if fw not in references:
        pytest.skip(f"{' and '.join(FRAMEWORK_MODULES[fw])} not installed (pip install -e '.[test]')")
    return references[fw].wait()


@pytest.fixture(scope="session")
def keras_ref(references):
    return _get(references, "keras")


@pytest.fixture(scope="session")
def torch_ref(references):
    return _get(references, "torch")


_FORWARD = {}


def forward(model_name: str, train: bool = False, **overrides):
    """Jitted (variables, x) -> (output, {tap: map}[, batch_stats]) for a fluxseg model, cached per session."""
    key = (model_name, train, tuple(sorted(overrides.items())))
    if key not in _FORWARD:
        model = models.create(model_name, **overrides)
        if train:
            def fn(v, x):
                out, state = model.apply(v, x, train=True, mutable=["batch_stats", "intermediates"])
                return out, _flat(state["intermediates"]), state["batch_stats"]
        else:
            def fn(v, x):
                return models.features(model, v, x)
        _FORWARD[key] = jax.jit(fn)
    return _FORWARD[key]


def _flat(tree):
    from flax import traverse_util

    return {"/".join(k): v for k, v in traverse_util.flatten_dict(tree).items()}


def assert_close(label: str, got, ref, tol: float = TOLERANCE):
    """max |got - ref| <= tol * max |ref|; the ratio is recorded for the session summary."""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    assert got.shape == ref.shape, f"{label}: shape {got.shape} vs reference {ref.shape}"
    scale = float(np.abs(ref).max())
    diff = float(np.abs(got - ref).max())
    MEASURED[label] = diff / scale
    assert scale > 0, f"{label}: reference is all zeros, the comparison would prove nothing"
    assert diff <= tol * scale, f"{label}: max abs diff {diff:.3g} > {tol} x scale {scale:.3g}"


@pytest.fixture(scope="session")
def flax_forward():
    """`forward(model_name, train=False, **overrides)`: the session's shared jitted forward functions."""
    return forward


@pytest.fixture(scope="session")
def close():
    """`close(label, got, ref)`: the parity assertion (see `assert_close`)."""
    return assert_close


def pytest_terminal_summary(terminalreporter):
    if not MEASURED:
        return
    cases: dict[str, dict[str, float]] = {}
    for label, rel in MEASURED.items():
        case, what = label.rsplit(" ", 1)
        cases.setdefault(case, {})[what] = rel
    terminalreporter.section("weight parity: max|diff| / max|reference| (bound 1e-04)")
    for case, values in sorted(cases.items()):
        worst = max(values, key=values.get)
        out = next((values[k] for k in ("logits", "output") if k in values), None)
        out_text = f"  output {out:8.2e}" if out is not None else ""
        terminalreporter.write_line(f"{case:45s} worst {values[worst]:8.2e} ({worst}){out_text}")
