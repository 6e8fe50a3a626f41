"""What pretrained weights exist: the official files, their URLs and hashes, and their sources.

URLs and hashes are those in the installed libraries' own sources
(keras/src/applications/{vgg16,resnet}.py `file_hash`, an md5 of the file;
torchvision/models/{resnet,vgg}.py `url`, whose file name carries the first
hex digits of the file's sha256, checked as torch.hub does).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable

from fluxseg.weights.keras_h5 import convert_keras_h5
from fluxseg.weights.torchvision import convert_torchvision

_KERAS = "https://storage.googleapis.com/tensorflow/keras-applications/"
_TORCH = "https://download.pytorch.org/models/"


@dataclasses.dataclass(frozen=True)
class WeightFile:
    """One official weight file, under the name its library caches it as."""

    filename: str
    url: str
    hash: str  # md5 hex digest (Keras) or sha256 prefix (torchvision, from the file name)
    hash_kind: str  # 'md5' | 'sha256-prefix'
    include_top: bool


@dataclasses.dataclass(frozen=True)
class Source:
    name: str
    preprocess: str  # a `fluxseg.weights.preprocess` name
    convert: Callable  # (path, model_name) -> variables

    def cache_dir(self) -> Path:
        """Where this source's own library keeps downloaded files (honours KERAS_HOME / TORCH_HOME)."""
        return keras_cache_dir() if self.name == "keras" else torch_cache_dir()


def keras_cache_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models"


def torch_cache_dir() -> Path:
    home = os.environ.get("TORCH_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "torch"
    return Path(home) / "hub" / "checkpoints"


SOURCES = {
    "keras": Source("keras", "caffe", convert_keras_h5),
    "torchvision": Source("torchvision", "torch", convert_torchvision),
}


def _k(name: str, sub: str, md5: str, top: bool) -> WeightFile:
    return WeightFile(name, f"{_KERAS}{sub}/{name}", md5, "md5", top)


def _t(name: str) -> WeightFile:
    return WeightFile(name, f"{_TORCH}{name}", name.rsplit("-", 1)[1].split(".")[0], "sha256-prefix", True)


# (source, fluxseg model) -> files in order of preference.
FILES: dict[tuple[str, str], tuple[WeightFile, ...]] = {
    ("keras", "vgg16"): (
        _k("vgg16_weights_tf_dim_ordering_tf_kernels.h5", "vgg16", "64373286793e3c8b2b4e3219cbf3544b", True),
        _k("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "vgg16", "6d6bbae143d832006294945121d1f1fc", False),
    ),
    ("keras", "resnet50_keras"): (
        _k("resnet50_weights_tf_dim_ordering_tf_kernels.h5", "resnet", "2cb95161c43110f7111970584f804107", True),
        _k("resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", "resnet", "4d473c1dd8becc155b73f8504c6f6626", False),
    ),
    ("torchvision", "resnet18"): (_t("resnet18-f37072fd.pth"),),
    ("torchvision", "resnet34"): (_t("resnet34-b627a593.pth"),),
    # IMAGENET1K_V1 first (the classic weights), then V2 (the same architecture, a newer recipe).
    ("torchvision", "resnet50"): (_t("resnet50-0676ba61.pth"), _t("resnet50-11ad3fa6.pth")),
    ("torchvision", "resnet101"): (_t("resnet101-63fe2227.pth"), _t("resnet101-cd907fc2.pth")),
    ("torchvision", "vgg16"): (_t("vgg16-397923af.pth"),),
}

# The classifier leaves of each backbone: dropped when the model is built without its top.
TOP_LAYERS = {
    "vgg16": ("fc1", "fc2", "predictions"),
    "resnet50_keras": ("predictions",),
    **{n: ("fc",) for n in ("resnet18", "resnet34", "resnet50", "resnet101")},
}


def source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown weight source {name!r}; expected one of {sorted(SOURCES)}") from None


def models_of(source_name: str) -> list[str]:
    return [m for s, m in FILES if s == source_name]


def candidates(model_name: str, source_name: str, include_top: bool) -> list[WeightFile]:
    """Files that can give `model_name` from `source_name`: exact top/notop match first, then a file with top to strip."""
    source(source_name)
    files = FILES.get((source_name, model_name))
    if files is None:
        other = [s for s, m in FILES if m == model_name]
        hint = f"; {model_name} comes from {other}" if other else ""
        if model_name == "resnet50" and source_name == "keras":
            hint = "; Keras' ResNet50 is the v1 layout, fluxseg model 'resnet50_keras'"
        raise ValueError(
            f"no {source_name} weights for {model_name!r}; {source_name} provides {models_of(source_name)}{hint}"
        )
    exact = [f for f in files if f.include_top == include_top]
    with_top = [f for f in files if f.include_top and not include_top]
    if not exact and not with_top:
        raise ValueError(f"{source_name} has no file with the classifier of {model_name!r}")
    return exact + with_top
