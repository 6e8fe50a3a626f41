"""Building blocks shared by every model.

Models never construct `nn.Conv`, pools or transposed convolutions directly:
they go through an `Ops` bundle of factories (the way the Flax ImageNet
example passes `conv`), so a faster implementation can be swapped in for the
whole zoo by passing `ops=Ops(conv=MyConv, ...)` to `fluxseg.models.create`.

Padding is always explicit. `'SAME'` on a stride-2 layer pads (0, 1) while
PyTorch pads (1, 1) and Keras ResNet50 zero-pads then uses `'valid'`: shapes
agree but values differ, which breaks converted weights.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fluxseg.models.conv import Conv
from fluxseg.runtime.backend import fast_forms
from fluxseg.models.pool import max_pool_slices

Array = jax.Array
Padding = Sequence[tuple[int, int]]
ModuleDef = Any


def sym_pad(p: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Symmetric spatial padding of `p` pixels on each side (PyTorch `padding=p`)."""
    return ((p, p), (p, p))


class ConvTranspose2D(nn.Module):
    """Transposed convolution with PyTorch `ConvTranspose2d(k, s, p, output_padding)` semantics.

    Output size per axis: (n - 1) * s - 2 * p + k + output_padding.
    Each input pixel i scatters `x[i] * kernel[t]` to output position i*s - p + t.
    The kernel is stored (k, k, in, out); a PyTorch weight (in, out, k, k) maps
    onto it with `w.transpose(2, 3, 0, 1)` and a Keras Conv2DTranspose kernel
    (k, k, out, in) with `w.transpose(0, 1, 3, 2)`; no spatial flip is needed
    in either case because the flip happens here.

    Keras `padding='valid'` equals p=0 with output_padding=max(s-k, 0).

    `method='subpixel'` (default) computes the s*s output phases as one small
    stride-1 convolution with s*s*out channels followed by a depth-to-space
    shuffle; `method='dilated'` correlates the zero-upsampled input with the
    flipped kernel. Both are exact; the sub-pixel form skips the multiplications
    by inserted zeros (for FCN-32s' k=64, s=32 that is ~1000x fewer).
    """

    features: int
    kernel_size: int
    strides: int = 1
    padding: int = 0
    output_padding: int = 0
    use_bias: bool = True
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros
    method: str = "subpixel"
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        k, s, p, op = self.kernel_size, self.strides, self.padding, self.output_padding
        if not 0 <= op < max(s, 1):
            raise ValueError(f"output_padding must be in [0, stride={s}), got {op}")
        if p < 0:
            raise ValueError(f"padding must be >= 0, got {p}")
        kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features), self.param_dtype)
        dtype = self.dtype or x.dtype
        x, kernel = x.astype(dtype), kernel.astype(dtype)
        if self.method == "subpixel":
            y = _conv_transpose_subpixel(x, kernel, s, p, op)
        elif self.method == "dilated":
            y = _conv_transpose_dilated(x, kernel, s, p, op)
        else:
            raise ValueError(f"method must be 'subpixel' or 'dilated', got {self.method!r}")
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (self.features,), self.param_dtype).astype(dtype)
        return y


_NHWC = ("NHWC", "HWIO", "NHWC")


def _conv_transpose_dilated(x, kernel, s, p, op):
    # Scatter form == a stride-1 correlation of the s-dilated input with the
    # spatially flipped kernel, padded by k-1-p (negative padding crops).
    k = kernel.shape[0]
    lo, hi = k - 1 - p, k - 1 - p + op
    return jax.lax.conv_general_dilated(
        x, jnp.flip(kernel, (0, 1)), (1, 1), [(lo, hi), (lo, hi)], lhs_dilation=(s, s), dimension_numbers=_NHWC
    )


