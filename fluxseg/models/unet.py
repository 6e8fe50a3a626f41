"""The original U-Net (Ronneberger, Fischer & Brox 2015, Fig. 1).

Unpadded: every 3x3 conv trims 2 pixels, so the output is smaller than the
input (572 -> 388) and every pooled map must have an even size. The paper's
up-convolution (2x2, stride 2, halving the channels) has no activation; the
contracting map is centre-cropped and concatenated after it along channels
(axis -1 in NHWC; axis 1 would stack rows). With 64 base features and 2
classes: 31,030,658 parameters.

`padding='same'` gives the common padded variant (output = input size, any
size divisible by 2**depth), which is handy on small images. `norm='batch'`
puts BatchNorm between each 3x3 conv and its ReLU (Ioffe & Szegedy 2015), the
usual modern addition: the paper's net has none (and keeps none by default),
but without it a small U-Net trained with Adam sits on the all-background
plateau for a seed-dependent number of steps before it starts to separate the
classes, so when a run ends depends on the seed and the CPU.
"""
from __future__ import annotations

import functools
from typing import Any, Optional

import flax.linen as nn

from fluxseg.models import layers
from fluxseg.models.layers import DEFAULT_OPS, Ops, tap

DEPTH = 4  # number of poolings
# He initialisation, as the paper prescribes (std = sqrt(2 / fan_in)).
he_normal = nn.initializers.variance_scaling(2.0, "fan_in", "normal")


def _bottom_size(n: int, depth: int = DEPTH) -> float:
    for _ in range(depth):
        n = (n - 4) / 2
    return n - 4


def output_size(n: int, depth: int = DEPTH) -> int:
    """Output side of the unpadded U-Net for input side `n`; raises if `n` is not valid."""
    b = _bottom_size(n, depth)
    if b != int(b) or not _is_valid(n, depth):
        raise ValueError(_invalid_message(n, depth))
    b = int(b)
    for _ in range(depth):
        b = 2 * b - 4
    return b


def _is_valid(n: int, depth: int) -> bool:
    for _ in range(depth):
        n -= 4
        if n <= 0 or n % 2:
            return False
        n //= 2
    n -= 4
    # Every map of the expanding path must keep at least one pixel.
    for _ in range(depth + 1):
        if n < 1:
            return False
        n = 2 * n - 4
    return True


def valid_input_sizes(lo: int = 1, hi: int = 1024, depth: int = DEPTH) -> list[int]:
    """All valid input sides in [lo, hi] (for depth 4: 16 * b + 124, b >= 4, i.e. 188, 204, ..., 572, ...)."""
    return [n for n in range(max(lo, 1), hi + 1) if _is_valid(n, depth)]


def _invalid_message(n: int, depth: int) -> str:
    sizes = valid_input_sizes(max(1, n - 64), n + 64, depth) or valid_input_sizes(1, n + 512, depth)[:2]
    below = [s for s in sizes if s < n][-1:]
    above = [s for s in sizes if s > n][:1]
    nearest = ", ".join(str(s) for s in below + above)
    return (
        f"{n} is not a valid input size for the unpadded U-Net (depth {depth}): every map before a "
        f"2x2 pooling must be even. Nearest valid sizes: {nearest}. Pad or crop the image to one of "
        f"them, or use fluxseg.predict, which tiles images of any size (overlap-tile)."
    )


class UNet(nn.Module):
    """Input [N, H, W, C]; output [N, output_size(H), output_size(W), num_classes] logits."""

    num_classes: int = 2
    features: int = 64
    padding: str = "valid"
    # None (the paper) | 'batch'; 'none' = None, for a config key set from the command line,
    # where --config.model_kwargs.norm=None would arrive as the string 'None'.
    norm: Optional[str] = None
    bn_axis_name: Optional[str] = None
    ops: Ops = DEFAULT_OPS
    dtype: Any = None

    def output_size(self, n: int) -> int:
        return output_size(n) if self.padding == "valid" else n

    def _check(self, h: int, w: int):
        if not (isinstance(h, int) and isinstance(w, int)):
            # Symbolic sides (jax.export shape polymorphism): the caller's shape
            # specification states the valid sizes (fluxseg.infer.export).
            return
        if self.padding == "valid":
            for n in (h, w):
                output_size(n)
        elif self.padding == "same":
            if h % 2**DEPTH or w % 2**DEPTH:
                raise ValueError(
                    f"the padded U-Net needs sides divisible by {2 ** DEPTH}; got {h}x{w}. "
                    f"Pad the image to {-(-h // 16) * 16}x{-(-w // 16) * 16}."
                )
        else:
            raise ValueError(f"padding must be 'valid' (the paper) or 'same', got {self.padding!r}")
        if self.norm not in (None, "none", "batch"):
            raise ValueError(f"norm must be None or 'none' (the paper: no normalisation) or 'batch', "
                             f"got {self.norm!r}")

    @nn.compact
    def __call__(self, x, train: bool = False):
        self._check(*x.shape[1:3])
        pad = 0 if self.padding == "valid" else 1
        batch_norm = functools.partial(
            nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5,
            axis_name=self.bn_axis_name, dtype=self.dtype)

        def double_conv(x, ch, name):
            for j in (1, 2):
                # With BatchNorm after it, a conv bias would be cancelled by the mean subtraction.
                conv = layers.conv(self.ops, ch, 3, padding=pad, kernel_init=he_normal, use_bias=self.norm != "batch",
                                   dtype=self.dtype, name=f"{name}_conv{j}")
                x = conv(x)
                if self.norm == "batch":
                    x = batch_norm(name=f"{name}_bn{j}")(x)
                x = nn.relu(x)
            return tap(self, name, x)

        skips = []
        for i in range(DEPTH):
            x = double_conv(x, self.features * 2**i, f"down{i + 1}")
            skips.append(x)
            x = self.ops.max_pool(x, 2, 2)
        x = double_conv(x, self.features * 2**DEPTH, "bottom")
        for i in reversed(range(DEPTH)):
            ch = self.features * 2**i
            x = self.ops.conv_transpose(ch, 2, strides=2, kernel_init=he_normal, dtype=self.dtype, name=f"up{i + 1}_upconv")(x)
            x = layers.crop_and_concat(x, skips[i])
            x = double_conv(x, ch, f"up{i + 1}")
        x = layers.conv(self.ops, self.num_classes, 1, dtype=self.dtype, name="head")(x)
        return tap(self, "logits", x)
