"""The process-wide half of fluxseg's CPU fast path: glibc's malloc settings.

XLA's CPU runtime allocates large buffers on every call: the temporary
buffer of a compiled step (2.0 GB for a ResNet-50 train step at batch 16)
and the packing buffers of each Eigen convolution (up to 116 MB). They are
allocated on worker threads, whose glibc arenas cannot hold more than 64 MB,
so glibc maps them fresh and unmaps them on free, and the kernel zero-fills
every page again on the next call: 555,000 page faults and ~0.9 s of kernel
time per ResNet-50 step on a 2-core EPYC, and 15,500 faults per step of the
default experiment's small U-Net (benchmarks/README.md, "Where the CPU time
goes"). Four glibc tunables change that: keep freed memory
(``trim_threshold``, ``top_pad``), serve large blocks from the heap rather
than separate maps (``mmap_max=0``), and back what is still mapped with
transparent huge pages (``hugetlb=1``), 512 times fewer faults. A block over
64 MB asked for on a worker thread is still mapped afresh on every call
(glibc maps those whatever ``mmap_max`` says), so the kernel still zero-fills
it, in huge pages: about 4-6% of CPU time in the ResNet-50 and default U-Net
steps. The cost: a process keeps the memory of its peak until it exits, as a
caching allocator does.

glibc reads ``GLIBC_TUNABLES`` only when a process starts, so fluxseg's entry
points (``launch.py``, the ``fluxseg`` command, the benchmark scripts) call
`reexec()` before importing JAX: the process replaces itself once with the
same command and the variable set. In a notebook, start Jupyter with it:
``GLIBC_TUNABLES=$(python -m fluxseg.runtime.cpu_process) jupyter lab``.

When it applies follows ``FLUXSEG_FAST_FORMS`` (`fluxseg.runtime.backend`):
``off`` never, ``on`` always (on Linux with glibc), ``auto`` unless the host
has an accelerator (``JAX_PLATFORMS`` names one, or an NVIDIA, AMD or TPU
device node exists), since that was measured on CPU only. A
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
