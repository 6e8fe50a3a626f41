"""Loading ImageNet weights into any fluxseg model that has a pretrained backbone.

One path for every model: the model says which backbone fills which subtree
(``pretrained_parts()``, see fluxseg.models.parts), `hub.load` finds and
converts each file, `merge.merge` places the leaves and fails loudly on
anything unexpected. Nothing here names a model: a new model with a
pretrained backbone declares its parts in its own file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

from fluxseg.weights import hub, merge, registry, tree


def _module(model):
    from fluxseg import models
    return models.create(model) if isinstance(model, str) else model


def _models_with_weights() -> list[str]:
    from fluxseg import models
    return [n for n in models.names() if models.pretrained_parts(models.create(n))]


def init_from_pretrained(
    model: Union[str, "object"],
    variables,
    source: str,
    *,
    path=None,
    allow_download: bool = False,
    dont_load: Sequence[str] = (),
):
    """Overwrites the pretrained parts of `variables` (from `model.init`) with converted ImageNet weights.

    model: the flax module the variables belong to, or a registered model name
      (its default configuration).
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
    from fluxseg import models

    module = _module(model)
    name = model if isinstance(model, str) else type(module).__name__
    src = registry.source(source)
    parts = models.pretrained_parts(module)
    if not parts:
        raise ValueError(f"{name!r} has no pretrained backbone; models with ImageNet weights: "
                         f"{', '.join(_models_with_weights())}")
    for part in parts:
        registry.candidates(part.backbone, source, part.include_top)  # raises with the sources that do exist
    if path is not None and Path(path).is_file() and len(parts) > 1:
        raise ValueError(f"{name} loads {len(parts)} files ({', '.join(p.backbone for p in parts)}); "
                         "pass a directory as path")
    target = tree.flatten(variables)
    loaded, dropped, files, covers = {}, [], [], []
    for part in parts:
        pre = hub.load(part.backbone, source, path=path, include_top=part.include_top,
                       allow_download=allow_download)
        placed, unused = part.place(tree.flatten(pre.variables))
        loaded.update(placed)
        dropped += [f"{part.backbone}:{p}" for p in (*pre.dropped, *unused)]
        files.append(str(pre.path))
        covers += part.claimed
    merged, done, skipped = merge.merge(target, loaded, covers, dont_load)
    out = {k: v for k, v in dict(variables).items() if k not in tree.COLLECTIONS}
    out.update(tree.unflatten(merged))
    done_set = set(done)
    initialised = sorted(p for (_, p) in target if p not in done_set)
    report = merge.LoadReport(name, source, src.preprocess, files, sorted(done), initialised,
                              skipped, dropped)
    return out, src.preprocess, report
