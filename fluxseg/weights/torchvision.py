"""torchvision state dicts -> Flax variables (resnet18/34/50/101, vgg16).

Layout changes:
- Conv2d weight (out, in, kh, kw) -> Flax kernel (kh, kw, in, out).
- Linear weight (out, in) -> Dense kernel (in, out).
- VGG16 classifier.0 (fc1) reads the 512x7x7 map flattened C, H, W (NCHW);
  fluxseg flattens NHWC as H, W, C, so its rows are permuted:
  (4096, 512, 7, 7) -> (7, 7, 512, 4096) -> (25088, 4096).
- BatchNorm weight/bias -> params scale/bias; running_mean/var ->
  batch_stats mean/var; num_batches_tracked is dropped (only used when
  PyTorch's momentum is None). PyTorch's momentum 0.1 is the weight of the
  *new* batch statistic; Flax's `momentum` is the weight of the *old* running
  value, so torchvision's BN is Flax momentum 0.9 (the fluxseg ResNet default).
  PyTorch updates running_var with the unbiased batch variance, Flax with the
  biased one; inference is unaffected.

Files are read with `fluxseg.weights.torch_pickle` (no torch import; torch
next to TensorFlow crashes here, and JAX users need not install torch).
A dict of arrays or of torch tensors is accepted too.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from fluxseg.weights import tree
from fluxseg.weights.torch_pickle import load_pth

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101")
TORCHVISION_MODELS = RESNETS + ("vgg16",)

# torchvision vgg16 `features` indices of the 13 convolutions, in order.
_VGG_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
_VGG_CONV_NAMES = tuple(
    f"block{b}_conv{i}" for b, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)) for i in range(1, n + 1)
)
_VGG_FEATURES = dict(zip(_VGG_CONV_INDICES, _VGG_CONV_NAMES))
_VGG_CLASSIFIER = {0: "fc1", 3: "fc2", 6: "predictions"}
_BN = {"weight": ("params", "scale"), "bias": ("params", "bias"), "running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var")}


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, when the caller passes a live state dict
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _unwrap(obj: Any) -> Mapping[str, Any]:
    """Accepts a state dict, {'state_dict': sd} / {'model': sd}, and DataParallel's 'module.' prefix."""
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping):
        raise TypeError(f"expected a state dict (name -> tensor), got {type(obj).__name__}")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def _conv(w):
    return w.transpose(2, 3, 1, 0)


def _resnet_leaf(key: str, w: np.ndarray):
    """One torchvision ResNet entry -> ((collection, flax path), array), None to drop, or raise."""
    m = re.fullmatch(r"(conv1|bn1|fc)\.(\w+)", key) or re.fullmatch(
        r"(layer\d\.\d+)\.(conv\d|bn\d|downsample\.[01])\.(\w+)", key
    )
    if not m:
        return "unknown"
    if m.re.groups == 2:
        module, leaf = m.group(1), m.group(2)
    else:
        block, sub, leaf = m.groups()
        sub = {"downsample.0": "downsample_conv", "downsample.1": "downsample_bn"}.get(sub, sub)
        module = f"{block.replace('.', '_')}/{sub}"
    kind = module.rsplit("/", 1)[-1]
    if leaf == "num_batches_tracked":
        return None
    if kind.startswith("conv") or kind == "downsample_conv":
        return (("params", f"{module}/kernel"), _conv(w)) if leaf == "weight" else "unknown"
    if kind == "fc":
        return (("params", f"fc/{'kernel' if leaf == 'weight' else 'bias'}"), w.T if leaf == "weight" else w)
    if leaf in _BN:
        col, name = _BN[leaf]
        return ((col, f"{module}/{name}"), w)
    return "unknown"


def _vgg_leaf(key: str, w: np.ndarray):
    m = re.fullmatch(r"(features|classifier)\.(\d+)\.(weight|bias)", key)
    if not m:
        return "unknown"
    part, idx, leaf = m.group(1), int(m.group(2)), m.group(3)
    name = (_VGG_FEATURES if part == "features" else _VGG_CLASSIFIER).get(idx)
    if name is None:
        return "unknown"
    if leaf == "bias":
        return ("params", f"{name}/bias"), w
    if part == "features":
        return ("params", f"{name}/kernel"), _conv(w)
    if name == "fc1":
        out, n_in = w.shape
        c = 512
        hw = int(round((n_in // c) ** 0.5))
        w = w.reshape(out, c, hw, hw).transpose(2, 3, 1, 0).reshape(n_in, out)
        return ("params", "fc1/kernel"), w
    return ("params", f"{name}/kernel"), w.T


def convert_torchvision(path_or_state_dict, model_name: str) -> dict:
    """Converts a torchvision state dict (a `.pth` path or a mapping) for `fluxseg.models.create(model_name)`.

    model_name: 'resnet18', 'resnet34', 'resnet50', 'resnet101' or 'vgg16'.
    Returns {'params': ..., 'batch_stats': ...} of float32 numpy arrays. A
    state dict without its classifier gives variables for include_top=False.
    Raises ValueError on any key it cannot place and on any leaf whose shape
    does not match the model.
    """
    if model_name not in TORCHVISION_MODELS:
        hint = " (torchvision has no Keras-layout ResNet50; use 'resnet50')" if model_name == "resnet50_keras" else ""
        raise ValueError(f"torchvision conversion supports {TORCHVISION_MODELS}, not {model_name!r}{hint}")
    if isinstance(path_or_state_dict, (str, Path)):
        origin = f"torchvision file {path_or_state_dict}"
        state = _unwrap(load_pth(path_or_state_dict))
    else:
        origin = "torchvision state dict"
        state = _unwrap(path_or_state_dict)
    leaf_fn = _vgg_leaf if model_name == "vgg16" else _resnet_leaf
    flat: tree.Flat = {}
    unknown = []
    for key, value in state.items():
        placed = leaf_fn(key, _to_numpy(value))
        if placed == "unknown":
            unknown.append(key)
        elif placed is not None:
            (col, path), array = placed
            flat[(col, path)] = np.ascontiguousarray(array, dtype=np.float32)
    if unknown:
        raise ValueError(f"{origin}: entries that are not part of torchvision's {model_name}: {unknown[:20]}")
    top = "predictions/kernel" if model_name == "vgg16" else "fc/kernel"
    overrides = {"include_top": ("params", top) in flat}
    if overrides["include_top"] and flat[("params", top)].shape[-1] != 1000:
        overrides["num_classes"] = flat[("params", top)].shape[-1]
    tree.check_complete(flat, model_name, overrides, origin)
    return tree.unflatten(flat)
