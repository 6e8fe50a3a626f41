"""Fully convolutional networks (Long, Shelhamer & Darrell 2015; SPEC S3).

`FCNResNet18` is d2l.ai §13.11's model: torchvision ResNet-18 without its
pooling and fc, a 1x1 conv to the classes and one ConvTranspose(k=64, s=32,
p=16) initialised with the bilinear kernel. The 16s/8s variants add Long et
al.'s skips from layer3 (stride 16) and layer2 (stride 8): a zero-initialised
1x1 score on the skip, a x2 bilinear ConvTranspose(4, 2, 1) of the coarser
scores, a sum, and a final ConvTranspose(2s, s, s/2).

`FCNVGG16` is the original FCN-32s/16s/8s on VGG16: pad 100 on the first
conv, Caffe ceil-mode pools, fc6/fc7 as 7x7 and 1x1 convs, bias-free
bilinear deconvolutions and the Caffe crop offsets (19; 5, 27; 9, 31).
"""
from __future__ import annotations

from typing import Any, Optional

import flax.linen as nn

from fluxseg.models import layers
from fluxseg.models.layers import DEFAULT_OPS, Ops, tap
from fluxseg.models.resnet import ResNet18
from fluxseg.models.vgg import VGG16

VARIANTS = ("32s", "16s", "8s")
TRANSPOSE_INITS = {"bilinear": layers.bilinear_init, "xavier": nn.initializers.xavier_uniform()}


def _check(variant: str, transpose_init: str):
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if transpose_init not in TRANSPOSE_INITS:
        raise ValueError(f"transpose_init must be one of {tuple(TRANSPOSE_INITS)}, got {transpose_init!r}")


def _fuse(coarse, fine):
    """Adds two score maps after cropping both to their common top-left extent."""
    h, w = min(coarse.shape[1], fine.shape[1]), min(coarse.shape[2], fine.shape[2])
    return coarse[:, :h, :w] + fine[:, :h, :w]


class FCNResNet18(nn.Module):
    """Input [N, H, W, 3] (any H, W >= 32); output logits [N, H, W, num_classes].

    ResNet-18 gives ceil(H/32) x ceil(W/32) features; the transposed conv gives
    32x that, i.e. >= H x W, and the output is cropped to the input's size, so
    sides need not be multiples of 32.
    """

    num_classes: int = 21
    variant: str = "32s"
    transpose_init: str = "bilinear"
    width: int = 64
    bn_axis_name: Optional[str] = None
    ops: Ops = DEFAULT_OPS
    dtype: Any = None

    @nn.compact
    def __call__(self, x, train: bool = False):
        _check(self.variant, self.transpose_init)
        h, w = x.shape[1:3]
        up_init = TRANSPOSE_INITS[self.transpose_init]
        backbone = ResNet18(width=self.width, include_top=False, bn_axis_name=self.bn_axis_name, ops=self.ops, dtype=self.dtype, name="backbone")
        feats = backbone(x, train, return_features=True)
        conv1x1 = lambda name, init: layers.conv(self.ops, self.num_classes, 1, kernel_init=init, dtype=self.dtype, name=name)  # noqa: E731
        up = lambda k, s, p, name: self.ops.conv_transpose(  # noqa: E731
            self.num_classes, k, strides=s, padding=p, kernel_init=up_init, dtype=self.dtype, name=name
        )
        score = tap(self, "score", conv1x1("final_conv", nn.initializers.xavier_uniform())(feats["layer4"]))
        stride = 32
        for skip in {"32s": (), "16s": ("layer3",), "8s": ("layer3", "layer2")}[self.variant]:
            score = up(4, 2, 1, f"up_to_{skip}")(score)
            # Zero-initialised so training starts from the coarser net's output (Long et al.).
            score = _fuse(score, conv1x1(f"score_{skip}", nn.initializers.zeros)(feats[skip]))
            stride //= 2
        out = up(2 * stride, stride, stride // 2, "transpose_conv")(score)
        return tap(self, "logits", out[:, :h, :w])


class FCNVGG16(nn.Module):
    """The original FCN on VGG16. Input [N, H, W, 3] (any H, W); output [N, H, W, num_classes].

    The final upsampling is a fixed bilinear filter in the paper's nets; it is
    listed in `frozen_patterns()` so training keeps it fixed unless
    `learn_final_upsampling=True`.
    """

    num_classes: int = 21
    variant: str = "8s"
    transpose_init: str = "bilinear"
    dropout_rate: float = 0.5
    learn_final_upsampling: bool = False
    ops: Ops = DEFAULT_OPS
    dtype: Any = None

    def frozen_patterns(self) -> tuple[str, ...]:
        return () if self.learn_final_upsampling else (rf"^upscore{self.variant[:-1]}/",)

    @nn.compact
    def __call__(self, x, train: bool = False):
        _check(self.variant, self.transpose_init)
        h, w = x.shape[1:3]
        up_init = TRANSPOSE_INITS[self.transpose_init]
        feats = VGG16(include_top=False, first_pad=100, pool_ceil=True, ops=self.ops, dtype=self.dtype, name="vgg16")(
            x, train, return_features=True
        )
        y = feats["block5_pool"]
        for name, k in (("fc6", 7), ("fc7", 1)):
            y = nn.relu(layers.conv(self.ops, 4096, k, dtype=self.dtype, name=name)(y))
            y = nn.Dropout(self.dropout_rate, deterministic=not train)(y)
        score = tap(self, "score_fr", layers.conv(self.ops, self.num_classes, 1, kernel_init=nn.initializers.zeros, dtype=self.dtype, name="score_fr")(y))

        def up(k, s, name):
            return self.ops.conv_transpose(self.num_classes, k, strides=s, use_bias=False, kernel_init=up_init, dtype=self.dtype, name=name)

        def crop(t, offset, like):
            return t[:, offset : offset + like.shape[1], offset : offset + like.shape[2]]

        if self.variant == "32s":
            return tap(self, "logits", crop(up(64, 32, "upscore32")(score), 19, x))
        score = up(4, 2, "upscore2")(score)
        pool4 = layers.conv(self.ops, self.num_classes, 1, kernel_init=nn.initializers.zeros, dtype=self.dtype, name="score_pool4")(feats["block4_pool"])
        score = score + crop(pool4, 5, score)
        if self.variant == "16s":
            return tap(self, "logits", crop(up(32, 16, "upscore16")(score), 27, x))
        score = up(4, 2, "upscore_pool4")(score)
        pool3 = layers.conv(self.ops, self.num_classes, 1, kernel_init=nn.initializers.zeros, dtype=self.dtype, name="score_pool3")(feats["block3_pool"])
        score = score + crop(pool3, 9, score)
        return tap(self, "logits", crop(up(16, 8, "upscore8")(score), 31, x))
