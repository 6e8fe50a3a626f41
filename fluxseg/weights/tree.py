"""Variable trees as flat {(collection, 'a/b/leaf'): array} maps, and checks against a model.

Flat maps keep the conversion code to plain dict lookups and make error
messages name a leaf by its '/'-joined path, the same spelling that
`dont_load` patterns and `fluxseg.models.features` use.
"""
from __future__ import annotations

import functools
from typing import Any, Mapping

import numpy as np
from flax import traverse_util

COLLECTIONS = ("params", "batch_stats")
Flat = dict[tuple[str, str], Any]


def flatten(variables: Mapping) -> Flat:
    """{'params': {...}, 'batch_stats': {...}} -> {(collection, 'a/b/leaf'): leaf}."""
    flat = {}
    for col in COLLECTIONS:
        tree = variables.get(col)
        if tree:
            for path, leaf in traverse_util.flatten_dict(dict(tree), sep="/").items():
                flat[(col, path)] = leaf
    return flat


def unflatten(flat: Flat) -> dict:
    """Inverse of `flatten`; empty collections are left out (as `model.init` does)."""
    out: dict[str, dict] = {}
    for (col, path), leaf in flat.items():
        out.setdefault(col, {})[path] = leaf
    return {col: traverse_util.unflatten_dict(tree, sep="/") for col, tree in out.items()}


def describe(key: tuple[str, str]) -> str:
    col, path = key
    return path if col == "params" else f"{path} ({col})"


@functools.lru_cache(maxsize=None)
def expected_shapes(model_name: str, overrides: tuple = ()) -> dict[tuple[str, str], tuple[int, ...]]:
    """Leaf shapes of `fluxseg.models.create(model_name, **overrides)`, traced, not computed."""
    from fluxseg import models
    from fluxseg.models.inspect import abstract_variables

    abstract = abstract_variables(models.create(model_name, **dict(overrides)), (224, 224, 3))
    return {k: tuple(v.shape) for k, v in flatten(abstract).items()}


def check_complete(flat: Flat, model_name: str, overrides: dict, origin: str) -> None:
    """Raises unless `flat` has exactly the leaves and shapes of the model built with `overrides`."""
    want = expected_shapes(model_name, tuple(sorted(overrides.items())))
    problems = []
    for k in sorted(set(want) - set(flat)):
        problems.append(f"missing {describe(k)} {want[k]}")
    for k in sorted(set(flat) - set(want)):
        problems.append(f"unexpected {describe(k)} {tuple(np.shape(flat[k]))}")
    for k in sorted(set(want) & set(flat)):
        if tuple(np.shape(flat[k])) != want[k]:
            problems.append(f"shape of {describe(k)}: file gives {tuple(np.shape(flat[k]))}, model needs {want[k]}")
    if problems:
        shown = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        opts = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
        raise ValueError(f"{origin} does not match fluxseg model {model_name!r} ({opts}):\n  {shown}")
