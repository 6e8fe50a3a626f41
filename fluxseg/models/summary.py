"""Keras-style model summaries, computed from shapes only (nothing is allocated).

Rows are the innermost flax modules in call order (convolutions, BatchNorms,
Dense layers, transposed convolutions) with their output shapes and
parameter counts; totals count BatchNorm statistics and frozen parameters as
non-trainable, as Keras does.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from fluxseg import models
from fluxseg.models.inspect import abstract_variables


@dataclasses.dataclass
class Row:
    path: str
    kind: str
    output_shape: tuple
    params: int


@dataclasses.dataclass
class Summary:
    name: str
    input_shape: tuple
    output_shape: tuple
    rows: list[Row]
    total: int
    trainable: int
    non_trainable: int

    def as_dict(self) -> dict:
        return {
            "model": self.name,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "total": self.total,
            "trainable": self.trainable,
            "non_trainable": self.non_trainable,
        }

    def table(self) -> str:
        w1 = max([len("Layer (type)")] + [len(f"{r.path} ({r.kind})") for r in self.rows]) + 2
        w2 = max([len("Output Shape")] + [len(_shape(r.output_shape)) for r in self.rows]) + 2
        rule = "─" * (w1 + w2 + 14)
        lines = [f'Model: "{self.name}"', rule, f"{'Layer (type)':<{w1}}{'Output Shape':<{w2}}{'Param #':>12}", rule]
        lines.append(f"{'input':<{w1}}{_shape((None, *self.input_shape)):<{w2}}{0:>12,}")
        for r in self.rows:
            lines.append(f"{r.path + ' (' + r.kind + ')':<{w1}}{_shape(r.output_shape):<{w2}}{r.params:>12,}")
        lines += [
            rule,
            f" Total params: {self.total:,} ({_mb(self.total)})",
            f" Trainable params: {self.trainable:,} ({_mb(self.trainable)})",
            f" Non-trainable params: {self.non_trainable:,} ({_mb(self.non_trainable)})",
            f" Output shape: {_shape(self.output_shape)}",
        ]
        return "\n".join(lines)


def _shape(s) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in s) + ")"


def _mb(n: int) -> str:
    return f"{n * 4 / 2**20:.2f} MB"


def summarize(name: str, input_shape: Sequence[int] | None = None, **overrides) -> Summary:
    """Summary of registered model `name` for one input of shape (H, W, C)."""
    model = models.create(name, **overrides)
    input_shape = tuple(input_shape or models.spec(name).input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"input shape must be H,W,C (three numbers), got {input_shape}")
    variables = abstract_variables(model, input_shape)
    calls: list[tuple[str, str, tuple]] = []

    def record(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if context.method_name == "__call__" and context.module.path:
            shape = out.shape if hasattr(out, "shape") else ()
            calls.append(("/".join(context.module.path), type(context.module).__name__, tuple(shape)))
        return out

    def run(v, x):
        with nn.intercept_methods(record):
            return model.apply(v, x, train=False)

    out = jax.eval_shape(run, variables, jax.ShapeDtypeStruct((1, *input_shape), jnp.float32))
    paths = [c[0] for c in calls]
    leaves = [c for c in calls if not any(p.startswith(c[0] + "/") for p in paths)]
    sizes = _sizes_by_module(variables)
    rows = [Row(p, kind, (None, *s[1:]), sizes.get(p, 0)) for p, kind, s in leaves]
    counts = models.count_params(variables, models.frozen_patterns(model))
    return Summary(name, input_shape, (None, *out.shape[1:]), rows, **counts)


def _sizes_by_module(variables) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for col in variables.values():
        for path, leaf in traverse_util.flatten_dict(col).items():
            key = "/".join(path[:-1])
            sizes[key] = sizes.get(key, 0) + int(np.prod(leaf.shape))
    return sizes
