"""The training tests share JAX's persistent compilation cache (see tests/_helpers.py)."""
from __future__ import annotations

import pytest

from _helpers import JAX_CACHE


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
