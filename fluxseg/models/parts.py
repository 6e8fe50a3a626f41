"""The pretrained parts of a model: which ImageNet backbone fills which subtree.

A model lists them with ``pretrained_parts()``, beside ``frozen_patterns()``,
so the weight loader (fluxseg.weights.pretrained) asks the model instead of
keeping a table of models; adding a model with a pretrained backbone touches
only the model's own file (big_vision keeps each model's ``load()`` beside it
for the same reason).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

Flat = dict  # {(collection, 'a/b/leaf'): array}, as fluxseg.weights.tree.flatten gives


@dataclasses.dataclass(frozen=True)
class Part:
    """One backbone's converted weights going into one subtree of a model.

    backbone: the fluxseg model the weight file is for ('vgg16', 'resnet18', ...).
    into: the target prefix ('' = the model itself, else 'name/').
    include_top: whether the backbone's classifier is loaded too.
    covers: prefixes that must be fully loaded (default: ``into``).
    adapt: maps the backbone's leaves to target leaves when a plain prefix does
      not (FCN-VGG16's fc layers become convolutions); returns (placed, dropped).
    """

    backbone: str
    into: str = ""
    include_top: bool = False
    covers: tuple[str, ...] = ()
    adapt: Optional[Callable[[Flat], tuple[Flat, list]]] = None

    @property
    def claimed(self) -> tuple[str, ...]:
        return self.covers or (self.into,)

    def under(self, prefix: str) -> "Part":
        """The same part inside a model that holds it under ``prefix`` ('encoder/')."""
        if self.adapt is not None:
            raise ValueError(f"a part with an adapt function cannot be moved under {prefix!r}")
        return dataclasses.replace(self, into=prefix + self.into,
                                   covers=tuple(prefix + c for c in self.claimed))

    def place(self, flat: Flat) -> tuple[Flat, list]:
        """The backbone's leaves at their paths in the model; (placed, unused paths)."""
        if self.adapt is not None:
            return self.adapt(flat)
        return {(col, self.into + path): v for (col, path), v in flat.items()}, []


def pretrained_parts(model: Any) -> tuple[Part, ...]:
    """The parts ``model`` declares; () for a model without a pretrained backbone."""
    fn = getattr(model, "pretrained_parts", None)
    return tuple(fn()) if callable(fn) else ()
