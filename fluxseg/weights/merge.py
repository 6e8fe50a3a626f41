"""Loud partial loading: put converted leaves into a model's variables, or say exactly why not.

Rules (after big_vision's `merge_params`):
- every loaded leaf must exist in the target with the same shape;
- every target leaf under a prefix the load claims to cover must be loaded;
- a leaf whose '/'-joined path (without the collection, e.g.
  'predictions/kernel', 'backbone/bn1/mean') matches a `dont_load` regex
  (`re.search`) is exempt from both and keeps its initial value.
Everything else outside the covered prefixes keeps its initial value and is
listed in the report.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fluxseg.weights import tree


@dataclasses.dataclass
class LoadReport:
    """What `init_from_pretrained` did. Paths are '/'-joined, without the collection."""

    model_name: str
    source: str
    preprocess: str
    files: list[str]
    loaded: list[str]  # overwritten with converted values
    initialised: list[str]  # kept at the model's initialisation (incl. `skipped`)
    skipped: list[str]  # matched a dont_load pattern
    dropped: list[str]  # in the weight file but not used by this model (e.g. a classifier)

    def summary(self) -> str:
        def groups(paths):
            tops = sorted({p.split("/")[0] for p in paths})
            return ", ".join(tops) if tops else "none"

        lines = [
            f"{self.model_name}: {self.source} weights ({self.preprocess} preprocessing) from {', '.join(self.files)}",
            f"  loaded {len(self.loaded)} arrays: {groups(self.loaded)}",
            f"  left at initialisation {len(self.initialised)} arrays: {groups(self.initialised)}",
        ]
        if self.skipped:
            lines.append(f"  skipped by dont_load: {', '.join(self.skipped)}")
        if self.dropped:
            lines.append(f"  unused from the file: {groups(self.dropped)}")
        return "\n".join(lines)

    __str__ = summary


def _matches(path: str, patterns: Sequence[str]) -> bool:
    return any(re.search(p, path) for p in patterns)


def _place(value: np.ndarray, like):
    """`value` with the target leaf's dtype and, for sharded jax arrays, its sharding."""
    dtype = getattr(like, "dtype", np.float32)
    sharding = getattr(like, "sharding", None)
    value = np.asarray(value, dtype=dtype)
    if sharding is not None:
        return jax.device_put(value, sharding)
    if isinstance(like, jax.Array):
        return jnp.asarray(value)
    return value


def merge(target: tree.Flat, loaded: tree.Flat, covers: Iterable[str], dont_load: Sequence[str] = ()):
    """Returns (merged flat tree, loaded paths, skipped paths); raises ValueError listing every mismatch."""
    covers = tuple(covers)
    problems, skipped, out, done = [], [], dict(target), []
    for key, value in loaded.items():
        path = key[1]
        if _matches(path, dont_load):
            skipped.append(path)
        elif key not in target:
            problems.append(f"unexpected {tree.describe(key)} {np.shape(value)}: the model has no such leaf")
        elif tuple(np.shape(value)) != tuple(np.shape(target[key])):
            problems.append(f"shape of {tree.describe(key)}: weights {np.shape(value)}, model {np.shape(target[key])}")
        else:
            out[key] = _place(value, target[key])
            done.append(path)
    for key in target:
        path = key[1]
        covered = any(path.startswith(c) for c in covers)
        if covered and key not in loaded and not _matches(path, dont_load):
            problems.append(f"missing {tree.describe(key)} {np.shape(target[key])}: the weights do not provide it")
        elif covered and key not in loaded:
            skipped.append(path)
    if problems:
        shown = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise ValueError(
            f"pretrained weights do not fit the model:\n  {shown}\n"
            "Pass dont_load=[regex, ...] (matched against paths like 'predictions/kernel') "
            "to keep those leaves at their initialisation."
        )
    return out, done, sorted(set(skipped))
