"""Helpers shared by the training tests (imported as `_helpers`)."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import ml_collections

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# XLA compilation dominates these tests on CPU (a tiny U-Net's train step takes
# ~10 s to compile, and identical steps recur across tests and subprocesses),
# so the training tests share JAX's persistent compilation cache. It changes
# no numbers. FLUXSEG_TEST_JAX_CACHE=<dir> keeps it between sessions.
JAX_CACHE = os.environ.get("FLUXSEG_TEST_JAX_CACHE") or tempfile.mkdtemp(prefix="fluxseg-jax-")
CACHE_ENV = {"JAX_COMPILATION_CACHE_DIR": JAX_CACHE,
             "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
             "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1"}


def tiny_config(data_dir: str, **overrides) -> ml_collections.ConfigDict:
    """A U-Net with 4 base channels on 32x32 shapes: compiles and runs in seconds."""
    from fluxseg.train.config import base_config

    c = base_config()
    c.model = "unet"
    c.model_kwargs = ml_collections.ConfigDict({"features": 4, "padding": "same"})
    c.data.builder_config = "small"
    c.data.data_dir = data_dir
    c.data.crop_size = (32, 32)
    c.data.num_parallel_calls = 1
    c.optim.name = "adam"
    c.optim.learning_rate = 3e-3
    c.optim.schedule = "cosine"
    c.batch_size = 8
    c.num_train_steps = 6
    c.log_every_steps = 2
    c.checkpoint_every_steps = 3
    c.num_eval_images = 2
    c.progress_bar = False
    c.async_checkpoints = False
    c.init_rng_impl = "rbg"
    for key, value in overrides.items():
        node = c
        *path, last = key.split(".")
        for p in path:
            node = node[p]
        with node.ignore_type():
            node[last] = value
    return c


def run_python(args, *, devices: int = 1, timeout: int = 900, env=None, check=True):
    """Runs python with ``devices`` fake CPU devices (XLA_FLAGS set before jax loads)."""
    full_env = dict(os.environ, **CACHE_ENV, JAX_PLATFORMS="cpu",
                    XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
                    PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, *args], env=full_env, capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)
    if check:
        assert proc.returncode == 0, proc.stderr[-5000:]
    return proc
