"""A persistent compilation cache for fluxseg's commands.

Every run compiles its functions again: the default experiment spends about
10 s of its ~85 s on 2 CPU cores compiling its init, train, eval and predict
functions. JAX can keep compiled executables on disk and load them in the
next process that compiles the same function with the same options; the
second run of a config (an ablation that changes a seed, a learning rate, a
step count) then starts training at once. A loaded executable is the same
machine code, so results do not change.

`launch.py` and `fluxseg train|eval|predict|viz` call `enable()`. In a
notebook, call it before the first jitted call.

Where the cache lives:
- ``FLUXSEG_COMPILE_CACHE=DIR`` (``off`` turns it off), else
  ``$XDG_CACHE_HOME/fluxseg/xla`` (default ``~/.cache/fluxseg/xla``);
- in a subfolder per jax/jaxlib version and CPU (model name and instruction
  set flags). XLA's CPU executables are machine code for the CPU that
  compiled them, so a home directory shared by machines with different CPUs,
  or a jaxlib upgraded in place, never loads another's entries.

A cache set up for JAX itself (``JAX_COMPILATION_CACHE_DIR`` or
``jax.config.update('jax_compilation_cache_dir', ...)``) is left as it is.
The cache is not pruned: delete the folder to reclaim the space (about
0.2-1 MB per compiled function on CPU).
"""
from __future__ import annotations

import hashlib
import os
import platform
from typing import Mapping, Optional

ENV = "FLUXSEG_COMPILE_CACHE"
# Below this many seconds of compilation an entry is not worth a file; the
# default experiment's eval step compiles in about 1 s.
MIN_COMPILE_SECONDS = 0.5


def cpu_identity() -> str:
    """The CPU's model name and instruction-set flags (what XLA compiles for)."""
    try:
        with open("/proc/cpuinfo") as f:
            first = f.read().split("\n\n")[0]  # the first processor's block
    except OSError:  # not Linux
        return f"{platform.machine()} {platform.processor()}"
    fields = {k.strip(): v.strip() for k, v in
              (line.split(":", 1) for line in first.splitlines() if ":" in line)}
    return " ".join(fields.get(k, "") for k in ("model name", "flags", "Features"))


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version
    parts = []
    for name in ("jax", "jaxlib"):
        try:
            parts.append(f"{name}-{version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name}-unknown")
    return "-".join(parts)


def directory(environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The cache folder for this jax/jaxlib and CPU, or None when turned off."""
    environ = os.environ if environ is None else environ
    root = environ.get(ENV, "").strip()
    if root.lower() in ("off", "0", "false", "no"):
        return None
    if not root:
        base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "fluxseg", "xla")
    versions = _versions()
    cpu = hashlib.sha256(cpu_identity().encode()).hexdigest()[:12]
    return os.path.join(root, f"{versions}-{platform.machine()}-cpu{cpu}")


def enable() -> Optional[str]:
    """Turns the cache on for this process; returns its folder (None if off).

    Keeps a folder the user gave JAX. Call before the first compilation:
    JAX opens the cache once per process.
    """
    import jax

    chosen = jax.config.jax_compilation_cache_dir
    if chosen:
        return chosen
    path = directory()
    if path is None:
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return path
