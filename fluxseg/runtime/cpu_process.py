"""The process-wide part of fluxseg's CPU fast path: glibc's malloc settings for XLA.

XLA's CPU runtime allocates large buffers on worker threads on every call
(a compiled step's temporary buffer, the packing buffers of each Eigen
convolution). With glibc's defaults each is mapped afresh and unmapped on
free, so the kernel zero-fills its pages again on the next call. `TUNABLES`
keep freed memory (``trim_threshold``, ``top_pad``), serve large blocks from
the heap rather than separate maps (``mmap_max=0``) and back what is still
mapped with transparent huge pages (``hugetlb=1``). The cost: a process keeps
the memory of its peak until it exits, as a caching allocator does. The
measurements: benchmarks/README.md, "Where the CPU time goes", 4.

glibc reads ``GLIBC_TUNABLES`` only when a process starts, so fluxseg's entry
points (``launch.py``, the ``fluxseg`` command, the benchmark scripts) call
`reexec()` before importing JAX: the process replaces itself once with the
same command and the variable set. In a notebook, start Jupyter with it:
``GLIBC_TUNABLES=$(python -m fluxseg.runtime.cpu_process) jupyter lab``.

When it applies follows ``FLUXSEG_FAST_FORMS`` (`fluxseg.runtime.backend`):
``off`` never, ``on`` always (on Linux with glibc), ``auto`` unless the host
has an accelerator (``JAX_PLATFORMS`` names one, or an NVIDIA, AMD or TPU
device node exists), since the settings were measured on CPUs only. A
``GLIBC_TUNABLES`` already in the environment is left as it is.
"""
from __future__ import annotations

import glob
import os
import platform
import sys

FAST_FORMS_ENV = "FLUXSEG_FAST_FORMS"
MODES = ("auto", "on", "off")
TUNABLES_ENV = "GLIBC_TUNABLES"
TUNABLES = (
    "glibc.malloc.hugetlb=1",                  # transparent huge pages for mapped memory
    "glibc.malloc.trim_threshold=1099511627776",  # never give freed heap back (1 TiB)
    "glibc.malloc.top_pad=67108864",           # grow heaps 64 MiB at a time
    "glibc.malloc.mmap_max=0",                 # large blocks from the heap, not one map each
)
_ACCELERATOR_NODES = ("/dev/nvidia[0-9]*", "/dev/kfd", "/dev/accel[0-9]*", "/dev/vfio/[0-9]*")


def fast_mode() -> str:
    """``FLUXSEG_FAST_FORMS``: 'auto' (default), 'on' or 'off'."""
    mode = os.environ.get(FAST_FORMS_ENV, "auto").strip().lower()
    if mode not in MODES:
        raise ValueError(f"{FAST_FORMS_ENV} must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def tunables() -> str:
    """The ``GLIBC_TUNABLES`` value fluxseg runs under."""
    return ":".join(TUNABLES)


def _accelerator_host() -> bool:
    platforms = os.environ.get("JAX_PLATFORMS", "").strip().lower()
    if platforms:
        return platforms.split(",")[0].strip() != "cpu"
    return any(glob.glob(pattern) for pattern in _ACCELERATOR_NODES)


def applies() -> bool:
    """Whether this process should run under `tunables()`."""
    mode = fast_mode()
    if mode == "off" or not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    return mode == "on" or not _accelerator_host()


def environ(base: dict | None = None) -> dict:
    """`base` (default os.environ) with the tunables added where they apply."""
    env = dict(os.environ if base is None else base)
    if applies() and TUNABLES_ENV not in env:
        env[TUNABLES_ENV] = tunables()
    return env


def reexec() -> None:
    """Replaces this process with the same command under `tunables()`, once.

    Returns without doing anything when they do not apply or when
    ``GLIBC_TUNABLES`` is already set (so the second process goes on). Call
    it before anything heavy is imported: the first process's work is lost.
    """
    env = environ()
    if env.get(TUNABLES_ENV) == os.environ.get(TUNABLES_ENV):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, env)


if __name__ == "__main__":
    print(tunables())
