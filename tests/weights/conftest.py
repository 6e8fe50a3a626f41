"""Fixtures for the weight-conversion tests.

Reference networks are built by `make_reference.py` in two subprocesses (one
with Keras/TensorFlow, one with torch; tests/_reference.py). Both start once
per session, in parallel, on first use, shared by the xdist workers; their
multi-GB output is deleted at the end of the session.

`forward` holds one jitted function per (model, options, mode), so each
network is compiled once per input shape for the whole session.
"""
from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest

import _reference
from fluxseg import models

MAKE_REFERENCE = Path(__file__).with_name("make_reference.py")
ROOT = "weights_reference"
# Parity bound: max |flax - reference| <= TOLERANCE * max |reference|, per map.
TOLERANCE = 1e-4
MEASURED: dict[str, float] = {}


@pytest.fixture(scope="session")
def references(tmp_path_factory, worker_id):
    """{'keras': Reference, 'torch': Reference}; both subprocesses start at once and run in parallel."""
    refs = _reference.start(MAKE_REFERENCE, _reference.shared_root(tmp_path_factory, worker_id, ROOT))
    yield refs
    for ref in refs.values():
        ref.finish()


def pytest_sessionfinish(session):
    """Deletes the ~2.5 GB of random reference weights once every worker is done."""
    _reference.remove(session, ROOT)


@pytest.fixture(scope="session")
def keras_ref(references):
    return _reference.get(references, "keras")


@pytest.fixture(scope="session")
def torch_ref(references):
    return _reference.get(references, "torch")


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
