"""The one switch for the forms fluxseg gives XLA's CPU backend.

Two things change inside compiled functions on CPU, both measured
(benchmarks/README.md, "Where the CPU time goes") and both exact:

- operations rewritten in forms XLA's CPU backend runs well: 1x1
  convolutions as matmuls (`conv.conv2d`) and max pooling as a maximum over
  strided slices with a first-maximum gradient (`pool.max_pool_slices`);
- compiler options for fluxseg's jitted functions (`jit`): convolutions go
  to XLA's own (Eigen) convolution instead of the YNNPACK library path, which
  ran the U-Net's wide 3x3 convolutions and their weight gradients 2-4x
  slower; matmuls and reductions stay on YNNPACK, where they are fast.

Train steps on CPU do not donate their state (`donate_argnums`): with a
donated state XLA copies every parameter that is read after its in-place
update, which made the default experiment's step 5-9% slower and
ResNet-50's 3.5%.

A fourth thing is set per process, not per function: glibc's malloc settings
for XLA's CPU runtime, which otherwise page-faults its large buffers back in
on every call (`fluxseg.runtime.cpu_process`; launch.py and the `fluxseg` command
re-execute themselves under them). The same switch turns it off.

GPU and TPU keep the plain ops and no options: their compilers map the plain
convolution onto cuDNN and the TPU's convolution units.

``FLUXSEG_FAST_FORMS=on|off|auto`` (default auto: on for the CPU backend)
overrides the choice, to compare both on one machine. It is read when a
function is traced or jitted, so set it before the first call.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Iterator

import jax

from fluxseg.runtime.cpu_process import FAST_FORMS_ENV, fast_mode

ENV = FAST_FORMS_ENV
# Only dots and reductions on YNNPACK (its default also takes convolutions).
CPU_COMPILER_OPTIONS = {
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE",
}


def fast_forms() -> bool:
    """Whether the CPU forms are used in the function being traced."""
    mode = fast_mode()
    return mode == "on" or (mode == "auto" and jax.default_backend() == "cpu")


@contextlib.contextmanager
def plain_forms() -> Iterator[None]:
    """Functions traced inside use the plain ops (`lax.conv_general_dilated`,
    `lax.reduce_window`) whatever the backend: what an exported model must
    hold, since its consumer may be another machine, runtime or converter."""
    old = os.environ.get(ENV)
    os.environ[ENV] = "off"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = old


def _on_cpu() -> bool:
    # FLUXSEG_FAST_FORMS=on forces the rewritten ops anywhere; the compiler
    # options and keeping the state undonated are for the CPU backend only.
    return fast_forms() and jax.default_backend() == "cpu"


def compiler_options() -> dict[str, str]:
    """XLA options for fluxseg's jitted functions on the default backend."""
    return dict(CPU_COMPILER_OPTIONS) if _on_cpu() else {}


def donate_argnums(*argnums: int) -> tuple[int, ...]:
    """The arguments a train step donates: `argnums` on GPU/TPU, where reusing
    the state's buffers in place saves a second copy of the state in device
    memory; none under the CPU forms.

    Donated inputs alias the outputs, so XLA copies each parameter that is
    still read after the optimiser overwrites it (46 more copies in the
    default experiment's step, ~2-3.5 ms of ~40; benchmarks/README.md). Host
    memory holds two states easily; accelerator memory may not."""
    return () if _on_cpu() else tuple(argnums)


def jit(fn: Callable, **kwargs: Any):
    """`jax.jit` with `compiler_options()`: how fluxseg compiles its train, eval,
    predict and visualisation functions. Use it for your own functions of
    fluxseg models to get the same CPU speed."""
    options = {**compiler_options(), **kwargs.pop("compiler_options", {})}
    return jax.jit(fn, compiler_options=options or None, **kwargs)
