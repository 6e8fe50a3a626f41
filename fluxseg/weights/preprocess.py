"""Input preprocessing that belongs to a set of weights.

Each function maps RGB pixel values in [0, 255] (any float or uint8 array,
NHWC or HWC) to what the network was trained on. They use only slicing and
broadcast arithmetic, so the same function works on numpy arrays, jax arrays
(inside a jitted train step, where it is cheapest) and tf tensors.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

# Keras Applications "caffe" mode: RGB -> BGR, subtract the ImageNet BGR mean,
# no scaling (VGG16 and ResNet50 weights from Keras).
CAFFE_BGR_MEAN = np.array([103.939, 116.779, 123.68], np.float32)
# torchvision: /255, then per-channel ImageNet mean/std in RGB order.
TORCH_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
TORCH_STD = np.array([0.229, 0.224, 0.225], np.float32)


def caffe(x):
    """RGB [0,255] -> BGR with the ImageNet mean removed (Keras 'caffe')."""
    return x[..., ::-1] * 1.0 - CAFFE_BGR_MEAN


def torch(x):
    """RGB [0,255] -> (x/255 - mean) / std (torchvision ImageNet weights)."""
    return (x / 255.0 - TORCH_MEAN) / TORCH_STD


def unit(x):
    """RGB [0,255] -> [0,1]; for models trained from scratch."""
    return x / 255.0


def identity(x):
    return x * 1.0


PREPROCESSORS: dict[str, Callable] = {
    "caffe": caffe,
    "torch": torch,
    "unit": unit,
    "none": identity,
}


def get(name: str) -> Callable:
    """Looks up a preprocessing function by name ('caffe', 'torch', 'unit', 'none')."""
    try:
        return PREPROCESSORS[name]
    except KeyError:
        raise ValueError(
            f"unknown preprocessing {name!r}; expected one of {sorted(PREPROCESSORS)}"
        ) from None
