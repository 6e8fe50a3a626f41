"""What a run ran on: the source's git commit, package versions, devices, XLA settings.

The training loop appends one ``record()`` per start of a run (a resumed run
adds one each time) to ``<workdir>/environment.jsonl``, beside config.json,
so a result can be traced to the code and machine that produced it.
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
import time
from typing import Optional

from fluxseg.runtime import compile_cache

PACKAGES = ("fluxseg", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy",
            "ml_collections", "tensorflow-cpu", "tensorflow", "tensorflow-datasets")
# Settings that change what XLA compiles or where the process runs.
ENV_VARS = ("XLA_FLAGS", "JAX_PLATFORMS", "CUDA_VISIBLE_DEVICES", "TPU_VISIBLE_CHIPS",
            "FLUXSEG_FAST_FORMS", "GLIBC_TUNABLES", "SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID",
            "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT")


def _git(source: str, *args: str) -> Optional[str]:
    try:
        out = subprocess.run(["git", "-C", source, *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state(source: Optional[str] = None) -> dict:
    """{'commit', 'dirty', 'root'} of the checkout holding ``source`` (default: fluxseg's);
    commit None when it is not a git checkout (an installed package). dirty: any
    tracked file changed or an untracked file present."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # fluxseg/
    source = source or package
    root = _git(source, "rev-parse", "--show-toplevel")
    if root is None:
        return {"commit": None, "dirty": None, "root": None}
    status = _git(root, "status", "--porcelain")
    return {"commit": _git(root, "rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None,
            "root": root}


def package_versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def devices() -> dict:
    """This process's JAX devices (initialises the backend: call after jax.distributed)."""
    import jax

    local = jax.local_devices()
    return {"backend": jax.default_backend(), "process_index": jax.process_index(),
            "process_count": jax.process_count(), "device_count": jax.device_count(),
            "local": [f"{d.platform}:{d.id} {getattr(d, 'device_kind', '')}".strip() for d in local]}


def record(step: int = 0) -> dict:
    """One start of a run: when, where, on what code, packages and devices."""
    return {"step": int(step), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host": socket.gethostname(), "argv": list(sys.argv),
            "git": git_state(), "packages": package_versions(), "devices": devices(),
            "cpu": compile_cache.cpu_identity(),  # model and instruction sets: what XLA compiled for
            "env": {k: os.environ[k] for k in ENV_VARS if k in os.environ}}
