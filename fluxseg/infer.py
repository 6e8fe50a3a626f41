"""Prediction at any image size: ``predict(restored, image)``.

A segmentation model is applied to tiles of the size it was trained on (the
training crop, always a valid input size), and the tiles' logits are averaged
where they overlap before the argmax (softmax is monotonic, so averaging
logits before it is what the d2l FCN chapter prescribes). Models whose output
is smaller than their input (the unpadded U-Net) get the paper's overlap-tile
strategy: the image is mirror-padded by the margin the network eats, so every
output pixel sees real or mirrored context, and output tiles cover the image.
Images smaller than one output tile are mirror-padded up to it.

The tiling is one jit-compiled function per (image size, tile) pair: window
extraction, the model over batches of windows and the overlap-add.
"""
from __future__ import annotations

import functools
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


def mirror_pad(image: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """Reflect-pads [H,W,C] (repeatedly when a pad exceeds the image side)."""
    out = image
    while top or bottom or left or right:
        h, w = out.shape[:2]
        t, b = min(top, h - 1), min(bottom, h - 1)
        l, r = min(left, w - 1), min(right, w - 1)
        if h == 1 or w == 1:  # nothing to reflect: repeat the edge
            t, b, l, r = top, bottom, left, right
            out = np.pad(out, ((t, b), (l, r), (0, 0)), mode="edge")
        else:
            out = np.pad(out, ((t, b), (l, r), (0, 0)), mode="reflect")
        top, bottom, left, right = top - t, bottom - b, left - l, right - r
    return out


def window_starts(size: int, out: int, stride: int) -> list[int]:
    """Top-left output offsets along one axis so that windows of ``out`` cover ``size``."""
    last = max(size - out, 0)
    starts = list(range(0, last + 1, max(stride, 1)))
    if starts[-1] != last:
        starts.append(last)
    return starts


def _slide(variables, padded, starts, *, model, preprocess, tile, out_hw, region, batch_size):
    """Average logits [region_h, region_w, K] of the model over windows of ``padded``.

    padded: uint8/float [Hp, Wp, C]; starts: int32 [N, 2] output offsets
    (= input offsets in padded coordinates); N is a multiple of batch_size,
    repeats of the first window carry weight 0.
    """
    th, tw = tile
    oh, ow = out_hw
    n = starts.shape[0]

    def run(batch_starts):
        windows = jax.vmap(lambda s: lax.dynamic_slice(
            padded, (s[0], s[1], 0), (th, tw, padded.shape[-1])))(batch_starts)
        x = preprocess(windows.astype(jnp.float32))
        return model.apply(variables, x, train=False).astype(jnp.float32)

    logits = lax.map(run, starts[:, :2].reshape(n // batch_size, batch_size, 2))
    logits = logits.reshape(n, oh, ow, -1)
    k = logits.shape[-1]
    weights = starts[:, 2].astype(jnp.float32)

    def add(idx, carry):
        total, count = carry
        i, j = starts[idx, 0], starts[idx, 1]
        w = weights[idx]
        cur = lax.dynamic_slice(total, (i, j, 0), (oh, ow, k))
        total = lax.dynamic_update_slice(total, cur + w * logits[idx], (i, j, 0))
        cur = lax.dynamic_slice(count, (i, j), (oh, ow))
        count = lax.dynamic_update_slice(count, cur + w, (i, j))
        return total, count

    total = jnp.zeros((*region, k), jnp.float32)
    count = jnp.zeros(region, jnp.float32)
    total, count = lax.fori_loop(0, n, add, (total, count))
    return total / jnp.maximum(count, 1.0)[..., None]


def _compiled(restored):
    fn = getattr(restored, "_slide_fn", None)
    if fn is None:
        fn = jax.jit(functools.partial(_slide, model=restored.model, preprocess=restored.preprocess),
                     static_argnames=("tile", "out_hw", "region", "batch_size"))
        restored._slide_fn = fn
    return fn


def output_size(restored, tile: Sequence[int], channels: int) -> tuple[int, int, int]:
    """(h, w, K) of the model's logits for one ``tile``-sized input (no compute)."""
    x = jax.ShapeDtypeStruct((1, *tile, channels), jnp.float32)
    out = jax.eval_shape(lambda v, x: restored.model.apply(v, x, train=False),
                         restored.variables, x)
    if out.ndim != 4:
        raise ValueError(f"model output {out.shape} is not a [B,H,W,K] segmentation map")
    return out.shape[1], out.shape[2], out.shape[3]


def predict_logits(restored, image, *, tile: Optional[Sequence[int]] = None,
                   stride: Optional[Sequence[int]] = None, batch_size: int = 4) -> np.ndarray:
    """Averaged logits float32 [H, W, K] for one image uint8 [H, W, C] (or [H, W])."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3:
        raise ValueError(f"predict takes one image [H, W, C], got shape {image.shape}")
    image = _model_channels(restored, image)
    H, W, C = image.shape
    tile = tuple(int(t) for t in (tile or restored.config.data.crop_size))
    oh, ow, _ = output_size(restored, tile, C)
    if oh > tile[0] or ow > tile[1] or (tile[0] - oh) % 2 or (tile[1] - ow) % 2:
        raise ValueError(f"tile {tile} gives a {oh}x{ow} output; tiles need an output no larger "
                         "than the input and centred in it; pass another tile=")
    mh, mw = (tile[0] - oh) // 2, (tile[1] - ow) // 2
    if stride is None:
        # Same-size outputs have poor context at tile borders: overlap by a
        # third. Overlap-tile (mh, mw > 0) already has mirrored context.
        stride = (oh if mh else oh - oh // 3, ow if mw else ow - ow // 3)
    region = (max(H, oh), max(W, ow))
    rows = window_starts(region[0], oh, int(stride[0]))
    cols = window_starts(region[1], ow, int(stride[1]))
    starts = [(i, j, 1) for i in rows for j in cols]
    bs = max(1, min(int(batch_size), len(starts)))
    starts += [(rows[0], cols[0], 0)] * (-len(starts) % bs)
    padded = mirror_pad(image, mh, mh + region[0] - H, mw, mw + region[1] - W)
    avg = _compiled(restored)(restored.variables, jnp.asarray(padded),
                              jnp.asarray(starts, jnp.int32), tile=tile, out_hw=(oh, ow),
                              region=region, batch_size=bs)
    return np.asarray(avg)[:H, :W]


def _model_channels(restored, image: np.ndarray) -> np.ndarray:
    """[H,W,c] -> the channels the model was trained on (config.data.channels)."""
    want = restored.config.data.get("channels")
    if want is None or image.shape[-1] == want:
        return image
    if image.shape[-1] == 1 and want == 3:
        return np.repeat(image, 3, axis=-1)
    if image.shape[-1] in (3, 4) and want == 1:  # ITU-R 601 luma, as the data pipeline
        grey = image[..., :3].astype(np.float32) @ np.float32([0.2989, 0.587, 0.114])
        return np.clip(np.round(grey), 0, 255).astype(image.dtype)[..., None]
    raise ValueError(f"the model takes {want}-channel images, got {image.shape[-1]} channels")


def _classify(restored, image) -> int:
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    image = _model_channels(restored, image)
    h, w = (int(v) for v in restored.config.data.crop_size)
    x = jax.image.resize(jnp.asarray(image, jnp.float32), (h, w, image.shape[-1]), "bilinear")
    logits = restored.model.apply(restored.variables, restored.preprocess(x[None]), train=False)
    logits = np.asarray(logits, np.float32)[0]
    return int(logits[0] > 0) if logits.shape[-1] == 1 else int(np.argmax(logits))


def predict(restored, image, **kwargs):
    """Class ids for one image (uint8 RGB [H, W, 3], any H and W).

    Segmentation: int32 [H, W] mask at the image's own size (binary sigmoid
    heads give 0/1). Classification: the class id (int) of the image resized
    to the training size. kwargs: tile=(h, w) input tile (default the
    training crop), stride=(sh, sw) between output tiles, batch_size.
    """
    if restored.config.task == "classification":
        return _classify(restored, image)
    logits = predict_logits(restored, image, **kwargs)
    if logits.shape[-1] == 1:
        return (logits[..., 0] > 0).astype(np.int32)
    return np.argmax(logits, axis=-1).astype(np.int32)
