"""Fully convolutional networks (Long, Shelhamer & Darrell 2015; d2l.ai §13.11).

`EncoderFCN` is d2l.ai §13.11's model on any encoder (fluxseg.models.encoders;
`fcn_resnet18` is it on torchvision's ResNet-18): the encoder without its
pooling and fc, a 1x1 conv to the classes and one ConvTranspose(k=64, s=32,
p=16) initialised with the bilinear kernel. The 16s/8s variants add Long et
al.'s skips from the encoder's stride-16 and stride-8 maps (layer3, layer2 on
a ResNet): a zero-initialised 1x1 score on the skip, a x2 bilinear
ConvTranspose(4, 2, 1) of the coarser scores, a sum, and a final
ConvTranspose(2s, s, s/2).

`FCNVGG16` is the original FCN-32s/16s/8s on VGG16: pad 100 on the first
conv, Caffe ceil-mode pools, fc6/fc7 as 7x7 and 1x1 convs, bias-free
bilinear deconvolutions and the Caffe crop offsets (19; 5, 27; 9, 31).
"""
from __future__ import annotations

from typing import Any, Optional

import flax.linen as nn

from fluxseg.models import encoders, layers
from fluxseg.models.layers import DEFAULT_OPS, Ops, tap
from fluxseg.models.parts import Part

VARIANTS = ("32s", "16s", "8s")
TRANSPOSE_INITS = {"bilinear": layers.bilinear_init, "xavier": nn.initializers.xavier_uniform()}


def _check(variant: str, transpose_init: str):
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if transpose_init not in TRANSPOSE_INITS:
        raise ValueError(f"transpose_init must be one of {tuple(TRANSPOSE_INITS)}, got {transpose_init!r}")


def _vgg16_fc_as_convs(flat):
    """VGG16 with top -> FCNVGG16: convs under vgg16/, fc1 -> fc6 (7x7 conv), fc2 -> fc7 (1x1 conv).

    Long et al. §3.1 ("convolutionalization"). fc1's rows are in H, W, C order
    (Keras' Flatten; torchvision's are permuted on conversion), so a reshape
    makes the equivalent 7x7 kernel. Returns (placed leaves, unused paths).
    """
    placed, dropped = {}, []
    for (col, path), v in flat.items():
        layer, leaf = path.split("/")
        if layer == "fc1":
            placed[(col, f"fc6/{leaf}")] = v.reshape(7, 7, -1, v.shape[-1]) if leaf == "kernel" else v
        elif layer == "fc2":
            placed[(col, f"fc7/{leaf}")] = v.reshape(1, 1, *v.shape) if leaf == "kernel" else v
        elif layer == "predictions":
            dropped.append(path)
        else:
            placed[(col, f"vgg16/{path}")] = v
    return placed, dropped


def _fuse(coarse, fine):
    """Adds two score maps after cropping both to their common top-left extent."""
    hw = (min(coarse.shape[1], fine.shape[1]), min(coarse.shape[2], fine.shape[2]))
    return layers.crop(coarse, hw) + layers.crop(fine, hw)


class EncoderFCN(nn.Module):
    """d2l's FCN on any encoder. Input [N, H, W, C] (any H, W the encoder
    takes); output logits [N, H, W, num_classes].

    The encoder's deepest map (stride 32) is scored by a 1x1 conv; 16s and 8s
    fuse the scores of its stride-16 and stride-8 maps; the last transposed
    conv gives >= H x W, cropped top-left to the input's size, so sides need
    not be multiples of 32. `width` reaches encoders that have one (ResNets).
    """

    encoder: str = "resnet18"
    num_classes: int = 21
    variant: str = "32s"
    transpose_init: str = "bilinear"
    width: Optional[int] = None
    bn_axis_name: Optional[str] = None
    ops: Ops = DEFAULT_OPS
    dtype: Any = None

    def _encoder(self, **kw):
        if self.width is not None:
            kw["width"] = self.width
        return encoders.create(self.encoder, bn_axis_name=self.bn_axis_name, ops=self.ops,
                               dtype=self.dtype, **kw)

    def pretrained_parts(self) -> tuple[Part, ...]:
        return tuple(p.under("backbone/") for p in self._encoder(parent=None).pretrained_parts())

    @nn.compact
    def __call__(self, x, train: bool = False):
        _check(self.variant, self.transpose_init)
        h, w = x.shape[1:3]
        up_init = TRANSPOSE_INITS[self.transpose_init]
        by_stride = {f.stride: f.name for f in encoders.pyramid(self._encoder(parent=None))}
        feats = self._encoder(name="backbone")(x, train, return_features=True)
        conv1x1 = lambda name, init: layers.conv(self.ops, self.num_classes, 1, kernel_init=init, dtype=self.dtype, name=name)  # noqa: E731
        up = lambda k, s, p, name: self.ops.conv_transpose(  # noqa: E731
            self.num_classes, k, strides=s, padding=p, kernel_init=up_init, dtype=self.dtype, name=name
        )
        score = tap(self, "score", conv1x1("final_conv", nn.initializers.xavier_uniform())(feats[by_stride[32]]))
        stride = 32
        for skip in {"32s": (), "16s": (16,), "8s": (16, 8)}[self.variant]:
            name = by_stride[skip]
            score = up(4, 2, 1, f"up_to_{name}")(score)
            # Zero-initialised so training starts from the coarser net's output (Long et al.).
            score = _fuse(score, conv1x1(f"score_{name}", nn.initializers.zeros)(feats[name]))
            stride //= 2
        out = up(2 * stride, stride, stride // 2, "transpose_conv")(score)
        return tap(self, "logits", layers.crop(out, (h, w)))


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

    def pretrained_parts(self) -> tuple[Part, ...]:
        return (Part("vgg16", include_top=True, covers=("vgg16/", "fc6/", "fc7/"),
                     adapt=_vgg16_fc_as_convs),)

    @nn.compact
    def __call__(self, x, train: bool = False):
        _check(self.variant, self.transpose_init)
        h, w = x.shape[1:3]
        up_init = TRANSPOSE_INITS[self.transpose_init]
        vgg = encoders.create("vgg16", first_pad=100, pool_ceil=True, ops=self.ops, dtype=self.dtype, name="vgg16")
        feats = vgg(x, train, return_features=True)  # Long et al. score pool3, pool4 and pool5
        y = feats["block5_pool"]
        for name, k in (("fc6", 7), ("fc7", 1)):
            y = nn.relu(layers.conv(self.ops, 4096, k, dtype=self.dtype, name=name)(y))
            y = nn.Dropout(self.dropout_rate, deterministic=not train)(y)
        score = tap(self, "score_fr", layers.conv(self.ops, self.num_classes, 1, kernel_init=nn.initializers.zeros, dtype=self.dtype, name="score_fr")(y))

        def up(k, s, name):
            return self.ops.conv_transpose(self.num_classes, k, strides=s, use_bias=False, kernel_init=up_init, dtype=self.dtype, name=name)

        def crop(t, offset, like):
            return layers.crop(t, like.shape[1:3], offset)

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
