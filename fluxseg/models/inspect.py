"""Looking at a built model: named features, frozen parts, parameter counts."""
from __future__ import annotations

import re
from typing import Any, Iterable, Optional, Sequence

import jax
import numpy as np
from flax import traverse_util


def frozen_patterns(model) -> tuple[str, ...]:
    """Regexes over '/'-joined parameter paths that the model keeps fixed by default."""
    fn = getattr(model, "frozen_patterns", None)
    return tuple(fn()) if callable(fn) else ()


def is_frozen(path: str, patterns: Iterable[str]) -> bool:
    return any(re.search(p, path) for p in patterns)


def features(model, variables, x, names: Optional[Sequence[str]] = None, train: bool = False, **apply_kw):
    """Runs the model and returns (output, {tap name: feature map}).

    Tap names are '/'-joined module paths: 'block5_conv3' on vgg16,
    'backbone/layer3' on fcn_resnet18, 'encoder/conv4_block6_out' on
    unet_resnet50. `names=None` returns every tap. Unknown names raise an
    error listing the available ones.
    """
    mutable = ["intermediates"] + (["batch_stats"] if train else [])
    out, state = model.apply(variables, x, train=train, mutable=mutable, **apply_kw)
    taps = {"/".join(k): v for k, v in traverse_util.flatten_dict(state["intermediates"]).items()}
    if names is None:
        return out, taps
    missing = [n for n in names if n not in taps]
    if missing:
        raise KeyError(f"no feature(s) {missing} in {type(model).__name__}; available: {', '.join(taps)}")
    return out, {n: taps[n] for n in names}


def count_params(variables, patterns: Iterable[str] = ()) -> dict[str, int]:
    """Counts as Keras does: BatchNorm statistics and frozen parameters are non-trainable."""
    patterns = tuple(patterns)
    trainable = frozen = 0
    for path, leaf in traverse_util.flatten_dict(variables.get("params", {}), sep="/").items():
        n = int(np.prod(leaf.shape))
        if is_frozen(path, patterns):
            frozen += n
        else:
            trainable += n
    stats = sum(int(np.prod(l.shape)) for l in jax.tree_util.tree_leaves(variables.get("batch_stats", {})))
    non_trainable = frozen + stats
    return {"total": trainable + non_trainable, "trainable": trainable, "non_trainable": non_trainable}


def abstract_variables(model, input_shape: Sequence[int], batch: int = 1) -> Any:
    """Shapes of `model.init` for one input, without allocating or computing anything."""
    x = jax.ShapeDtypeStruct((batch, *input_shape), np.float32)
    return jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
