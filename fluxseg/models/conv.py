"""The zoo's 2-D convolution, with forms that XLA's CPU backend runs fast.

XLA's CPU backend computes a convolution's weight gradient as another
convolution with the batch as the contracted feature, after transposing
both activations to channels-first; for 1x1 kernels that path ran at 9-17
GFLOP/s on a 2-core EPYC while the same product as a 2-D matmul ran at
100-160 (benchmarks/README.md, "Where the CPU time goes"). A 1x1
convolution *is* a matmul over pixels, so on CPU it is written as one: a
strided 1x1 (ResNet's projection shortcut) first takes every s-th pixel.
Larger kernels keep `lax.conv_general_dilated`, whose forward and input
gradient run well there.

Whether the rewritten form is used is decided in one place,
`fluxseg.runtime.backend`. The form is exact: the tests compare outputs
and gradients with the plain op.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from fluxseg.runtime.backend import fast_forms

Array = jax.Array
_NHWC = ("NHWC", "HWIO", "NHWC")


def _pairs(padding) -> tuple[tuple[int, int], tuple[int, int]]:
    if isinstance(padding, str):
        raise ValueError(f"padding must be explicit ((top, bottom), (left, right)), got {padding!r}: "
                         "'SAME' pads stride-2 layers differently from PyTorch and Keras (see layers.py)")
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    (a, b), (c, d) = padding
    return ((int(a), int(b)), (int(c), int(d)))


def conv2d(x: Array, kernel: Array, strides: tuple[int, int] = (1, 1), padding=((0, 0), (0, 0))) -> Array:
    """NHWC x HWIO cross-correlation with explicit padding, as `lax.conv_general_dilated`."""
    pads = _pairs(padding)
    if kernel.shape[:2] == (1, 1) and fast_forms():
        return _pointwise(x, kernel, strides, pads)
    return lax.conv_general_dilated(x, kernel, tuple(strides), pads, dimension_numbers=_NHWC)


def _pointwise(x: Array, kernel: Array, strides, pads) -> Array:
    # 1x1: output pixel (i, j) sees input pixel (i*s - top, j*s - left) only,
    # so pad, take every s-th pixel, and multiply by the (in, out) matrix. As a
    # 2-D product its weight gradient is x^T @ dy, a plain matmul too.
    if any(p for pair in pads for p in pair):
        x = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    sh, sw = strides
    if (sh, sw) != (1, 1):
        x = x[:, ::sh, ::sw]
    n, h, w, c = x.shape
    y = x.reshape(n * h * w, c) @ kernel.reshape(c, kernel.shape[-1])
    return y.reshape(n, h, w, kernel.shape[-1])


class Conv(nn.Module):
    """A drop-in for the `nn.Conv` calls the zoo makes: same parameters
    ('kernel' (kh, kw, in, out) and 'bias'), same initialisers and dtype
    promotion, explicit padding only, computed by `conv2d`."""

    features: int
    kernel_size: Sequence[int]
    strides: Sequence[int] = (1, 1)
    padding: Any = ((0, 0), (0, 0))
    use_bias: bool = True
    dtype: Any = None
    param_dtype: Any = jnp.float32
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: Array) -> Array:
        if x.ndim != 4:
            raise ValueError(f"Conv expects NHWC input (4 dims), got shape {x.shape}")
        kh, kw = self.kernel_size
        kernel = self.param("kernel", self.kernel_init, (kh, kw, x.shape[-1], self.features), self.param_dtype)
        bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
        x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
        strides = (self.strides,) * 2 if isinstance(self.strides, int) else tuple(self.strides)
        y = conv2d(x, kernel, strides, self.padding)
        return y if bias is None else y + bias