def _conv_transpose_subpixel(x, kernel, s, p, op):
    # Output index o + p = q*s + r receives x[q - m] * kernel[m*s + r] for
    # m < M = ceil(k/s). So phase r is a plain M-tap convolution of x with
    # taps kernel[r], kernel[s + r], ...: all s*s phases form one M x M conv
    # with s*s*out channels, interleaved afterwards (depth-to-space).
    k, _, cin, cout = kernel.shape
    n, h, w, _ = x.shape
    m = -(-k // s)
    wp = jnp.pad(kernel, ((0, m * s - k), (0, m * s - k), (0, 0), (0, 0)))
    wp = wp.reshape(m, s, m, s, cin, cout)[::-1, :, ::-1]  # [tap u, r1, tap v, r2, in, out]
    wp = wp.transpose(0, 2, 4, 1, 3, 5).reshape(m, m, cin, s * s * cout)
    # M is 1 or 2 in practice, so the conv is written as M*M matmuls over
    # shifted views: their gradients are plain matmuls too, where XLA's CPU
    # convolution would take a slow path for the huge output-channel count.
    hz, wz = h + m - 1, w + m - 1
    xp = jnp.pad(x, ((0, 0), (m - 1, m - 1), (m - 1, m - 1), (0, 0)))
    z = sum(jnp.einsum("nhwc,cd->nhwd", xp[:, u : u + hz, v : v + wz], wp[u, v]) for u in range(m) for v in range(m))
    full = z.reshape(n, hz, wz, s, s, cout).transpose(0, 1, 3, 2, 4, 5).reshape(n, hz * s, wz * s, cout)
    oh, ow = (h - 1) * s - 2 * p + k + op, (w - 1) * s - 2 * p + k + op
    # Positions past the last scatter (possible with output_padding) are zeros.
    extra_h, extra_w = max(0, p + oh - hz * s), max(0, p + ow - wz * s)
    if extra_h or extra_w:
        full = jnp.pad(full, ((0, 0), (0, extra_h), (0, extra_w), (0, 0)))
    return full[:, p : p + oh, p : p + ow]


def max_pool(x: Array, window: int, stride: int | None = None, padding: int = 0, ceil_mode: bool = False) -> Array:
    """Max pooling with PyTorch semantics (`-inf` padding, optional `ceil_mode` as in Caffe)."""
    stride = stride or window
    pads = [_pool_pad(n, window, stride, padding, ceil_mode) for n in x.shape[1:3]]
    if fast_forms():
        return max_pool_slices(x, window, stride, pads)
    return nn.max_pool(x, (window, window), (stride, stride), padding=pads)


def avg_pool(x: Array, window: int, stride: int | None = None, padding: int = 0) -> Array:
    """Average pooling; padded zeros count in the mean (PyTorch `count_include_pad=True`)."""
    stride = stride or window
    return nn.avg_pool(x, (window, window), (stride, stride), padding=sym_pad(padding), count_include_pad=True)


def _pool_pad(n: int, window: int, stride: int, padding: int, ceil_mode: bool) -> tuple[int, int]:
    hi = padding
    if ceil_mode:
        out = math.ceil((n + 2 * padding - window) / stride) + 1
        # PyTorch/Caffe rule: the last window must start inside the input or left padding.
        if (out - 1) * stride >= n + padding:
            out -= 1
        hi = max((out - 1) * stride + window - n - padding, padding)
    return (padding, hi)


def upsample_nearest(x: Array, factor: int) -> Array:
    """Nearest-neighbour upsampling by an integer factor (Keras `UpSampling2D`)."""
    return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


def global_avg_pool(x: Array) -> Array:
    return jnp.mean(x, axis=(1, 2))


def adaptive_avg_pool(x: Array, out_hw: tuple[int, int]) -> Array:
    """PyTorch `AdaptiveAvgPool2d`: bin i spans [floor(i*n/o), ceil((i+1)*n/o))."""
    h, w = x.shape[1:3]
    if (h, w) == tuple(out_hw):
        return x

    def bins(n, o):
        return [(math.floor(i * n / o), math.ceil((i + 1) * n / o)) for i in range(o)]

    rows = [jnp.mean(x[:, a:b], axis=1, keepdims=True) for a, b in bins(h, out_hw[0])]
    x = jnp.concatenate(rows, axis=1)
    cols = [jnp.mean(x[:, :, a:b], axis=2, keepdims=True) for a, b in bins(w, out_hw[1])]
    return jnp.concatenate(cols, axis=2)


def crop(x: Array, hw: tuple[int, int], offset: int | tuple[int, int] = 0) -> Array:
    """The ``hw`` window of an N,H,W[,C] map starting at ``offset`` (top, left).

    Offset 0 (top-left) aligns maps that a stride-s encoder rounded up
    (ceil): pixel i of a stride-s map covers input pixels [i*s, (i+1)*s).
    Caffe's FCN crops at fixed offsets instead (Long et al.'s 19, 5, 27, ...).
    """
    h, w = x.shape[1:3]
    th, tw = hw
    top, left = (offset, offset) if isinstance(offset, int) else offset
    if top + th > h or left + tw > w or min(top, left) < 0:
        raise ValueError(f"cannot crop a {th}x{tw} window at {(top, left)} from a {h}x{w} map")
    # lax.slice, not indexing: with symbolic sides (jax.export) indexing becomes a gather.
    x = jax.lax.slice_in_dim(x, top, top + th, axis=1)
    return jax.lax.slice_in_dim(x, left, left + tw, axis=2)


def center_crop(x: Array, hw: tuple[int, int]) -> Array:
    """Crops an N,H,W[,C] map to `hw` around its centre (U-Net's copy-and-crop:
    unpadded convolutions trim the same margin on every side)."""
    h, w = x.shape[1:3]
    return crop(x, hw, ((h - hw[0]) // 2, (w - hw[1]) // 2))


def crop_and_concat(x: Array, skip: Array) -> Array:
    """Concatenates [x, skip centre-cropped to x's size] along channels (U-Net's copy-and-crop)."""
    return jnp.concatenate([x, center_crop(skip, x.shape[1:3])], axis=-1)


def bilinear_kernel(in_channels: int, out_channels: int, kernel_size: int) -> np.ndarray:
    """Bilinear upsampling kernel of d2l.ai §13.11, in PyTorch layout (in, out, k, k).

    factor = (k + 1) // 2; centre = factor - 1 for odd k, else factor - 0.5;
    filt[i, j] = (1 - |i - c| / factor) * (1 - |j - c| / factor), placed on the
    pairs (c, c) for c < min(in, out) and zero elsewhere.
    """
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = np.arange(kernel_size, dtype=np.float32)
    filt1d = 1 - np.abs(og - center) / factor
    filt = filt1d[:, None] * filt1d[None, :]
    weight = np.zeros((in_channels, out_channels, kernel_size, kernel_size), np.float32)
    n = min(in_channels, out_channels)
    weight[np.arange(n), np.arange(n)] = filt
    return weight


def bilinear_init(key, shape, dtype=jnp.float32):
    """Flax initializer for a (k, k, in, out) `ConvTranspose2D` kernel with the bilinear filter."""
    del key
    k, k2, cin, cout = shape
    if k != k2:
        raise ValueError(f"bilinear init needs a square kernel, got {shape}")
    return jnp.asarray(bilinear_kernel(cin, cout, k).transpose(2, 3, 0, 1), dtype)


@dataclasses.dataclass(frozen=True)
class Ops:
    """The factories every model builds its layers with.

    `conv` and `conv_transpose` are module classes called with flax keyword
    arguments (`features`, `kernel_size`, `strides`, `padding`, `use_bias`,
    `name`, ...); `max_pool` / `avg_pool` are functions with the signatures above.
    """

    conv: ModuleDef = Conv
    conv_transpose: ModuleDef = ConvTranspose2D
    dense: ModuleDef = nn.Dense
    max_pool: Callable = max_pool
    avg_pool: Callable = avg_pool


DEFAULT_OPS = Ops()


def conv(ops: Ops, features: int, kernel: int, stride: int = 1, padding: int | Padding = 0, **kw) -> nn.Module:
    """A 2-D convolution from `ops` with explicit padding (an int means symmetric)."""
    pad = sym_pad(padding) if isinstance(padding, int) else tuple(padding)
    return ops.conv(features, (kernel, kernel), strides=(stride, stride), padding=pad, **kw)


def batch_norm(module: nn.Module, train: bool) -> Callable[..., nn.Module]:
    """BatchNorm with ``module``'s bn_momentum / bn_epsilon / bn_axis_name / dtype.

    Batch statistics in training, running averages otherwise; with
    ``bn_axis_name`` the statistics are averaged over that device axis.
    """
    return functools.partial(nn.BatchNorm, use_running_average=not train,
                             momentum=module.bn_momentum, epsilon=module.bn_epsilon,
                             axis_name=module.bn_axis_name, dtype=module.dtype)


def tap(module: nn.Module, name: str, x: Array) -> Array:
    """Records a named feature map in the 'intermediates' collection.

    A no-op unless the caller makes 'intermediates' mutable (see
    `fluxseg.models.features`), so it costs nothing in training.
    """
    # Not `module.sow`: sow reserves `name` in the module's scope, which clashes
    # with the submodule of the same name whose output is tapped (block1_conv1, fc).
    if module.is_mutable_collection("intermediates"):
        module.scope.put_variable("intermediates", name, x)
    # An additive perturbation (zeros) passed in a 'perturbations' collection:
    # the gradient with respect to it is the gradient at this feature map,
    # which Grad-CAM needs (`fluxseg.viz.gradcam`) without splitting the model.
    if module.scope.has_variable("perturbations", name):
        x = x + module.scope.get_variable("perturbations", name)
    return x
