"""Losses, one registry.

Every loss returns a pair ``(total, weight)`` of float32 scalars: the loss
summed over the items it averages (pixels, or images for Dice) and the number
(or class-weighted count) of those items. The caller divides the two. Keeping
the numerator and denominator apart is what makes a data-parallel step equal
to a single-device step: each device sums its own share and the denominators
are summed across devices before dividing, so ignored pixels that happen to
fall unevenly on the devices do not change the average.

Targets: integer class ids, ``[B,H,W]`` masks or ``[B]`` labels. A target is
ignored when it equals ``ignore_index`` (config.data.ignore_index) or is negative (-1
marks padding rows of a classification eval batch).
"""
from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import optax

LossFn = Callable[..., tuple[jax.Array, jax.Array]]


def valid_mask(target: jax.Array, ignore_index: int) -> jax.Array:
    """True where a target counts: not ``ignore_index`` and not negative."""
    return (target != ignore_index) & (target >= 0)


def _weights(target, valid, class_weights):
    if class_weights is None:
        return valid.astype(jnp.float32)
    cw = jnp.asarray(class_weights, jnp.float32)
    return jnp.where(valid, cw[jnp.where(valid, target, 0)], 0.0)


def softmax_cross_entropy(logits, target, *, ignore_index, class_weights=None,
                          pixel_weights=None):
    """Multi-class CE. logits [...,C], target [...] ints.

    With ``class_weights`` ([C]) each item is weighted by the weight of its
    true class and the weight sum is the denominator (PyTorch's weighted mean).
    ``pixel_weights`` (float, target's shape; the U-Net border weight map,
    Ronneberger et al. 2015 eq. 1) multiply each item's CE but not the
    denominator: the loss stays a mean over the valid items.
    """
    logits = logits.astype(jnp.float32)
    valid = valid_mask(target, ignore_index)
    safe = jnp.where(valid, target, 0)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, safe)
    w = _weights(target, valid, class_weights)
    if pixel_weights is not None:
        return jnp.sum(ce * w * pixel_weights.astype(jnp.float32)), jnp.sum(w)
    return jnp.sum(ce * w), jnp.sum(w)


def sigmoid_binary_cross_entropy(logits, target, *, ignore_index, class_weights=None,
                                 pixel_weights=None):
    """Binary CE on one logit channel. logits [...,1]; target > 0 is foreground.

    ``class_weights`` is ``[w_background, w_foreground]`` if given.
    """
    logits = logits.astype(jnp.float32)[..., 0]
    valid = valid_mask(target, ignore_index)
    y = (target > 0).astype(jnp.float32)
    bce = optax.sigmoid_binary_cross_entropy(logits, y)
    w = _weights((target > 0).astype(jnp.int32), valid, class_weights)
    if pixel_weights is not None:  # as in softmax_cross_entropy
        return jnp.sum(bce * w * pixel_weights.astype(jnp.float32)), jnp.sum(w)
    return jnp.sum(bce * w), jnp.sum(w)


def dice(logits, target, *, ignore_index, class_weights=None, smooth=1.0,
         pixel_weights=None):
    """Soft Dice loss per image, averaged over images (the denominator).

    Per image: 1 - mean over classes of (2|P∩T| + s) / (|P| + |T| + s), with P
    the softmax (sigmoid for one channel) probabilities and T the one-hot
    target, both restricted to valid pixels. Computing it per image keeps it a
    sum over images, hence exact under data parallelism.
    """
    del class_weights, pixel_weights  # an overlap score: per-pixel weights do not apply
    logits = logits.astype(jnp.float32)
    valid = valid_mask(target, ignore_index)
    if logits.shape[-1] == 1:
        p1 = jax.nn.sigmoid(logits[..., 0])
        probs = jnp.stack([1.0 - p1, p1], axis=-1)
        onehot = jax.nn.one_hot((target > 0).astype(jnp.int32), 2)
    else:
        probs = jax.nn.softmax(logits, axis=-1)
        onehot = jax.nn.one_hot(jnp.where(valid, target, 0), logits.shape[-1])
    v = valid[..., None].astype(jnp.float32)
    probs, onehot = probs * v, onehot * v
    axes = tuple(range(1, logits.ndim - 1))  # spatial axes
    inter = jnp.sum(probs * onehot, axis=axes)
    denom = jnp.sum(probs, axis=axes) + jnp.sum(onehot, axis=axes)
    per_image = 1.0 - jnp.mean((2.0 * inter + smooth) / (denom + smooth), axis=-1)
    has_pixels = jnp.any(valid.reshape(valid.shape[0], -1), axis=1).astype(jnp.float32)
    return jnp.sum(per_image * has_pixels), jnp.sum(has_pixels)


LOSSES: dict[str, LossFn] = {
    "softmax_ce": softmax_cross_entropy,
    "sigmoid_bce": sigmoid_binary_cross_entropy,
    "dice": dice,
}


def parse(spec: str) -> Sequence[str]:
    """'softmax_ce+dice' -> ('softmax_ce', 'dice'); checks every name."""
    names = tuple(s.strip() for s in spec.split("+") if s.strip())
    for n in names:
        if n not in LOSSES:
            raise ValueError(f"unknown loss {n!r} in {spec!r}; known losses: {sorted(LOSSES)}")
    if not names:
        raise ValueError("empty loss spec; expected e.g. 'softmax_ce' or 'softmax_ce+dice'")
    return names


def terms(spec: str, logits, target, **kwargs) -> list[tuple[jax.Array, jax.Array]]:
    """Evaluates every loss named in ``spec``; one ``(total, weight)`` each."""
    return [LOSSES[n](logits, target, **kwargs) for n in parse(spec)]


def mean_loss(spec: str, logits, target, **kwargs) -> jax.Array:
    """The scalar loss on one batch: sum over terms of total / weight."""
    return sum(t / jnp.maximum(w, 1e-12) for t, w in terms(spec, logits, target, **kwargs))
