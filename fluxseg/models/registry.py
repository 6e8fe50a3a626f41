"""The model zoo by name: `names()`, `create(name, **overrides)`, `spec(name)`."""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

from fluxseg.models import encoder_unet, encoders, fcn, gap_classifier, hybrid, resnet, resnet_keras, small_cnn, unet, vgg


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """How to build a model and what it expects by default."""

    build: Callable[..., Any]
    input_shape: tuple[int, int, int]  # (H, W, C) used by `fluxseg summary` and the tests
    task: str  # 'classification' | 'segmentation'
    description: str


_REGISTRY: dict[str, ModelSpec] = {
    "vgg16": ModelSpec(vgg.VGG16, (224, 224, 3), "classification", "VGG16, Keras layer names"),
    "resnet18": ModelSpec(resnet.ResNet18, (224, 224, 3), "classification", "ResNet-18, torchvision layout"),
    "resnet34": ModelSpec(resnet.ResNet34, (224, 224, 3), "classification", "ResNet-34, torchvision layout"),
    "resnet50": ModelSpec(resnet.ResNet50, (224, 224, 3), "classification", "ResNet-50 v1.5, torchvision layout"),
    "resnet101": ModelSpec(resnet.ResNet101, (224, 224, 3), "classification", "ResNet-101 v1.5, torchvision layout"),
    "resnet50_keras": ModelSpec(resnet_keras.ResNet50Keras, (224, 224, 3), "classification", "ResNet50 v1, Keras Applications layout"),
    "hybrid_vgg16_resnet50": ModelSpec(hybrid.HybridVGG16ResNet50, (224, 224, 3), "classification", "frozen VGG16 -> x32 upsample -> ResNet50 classifier"),
    "unet": ModelSpec(unet.UNet, (572, 572, 1), "segmentation", "the original unpadded U-Net (Ronneberger et al. 2015)"),
    "unet_resnet50": ModelSpec(
        functools.partial(encoder_unet.EncoderUNet, encoder="resnet50_keras", decoder_channels=(512, 256, 128, 64)),
        (256, 256, 3), "segmentation", "U-Net decoder on a Keras ResNet50 encoder"),
    "encoder_unet": ModelSpec(encoder_unet.EncoderUNet, (256, 256, 3), "segmentation", "U-Net decoder on any encoder (encoder=...)"),
    "fcn_resnet18": ModelSpec(functools.partial(fcn.EncoderFCN, encoder="resnet18"), (320, 480, 3), "segmentation", "d2l FCN on ResNet-18 (32s/16s/8s)"),
    "encoder_fcn": ModelSpec(fcn.EncoderFCN, (320, 480, 3), "segmentation", "d2l FCN head on any encoder (encoder=...)"),
    "fcn_vgg16": ModelSpec(fcn.FCNVGG16, (320, 480, 3), "segmentation", "Long et al. FCN-32s/16s/8s on VGG16"),
    "cnn_small": ModelSpec(small_cnn.SmallCNN, (150, 150, 3), "classification", "Chollet's cats-vs-dogs CNN (DLwP 5.2)"),
    "gap_classifier": ModelSpec(gap_classifier.GAPClassifier, (224, 224, 3), "classification", "backbone + global average pooling + Dense"),
}


def names() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_REGISTRY)


def spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; registered models: {', '.join(names())}") from None


def create(name: str, /, **overrides):
    """Builds the flax module registered as `name`, with attribute overrides.

    Unknown override names raise an error listing the model's attributes.
    """
    build = spec(name).build
    allowed = encoders.fields(build)
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise TypeError(f"{name} has no option(s) {unknown}; its options are: {', '.join(sorted(allowed))}")
    return build(**overrides)
