"""Loading ImageNet weights into any fluxseg model that has a pretrained backbone.

One path for every model: `plan` says which backbone(s) feed which subtree,
`hub.load` finds and converts each file, `merge.merge` places the leaves and
fails loudly on anything unexpected. Models and their parts:

  vgg16, resnet18/34/50/101, resnet50_keras   the model itself (with or without top)
  hybrid_vgg16_resnet50   vgg16/ <- Keras VGG16 notop, resnet50/ <- Keras ResNet50 notop
  unet_resnet50           encoder/ <- Keras ResNet50 notop
  fcn_resnet18            backbone/ <- torchvision ResNet-18 (fc unused)
  fcn_vgg16               vgg16/ <- VGG16 convs, fc6/fc7 <- fc1/fc2 as 7x7 / 1x1 convs
  gap_classifier          backbone/ <- its backbone (read from the variables), notop
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Optional, Sequence

from fluxseg.weights import hub, merge, registry, tree


@dataclasses.dataclass(frozen=True)
class Part:
    """One backbone's weights going into one subtree of a model."""

    model: str  # the fluxseg backbone the weight file is for
    into: str  # target prefix ('' = the model itself, else 'name/')
    include_top: bool
    covers: tuple[str, ...]  # target prefixes that must be fully loaded
    adapt: Optional[Callable[[tree.Flat], tuple[tree.Flat, list]]] = None  # backbone leaves -> target leaves, dropped

    def place(self, flat: tree.Flat) -> tuple[tree.Flat, list[str]]:
        if self.adapt is not None:
            return self.adapt(flat)
        top = registry.TOP_LAYERS[self.model]
        placed, dropped = {}, []
        for (col, path), v in flat.items():
            if not self.include_top and path.split("/")[0] in top:
                dropped.append(path)
            else:
                placed[(col, self.into + path)] = v
        return placed, dropped


def _fcn_vgg16_adapt(flat: tree.Flat):
    """VGG16 with top -> FCNVGG16: convs under vgg16/, fc1 -> fc6 (7x7 conv), fc2 -> fc7 (1x1 conv).

    fc1's rows are in H, W, C order (Keras' Flatten; torchvision's are
    permuted on conversion), so a reshape makes the equivalent 7x7 kernel.
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


def identify_backbone(target: tree.Flat, prefix: str) -> str:
    """Which fluxseg backbone sits under `prefix`, read from its parameter names."""
    paths = {p[len(prefix) :] for _, p in target if p.startswith(prefix)}
    firsts = {p.split("/")[0] for p in paths}
    if "block1_conv1" in firsts:
        return "vgg16"
    if "conv1_conv" in firsts:
        return "resnet50_keras"
    if "layer1_0" in firsts:
        bottleneck = any(p.startswith("layer1_0/conv3/") for p in paths)
        layer3 = len({f for f in firsts if f.startswith("layer3_")})
        name = {(False, 2): "resnet18", (False, 6): "resnet34", (True, 6): "resnet50", (True, 23): "resnet101"}.get((bottleneck, layer3))
        if name:
            return name
    raise ValueError(f"cannot tell which backbone is under {prefix!r}: its layers are {sorted(firsts)[:8]}...")


def plan(model_name: str, target: tree.Flat) -> list[Part]:
    """The parts to load into `model_name`'s variables (flattened as `target`)."""

    def top_of(prefix, backbone):
        return ("params", prefix + registry.TOP_LAYERS[backbone][-1] + "/kernel") in target

    if model_name in registry.TOP_LAYERS:
        return [Part(model_name, "", top_of("", model_name), ("",))]
    if model_name == "hybrid_vgg16_resnet50":
        return [Part("vgg16", "vgg16/", False, ("vgg16/",)), Part("resnet50_keras", "resnet50/", False, ("resnet50/",))]
    if model_name == "unet_resnet50":
        return [Part("resnet50_keras", "encoder/", False, ("encoder/",))]
    if model_name == "fcn_resnet18":
        return [Part("resnet18", "backbone/", False, ("backbone/",))]
    if model_name == "fcn_vgg16":
        return [Part("vgg16", "", True, ("vgg16/", "fc6/", "fc7/"), _fcn_vgg16_adapt)]
    if model_name == "gap_classifier":
        return [Part(identify_backbone(target, "backbone/"), "backbone/", False, ("backbone/",))]
    with_weights = sorted(set(registry.TOP_LAYERS) | {"hybrid_vgg16_resnet50", "unet_resnet50", "fcn_resnet18", "fcn_vgg16", "gap_classifier"})
    raise ValueError(f"{model_name!r} has no pretrained backbone; models with ImageNet weights: {', '.join(with_weights)}")


def init_from_pretrained(
    model_name: str,
    variables,
    source: str,
    *,
    path=None,
    allow_download: bool = False,
    dont_load: Sequence[str] = (),
):
    """Overwrites the pretrained parts of `variables` (from `model.init`) with converted ImageNet weights.

    source: 'keras' or 'torchvision' (each backbone must exist in it).
    path: a weight file (models with one backbone) or a directory searched
      before the standard places (see `fluxseg.weights.hub`).
    dont_load: regexes over leaf paths ('predictions/', 'backbone/fc/') that
      keep their initial values instead of failing on a mismatch.
    Returns (variables, preprocess name, LoadReport). Loaded leaves take the
    dtype (and, for jax arrays, the sharding) of the leaves they replace;
    other collections pass through untouched. Raises ValueError on any shape
    or name mismatch not matched by `dont_load`.
    """
    src = registry.source(source)
    target = tree.flatten(variables)
    parts = plan(model_name, target)
    for part in parts:
        registry.candidates(part.model, source, part.include_top)  # raises with the sources that do exist
    if path is not None and Path(path).is_file() and len(parts) > 1:
        raise ValueError(f"{model_name} loads {len(parts)} files ({', '.join(p.model for p in parts)}); pass a directory as path")
    loaded, dropped, files, covers = {}, [], [], []
    for part in parts:
        pre = hub.load(part.model, source, path=path, include_top=part.include_top, allow_download=allow_download)
        placed, unused = part.place(tree.flatten(pre.variables))
        loaded.update(placed)
        dropped += [f"{part.model}:{p}" for p in (*pre.dropped, *unused)]
        files.append(str(pre.path))
        covers += part.covers
    merged, done, skipped = merge.merge(target, loaded, covers, dont_load)
    out = {k: v for k, v in dict(variables).items() if k not in tree.COLLECTIONS}
    out.update(tree.unflatten(merged))
    done_set = set(done)
    initialised = sorted(p for (_, p) in target if p not in done_set)
    report = merge.LoadReport(model_name, source, src.preprocess, files, sorted(done), initialised, skipped, dropped)
    return out, src.preprocess, report
