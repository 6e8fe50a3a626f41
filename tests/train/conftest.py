"""Fixtures for the training tests: a tiny offline dataset and tiny configs."""
from __future__ import annotations

import pytest

from _helpers import JAX_CACHE, build_small_shapes, tiny_config


@pytest.fixture(autouse=True, scope="module")
def _jax_compilation_cache():
    """Shares compiled steps between the tests of tests/train (see _helpers)."""
    import jax
    keys = {"jax_compilation_cache_dir": JAX_CACHE,
            "jax_persistent_cache_min_compile_time_secs": 0,
            "jax_persistent_cache_min_entry_size_bytes": -1}
    old = {k: getattr(jax.config, k) for k in keys}
    for k, v in keys.items():
        jax.config.update(k, v)
    yield
    for k, v in old.items():
        jax.config.update(k, v)


@pytest.fixture(scope="session")
def small_shapes_dir(tmp_path_factory):
    """A tfds data_dir with fluxseg_shapes/small (32x32; 48 train, 18 validation)."""
    return build_small_shapes(tmp_path_factory.mktemp("tfds"))


@pytest.fixture
def tiny(small_shapes_dir):
    return lambda **kw: tiny_config(small_shapes_dir, **kw)


@pytest.fixture(scope="session")
def tiny_run(small_shapes_dir, tmp_path_factory):
    """A workdir with a 2-step tiny U-Net run on 32x32 shapes (for eval, predict, notebooks).

    Trained once per test session: under pytest-xdist the first worker to get
    here trains while the others wait on a file lock, then all read it.
    """
    from filelock import FileLock

    from fluxseg.train import loop
    root = tmp_path_factory.getbasetemp().parent  # shared by the xdist workers
    workdir = root / "tiny_run"
    with FileLock(str(root / "tiny_run.lock")):
        if not (workdir / "DONE").exists():
            config = tiny_config(small_shapes_dir, num_train_steps=2, eval_every_steps=2,
                                 checkpoint_every_steps=2, num_eval_images=0)
            loop.train_and_evaluate(config, str(workdir))
            (workdir / "DONE").write_text("trained")
    return str(workdir)
