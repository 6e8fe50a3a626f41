"""The optimiser, built from ``config.optim`` (see fluxseg/train/config.py).

Order of transforms, as in PyTorch: clip the gradient, add coupled weight
decay (SGD, Adam) or use decoupled decay (AdamW), apply the optimiser with a
learning-rate schedule. Frozen parameters (by regex over '/'-joined paths) get
zero updates and no optimiser state. Gradient accumulation wraps the trainable
branch in ``optax.MultiSteps`` (so frozen parameters get no accumulator either),
and the schedule counts optimiser updates, not batches.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

import jax
import optax

NAMES = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "cosine", "poly")


def path_str(path) -> str:
    """'/'-joined key path of a pytree leaf, e.g. 'vgg16/block1_conv1/kernel'."""
    parts = []
    for k in path:
        for attr in ("key", "name", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return "/".join(parts)


def frozen_mask(params, patterns: Sequence[str]):
    """Pytree of bools: True where a parameter path matches any pattern."""
    regexes = [re.compile(p) for p in patterns]
    return jax.tree_util.tree_map_with_path(
        lambda path, _: any(r.search(path_str(path)) for r in regexes), params)


def partition(params, patterns: Sequence[str]):
    """(trainable leaves, frozen leaves, merge): ``params`` split by the frozen patterns.

    ``merge(trainable, frozen)`` rebuilds a tree of ``params``' structure from
    two leaf lists in that order (any tree of the same structure splits the
    same way: gradients, updates). The split reads only the paths, so it is
    static under jit.
    """
    leaves, treedef = jax.tree_util.tree_flatten(params)
    flags = jax.tree_util.tree_leaves(frozen_mask(params, patterns))
    trainable = [x for x, f in zip(leaves, flags) if not f]
    frozen = [x for x, f in zip(leaves, flags) if f]

    def merge(trainable, frozen):
        t, f = iter(trainable), iter(frozen)
        return treedef.unflatten([next(f) if is_frozen else next(t) for is_frozen in flags])

    return trainable, frozen, merge


def schedule(cfg, total_updates: int) -> optax.Schedule:
    """Learning rate per optimiser update.

    cfg.schedule: 'constant' | 'cosine' | 'poly' (``(1 - t/T)**cfg.power``,
    0.9 by default, the DeepLab/FCN recipe); cfg.warmup_steps > 0 prepends a
    linear warmup from 0; cfg.end_lr_factor is the final fraction of the peak.
    """
    lr = float(cfg.learning_rate)
    warmup = int(cfg.warmup_steps)
    decay_steps = max(total_updates - warmup, 1)
    end = lr * float(cfg.end_lr_factor)
    kind = cfg.schedule
    if kind == "constant":
        main = optax.constant_schedule(lr)
    elif kind == "cosine":
        main = optax.cosine_decay_schedule(lr, decay_steps, alpha=end / lr if lr else 0.0)
    elif kind == "poly":
        main = optax.polynomial_schedule(lr, end, float(cfg.power), decay_steps)
    else:
        raise ValueError(f"unknown schedule {kind!r}; expected one of {SCHEDULES}")
    if warmup <= 0:
        return main
    ramp = optax.linear_schedule(0.0, lr, warmup)
    return optax.join_schedules([ramp, main], [warmup])


def updates(cfg, total_steps: int) -> int:
    """Optimiser updates in a run of ``total_steps`` batches (accum_steps batches each)."""
    return max(int(total_steps) // int(cfg.accum_steps), 1)


def create(cfg, total_steps: int, frozen_patterns: Sequence[str] = ()) -> tuple[
        optax.GradientTransformation, optax.Schedule]:
    """(tx, lr_schedule) from ``config.optim``; every key is read, none defaulted here.

    total_steps counts batches; with ``cfg.accum_steps = k`` the optimiser
    makes total_steps // k updates, each on the mean gradient of k batches,
    and ``lr_schedule`` is indexed by update (``learning_rate_at`` maps a
    batch step onto it).
    """
    accum = int(cfg.accum_steps)
    lr = schedule(cfg, updates(cfg, total_steps))
    name = cfg.name
    wd = float(cfg.weight_decay)
    chain: list[Any] = []
    if cfg.grad_clip_norm:
        chain.append(optax.clip_by_global_norm(float(cfg.grad_clip_norm)))
    if name == "sgd":
        if wd:
            chain.append(optax.add_decayed_weights(wd))
        chain.append(optax.sgd(lr, momentum=float(cfg.momentum) or None,
                               nesterov=bool(cfg.nesterov)))
    elif name == "adam":
        if wd:
            chain.append(optax.add_decayed_weights(wd))
        chain.append(optax.adam(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps))
    elif name == "rmsprop":
        if wd:
            chain.append(optax.add_decayed_weights(wd))
        chain.append(optax.rmsprop(lr, decay=cfg.rho, eps=cfg.eps))
    elif name == "adamw":
        chain.append(optax.adamw(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=wd))
    else:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {NAMES}")
    tx = optax.chain(*chain)
    if accum > 1:
        tx = optax.MultiSteps(tx, every_k_schedule=accum).gradient_transformation()
    if frozen_patterns:
        patterns = tuple(frozen_patterns)
        tx = optax.multi_transform(
            {"train": tx, "frozen": optax.set_to_zero()},
            lambda params: jax.tree_util.tree_map(
                lambda f: "frozen" if f else "train", frozen_mask(params, patterns)))
    return tx, lr


def learning_rate_at(cfg, lr: optax.Schedule, step: int) -> float:
    """The rate ``lr`` (from ``create``) applied by the update of batch ``step`` (1-based)."""
    return float(lr(max(int(step) - 1, 0) // int(cfg.accum_steps)))
