"""Keras Applications HDF5 weight files -> Flax variables (vgg16, resnet50_keras).

File layout (Keras' legacy HDF5 weight format, every version): the root
(or `model_weights/` in a whole-model file) lists its layers in the
`layer_names` attribute; each layer group lists its weights, in order, in
`weight_names`; a weight name is a path to a dataset inside the layer group.
Spellings seen in the wild, all accepted:
  Keras 3     conv1_conv/kernel       (group conv1_conv/conv1_conv/kernel)
  Keras 2     conv1_conv/kernel:0
  Keras 1     block1_conv1_W_1:0      (the official VGG16 files)
Attributes too large for an HDF5 header are split as `layer_names0`,
`layer_names1`, ...; those are joined back.

Within a layer the order is Keras' legacy one, trainable then
non-trainable: [kernel, bias] for Conv2D/Dense and [gamma, beta,
moving_mean, moving_variance] for BatchNormalization. Names decide when they
are recognisable, position otherwise. Keras kernels are already HWIO (conv)
and (in, out) (dense), and Keras' Flatten on NHWC orders VGG16's fc1 rows
H, W, C, exactly as fluxseg's VGG16 flattens, so no array is transposed:
fluxseg's Keras-layout models carry the Keras layer names, and the
conversion is a renaming (gamma->scale, beta->bias, moving_mean->mean,
moving_variance->var) checked leaf by leaf against the model's shapes.
"""
from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np

from fluxseg.weights import tree

KERAS_MODELS = ("vgg16", "resnet50_keras")

_FLAX_NAME = {
    "kernel": ("params", "kernel"),
    "bias": ("params", "bias"),
    "gamma": ("params", "scale"),
    "beta": ("params", "bias"),
    "moving_mean": ("batch_stats", "mean"),
    "moving_variance": ("batch_stats", "var"),
}
# Keras' legacy order by number of weights in a layer.
_ORDER = {
    1: ("kernel",),
    2: ("kernel", "bias"),
    4: ("gamma", "beta", "moving_mean", "moving_variance"),
}
_KERAS1 = {"W": "kernel", "b": "bias"}


def _attr_list(group: h5py.Group, name: str) -> list[str]:
    """An attribute list of names, joining the chunks Keras writes when it is large."""
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, i = [], 0
        while f"{name}{i}" in group.attrs:
            values.extend(group.attrs[f"{name}{i}"])
            i += 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _split(weight_name: str, group_name: str) -> tuple[str, str]:
    """'conv1_conv/kernel:0' -> ('conv1_conv', 'kernel'); 'block1_conv1_W_1:0' -> ('block1_conv1', 'kernel')."""
    name = re.sub(r":\d+$", "", weight_name)
    *parents, leaf = name.split("/")
    layer = parents[-1] if parents else group_name
    m = re.fullmatch(re.escape(layer) + r"_(W|b)(_\d+)?", leaf)
    if m:
        leaf = _KERAS1[m.group(1)]
    return layer, leaf


def read_layers(path: str | Path) -> dict[str, list[tuple[str, np.ndarray]]]:
    """{layer name: [(weight name as written, array), ...]} in file order, weightless layers left out."""
    layers: dict[str, list[tuple[str, np.ndarray]]] = {}
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        names = _attr_list(root, "layer_names")
        if not names:
            raise ValueError(f"{path} has no 'layer_names' attribute; not a Keras HDF5 weight file")
        for group_name in names:
            group = root[group_name]
            for wname in _attr_list(group, "weight_names"):
                layer, _ = _split(wname, group_name)
                layers.setdefault(layer, []).append((wname, np.asarray(group[wname])))
    return layers


def _layer_to_flax(layer: str, weights: list[tuple[str, np.ndarray]]) -> dict:
    order = _ORDER.get(len(weights))
    leaves = [_split(w, layer)[1] for w, _ in weights]
    if all(leaf in _FLAX_NAME for leaf in leaves) and len(set(leaves)) == len(leaves):
        roles = leaves  # recognisable names decide
    elif order is not None:
        roles = list(order)  # unknown spelling: Keras' legacy order decides
    else:
        raise ValueError(f"layer {layer!r}: cannot tell the role of weights {[w for w, _ in weights]}")
    if order is not None and sorted(roles) != sorted(order):
        raise ValueError(f"layer {layer!r}: weights {[w for w, _ in weights]} are not a conv/dense or BatchNorm set")
    out = {}
    for role, (_, value) in zip(roles, weights):
        col, name = _FLAX_NAME[role]
        out[(col, f"{layer}/{name}")] = np.asarray(value, np.float32)
    return out


def convert_keras_h5(path: str | Path, model_name: str) -> dict:
    """Converts a Keras Applications HDF5 file into variables for `fluxseg.models.create(model_name, ...)`.

    model_name: 'vgg16' or 'resnet50_keras'. Whether the file has its top
    (the `predictions` layer) is read from the file; the returned variables
    fit `create(model_name, include_top=<that>, num_classes=<its width>)`.
    Returns {'params': ..., 'batch_stats': ...} of float32 numpy arrays
    (VGG16 has no 'batch_stats'). Raises ValueError naming every missing,
    unexpected or mis-shaped leaf when the file is not that model.
    """
    if model_name not in KERAS_MODELS:
        hint = " (Keras' ResNet50 is the v1 layout 'resnet50_keras')" if model_name == "resnet50" else ""
        raise ValueError(f"Keras HDF5 conversion supports {KERAS_MODELS}, not {model_name!r}{hint}")
    flat: tree.Flat = {}
    for layer, weights in read_layers(path).items():
        flat.update(_layer_to_flax(layer, weights))
    overrides = {"include_top": ("params", "predictions/kernel") in flat}
    if overrides["include_top"]:
        n = flat[("params", "predictions/kernel")].shape[-1]
        if n != 1000:
            overrides["num_classes"] = n
    tree.check_complete(flat, model_name, overrides, f"Keras file {path}")
    return tree.unflatten(flat)
