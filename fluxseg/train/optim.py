"""The optimiser, built from ``config.optim`` (see fluxseg/train/config.py).

Order of transforms, as in PyTorch: clip the gradient, add coupled weight
decay (SGD, Adam) or use decoupled decay (AdamW), apply the optimiser with a
learning-rate schedule. Frozen parameters (by regex over '/'-joined paths) get
zero updates and no optimiser state. Gradient accumulation wraps everything in
``optax.MultiSteps``, so the schedule counts optimiser updates, not batches.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

import jax
import optax


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


def schedule(cfg, total_updates: int) -> optax.Schedule:
    """Learning rate per optimiser update.

    cfg.schedule: 'constant' | 'cosine' | 'poly' (``(1 - t/T)**cfg.power``,
    0.9 by default, the DeepLab/FCN recipe); cfg.warmup_steps > 0 prepends a
    linear warmup from 0; cfg.end_lr_factor is the final fraction of the peak.
    """
    lr = float(cfg.learning_rate)
    warmup = int(cfg.get("warmup_steps", 0) or 0)
    decay_steps = max(total_updates - warmup, 1)
    end = lr * float(cfg.get("end_lr_factor", 0.0) or 0.0)
    kind = cfg.get("schedule", "constant")
    if kind == "constant":
        main = optax.constant_schedule(lr)
    elif kind == "cosine":
        main = optax.cosine_decay_schedule(lr, decay_steps, alpha=end / lr if lr else 0.0)
    elif kind == "poly":
        main = optax.polynomial_schedule(lr, end, float(cfg.get("power", 0.9)), decay_steps)
    else:
        raise ValueError(f"unknown schedule {kind!r}; expected 'constant', 'cosine' or 'poly'")
    if warmup <= 0:
        return main
    ramp = optax.linear_schedule(0.0, lr, warmup)
    return optax.join_schedules([ramp, main], [warmup])


def create(cfg, total_steps: int, frozen_patterns: Sequence[str] = ()) -> tuple[
        optax.GradientTransformation, optax.Schedule]:
    """(tx, lr_schedule) from ``config.optim``.

    total_steps counts batches; with ``cfg.accum_steps = k`` the optimiser
    makes total_steps // k updates, each on the mean gradient of k batches.
    """
    accum = int(cfg.get("accum_steps", 1) or 1)
    lr = schedule(cfg, max(total_steps // accum, 1))
    name = cfg.name
    wd = float(cfg.get("weight_decay", 0.0) or 0.0)
    chain: list[Any] = []
    if cfg.get("grad_clip_norm"):
        chain.append(optax.clip_by_global_norm(float(cfg.grad_clip_norm)))
    if name == "sgd":
        if wd:
            chain.append(optax.add_decayed_weights(wd))
        chain.append(optax.sgd(lr, momentum=float(cfg.get("momentum", 0.0)) or None,
                               nesterov=bool(cfg.get("nesterov", False))))
    elif name == "adam":
        if wd:
            chain.append(optax.add_decayed_weights(wd))
        chain.append(optax.adam(lr, b1=cfg.get("b1", 0.9), b2=cfg.get("b2", 0.999),
                                eps=cfg.get("eps", 1e-8)))
    elif name == "rmsprop":  # Keras RMSprop: rho 0.9, eps 1e-7 (Chollet's small convnet)
        if wd:
            chain.append(optax.add_decayed_weights(wd))
        chain.append(optax.rmsprop(lr, decay=cfg.get("rho", 0.9), eps=cfg.get("eps", 1e-7)))
    elif name == "adamw":
        chain.append(optax.adamw(lr, b1=cfg.get("b1", 0.9), b2=cfg.get("b2", 0.999),
                                 eps=cfg.get("eps", 1e-8), weight_decay=wd))
    else:
        raise ValueError(f"unknown optimizer {name!r}; expected 'sgd', 'adam', 'adamw' or 'rmsprop'")
    tx = optax.chain(*chain)
    if frozen_patterns:
        patterns = tuple(frozen_patterns)
        tx = optax.multi_transform(
            {"train": tx, "frozen": optax.set_to_zero()},
            lambda params: jax.tree_util.tree_map(
                lambda f: "frozen" if f else "train", frozen_mask(params, patterns)))
    if accum > 1:
        tx = optax.MultiSteps(tx, every_k_schedule=accum).gradient_transformation()
    return tx, lr
