"""How fluxseg compiles for XLA's CPU backend: one switch over three choices.

- `fast_forms()`: whether the function being traced uses operations in forms
  XLA's CPU backend runs well, both exact: 1x1 convolutions as matmuls
  (`fluxseg.models.conv.conv2d`) and max pooling as a maximum over strided
  slices with a first-maximum gradient (`fluxseg.models.pool.max_pool_slices`).
- `jit`: ``jax.jit`` with `compiler_options()`: on the CPU, convolutions go to
  XLA's own (Eigen) convolution and only matmuls and reductions to YNNPACK.
- `donate_argnums`: the arguments a train step donates: none on the CPU,
  those asked for on GPU and TPU.

The process-wide part, glibc's malloc settings, is `fluxseg.runtime.cpu_process`.
GPU and TPU keep the plain ops and no options. ``FLUXSEG_FAST_FORMS=on|off|auto``
(default auto: on for the CPU backend) sets the switch, to compare both on one
machine; it is read when a function is traced or jitted, so set it before the
first call. Why each choice, measured: benchmarks/README.md, "Where the CPU
time goes" and "The training loop".
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
    memory; none under the CPU forms, where donated inputs alias the outputs
    and XLA then copies each parameter still read after the optimiser
    overwrites it. Host memory holds two states easily; accelerator memory
    may not."""
    return () if _on_cpu() else tuple(argnums)


def jit(fn: Callable, **kwargs: Any):
    """`jax.jit` with `compiler_options()`: how fluxseg compiles its train, eval,
    predict and visualisation functions. Use it for your own functions of
    fluxseg models to get the same CPU speed."""
    options = {**compiler_options(), **kwargs.pop("compiler_options", {})}
    return jax.jit(fn, compiler_options=options or None, **kwargs)
