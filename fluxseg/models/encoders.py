"""The encoder contract: a backbone that yields named feature maps of known stride and channels.

An encoder is a backbone module called as ``encoder(x, train,
return_features=True)``, which returns its named maps ``{name: [N, h, w,
c]}``, and whose ``pyramid()`` lists the maps a decoder reads, finest first:
one per stride, the last map at that stride (segmentation_models.pytorch
splits encoders and decoders the same way). Every model built on an encoder
reads its maps from that dict and nowhere else: decoders and heads by
``pyramid()`` (a classifier pools ``deepest``, as smp's classification head
takes the last feature), the original FCN by the VGG16 pool names of Long et
al. The encoder records the same maps under the same names as taps
(``layers.tap``); those are for inspection only (``fluxseg.models.features``,
the visualisations) and no model reads them. A decoder or head written
against ``pyramid()`` works on every encoder here; input sides that are not
multiples of the stride are rounded up by the encoder (ceil), and decoders
crop top-left.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple

from fluxseg.models import resnet, resnet_keras, vgg


class Feature(NamedTuple):
    """One map of an encoder's pyramid: its name, stride (input pixels per
    map pixel) and channel count."""

    name: str
    stride: int
    channels: int


ENCODERS: dict[str, Callable[..., Any]] = {
    "vgg16": vgg.VGG16,
    "resnet18": resnet.ResNet18,
    "resnet34": resnet.ResNet34,
    "resnet50": resnet.ResNet50,
    "resnet101": resnet.ResNet101,
    "resnet50_keras": resnet_keras.ResNet50Keras,
}


def fields(build) -> set[str]:
    """The attribute names a module class (or a functools.partial of one) takes."""
    cls = build.func if isinstance(build, functools.partial) else build
    return {f.name for f in dataclasses.fields(cls)} - {"parent", "name"}


def pyramid(encoder) -> tuple[Feature, ...]:
    """The encoder's maps for a decoder, finest first."""
    return tuple(Feature(*f) for f in encoder.pyramid())


def deepest(encoder, feats: dict):
    """The coarsest map of the pyramid (stride 32) in ``feats``, the dict
    ``encoder(x, train, return_features=True)`` returned."""
    return feats[pyramid(encoder)[-1].name]


def create(encoder: str, /, *, bn_axis_name=None, **options):
    """The encoder called ``encoder``, without its classifier.

    ``bn_axis_name`` reaches the encoders that have BatchNorm and is dropped
    for the others; any other option must be one the encoder has.
    """
    try:
        build = ENCODERS[encoder]
    except KeyError:
        raise ValueError(f"unknown encoder {encoder!r}; expected one of {tuple(ENCODERS)}") from None
    known = fields(build)
    unknown = sorted(set(options) - known - {"name", "parent"})
    if unknown:
        raise TypeError(f"encoder {encoder} has no option(s) {unknown}; its options are: "
                        f"{', '.join(sorted(known))}")
    if "bn_axis_name" in known:
        options["bn_axis_name"] = bn_axis_name
    return build(include_top=False, **options)
