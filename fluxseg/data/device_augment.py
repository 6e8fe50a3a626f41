"""The training crop finished on the accelerator: one batched jax function, run inside the train step.

With data.augment_on='device' the host decodes each crop's window and
sends it as uint8 with its draw (fluxseg.data.train_crop); this function
applies the draw: bilinear rescale and crop (image, weight), nearest (mask),
flip, colour jitter, then rounds the image to the integers the host path's
uint8 would hold. The maths is fluxseg.data.window's, written in jax, so the
two paths agree (image to rounding, mask exactly). Normalisation follows in
the step (its preprocess). It imports no TensorFlow.

Batch in (one device's rows; `image` etc. may be the bucket or already the crop):
  image uint8 [b, bH, bW, C]; mask uint8 [b, bH, bW] (ignore_index padding);
  weight float32 [b, bH, bW] (optional); label int32 [b] (classification);
  aug_ints int32 [b, 9], aug_floats float32 [b, 3] (fluxseg.data.window).
Batch out: image float32 [b, cH, cW, C] (0..255), mask int32 [b, cH, cW],
weight float32 [b, cH, cW], label as given.
"""
from __future__ import annotations

import functools
from typing import Callable, Optional

import jax
import jax.numpy as jnp

GREY = jnp.array((0.2989, 0.587, 0.114), jnp.float32)  # fluxseg.data.window.GREY
KEYS = ("aug_ints", "aug_floats")


def _floor_div(a, n, e):
    """floor(a n / e) in int32 without overflow (fluxseg.data.window._floor_div)."""
    return a * (n // e) + (a * (n % e)) // e


def _taps(n: int, lo, hi, size):
    """Bilinear rows (i0, i1, w) of output rows 0..n-1: v = (i - lo + 0.5) k - 0.5, k = size / (hi - lo)."""
    k = size.astype(jnp.float32) / (hi - lo).astype(jnp.float32)
    v = (jnp.arange(n, dtype=jnp.int32) - lo).astype(jnp.float32)
    v = (v + 0.5) * k - 0.5
    f = jnp.floor(v)
    i0 = jnp.clip(f, 0, size - 1).astype(jnp.int32)
    i1 = jnp.clip(f + 1, 0, size - 1).astype(jnp.int32)
    return i0, i1, v - f


def _nearest(n: int, lo, hi, size):
    """Nearest rows, exact integers (fluxseg.data.window.nearest)."""
    row = _floor_div(2 * (jnp.arange(n, dtype=jnp.int32) - lo) + 1, size, 2 * (hi - lo))
    return jnp.clip(row, 0, size - 1)


def _inside(lo, hi, n: int):
    i = jnp.arange(n)
    return (i >= lo) & (i < hi)


def _columns(flip, n: int):
    """Column order of the output: reversed when the draw flips."""
    i = jnp.arange(n)
    return jnp.where(flip > 0, n - 1 - i, i)


def _inside_crop(ints, crop, order):
    """bool [cH, cW]: the crop's image part (not padding), in output column order."""
    ch, cw = crop
    return _inside(ints[0], ints[1], ch)[:, None] & _inside(ints[2], ints[3], cw)[order][None, :]


def _resample_one(ints, image, mask, weight, crop, ignore_index):
    ch, cw = crop
    order = _columns(ints[8], cw)
    y0, y1, wy = _taps(ch, ints[0], ints[1], ints[6])
    x0, x1, wx = _taps(cw, ints[2], ints[3], ints[7])
    x0, x1, wx = x0[order], x1[order], wx[order]
    inside = _inside_crop(ints, crop, order)

    def bilinear(x):  # [bH, bW, C] -> [cH, cW, C] float32, x then y as tf.image.resize does
        left, right = x[:, x0].astype(jnp.float32), x[:, x1].astype(jnp.float32)
        cols = left + (right - left) * wx[None, :, None]
        top, bottom = cols[y0], cols[y1]
        return jnp.where(inside[..., None], top + (bottom - top) * wy[:, None, None], 0.0)

    out = {"image": bilinear(image), "inside": inside}
    if mask is not None:
        rows = _nearest(ch, ints[0], ints[1], ints[6])
        cols = _nearest(cw, ints[2], ints[3], ints[7])[order]
        out["mask"] = jnp.where(inside, mask[rows][:, cols].astype(jnp.int32), ignore_index)
    if weight is not None:
        out["weight"] = bilinear(weight[..., None])[..., 0]
    return out


def _flip_one(ints, image, mask, weight):
    order = _columns(ints[8], image.shape[1])
    out = {"image": image[:, order].astype(jnp.float32),
           "inside": _inside_crop(ints, image.shape[:2], order)}
    if mask is not None:
        out["mask"] = mask[:, order].astype(jnp.int32)
    if weight is not None:
        out["weight"] = weight[:, order]
    return out


def _jitter_one(x, floats, inside):
    """fluxseg.data.window.jitter_to_uint8's affine map (before its rounding): means over
    the image part, padding left at 0."""
    b, c, s = floats[0], floats[1], floats[2]
    keep = inside[..., None]
    m = jnp.sum(jnp.where(keep, x, 0.0), axis=(0, 1)) / jnp.maximum(jnp.sum(inside), 1)
    if x.shape[-1] != 3:
        out = c * b * x + (1.0 - c) * b * m
    else:
        grey = jnp.sum(x * GREY, axis=-1, keepdims=True)
        offset = (1.0 - c) * b * (s * m + (1.0 - s) * jnp.sum(m * GREY))
        out = (s * c * b) * x + ((1.0 - s) * c * b) * grey + offset
    return jnp.where(keep, out, 0.0)


def augment(batch: dict, *, crop, resample: bool, jitter: bool, ignore_index: int) -> dict:
    """Applies each row's draw; see the module docstring for shapes. Pure, jit-able."""
    ints, floats = batch["aug_ints"], batch["aug_floats"]
    mask, weight = batch.get("mask"), batch.get("weight")
    if resample:
        one = functools.partial(_resample_one, crop=tuple(crop), ignore_index=ignore_index)
        out = jax.vmap(one)(ints, batch["image"], mask, weight)
    else:  # already the crop (a pure cut, or a random-resized-crop) on the host
        out = jax.vmap(_flip_one)(ints, batch["image"], mask, weight)
    image, inside = out.pop("image"), out.pop("inside")
    if jitter:
        image = jax.vmap(_jitter_one)(image, floats, inside)
    out["image"] = jnp.floor(jnp.clip(image + 0.5, 0.0, 255.0))  # window.to_uint8's rounding
    rest = {k: v for k, v in batch.items() if k not in (*KEYS, "image", "mask", "weight")}
    return {**rest, **out}


def make(data_cfg, dense: bool) -> Optional[Callable[[dict], dict]]:
    """batch -> batch for a data config whose augmentation runs on the device, else None."""
    from fluxseg.data import config as config_lib
    if config_lib.augment_on(data_cfg) != "device":
        return None
    return functools.partial(augment, crop=config_lib.crop_size(data_cfg),
                             resample=config_lib.crop_kind(data_cfg, dense) == "resample",
                             jitter=any(float(v) for v in data_cfg.color_jitter),
                             ignore_index=int(data_cfg.ignore_index))


def step_inputs(task, batch: dict) -> dict:
    """The entries of a host batch that the train step reads: the task's, and the draws."""
    return {**task.inputs(batch), **{k: batch[k] for k in KEYS if k in batch}}
