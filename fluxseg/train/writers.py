"""What a researcher watches: JSON lines, TensorBoard events, PNG pictures.

Only process 0 writes (``enabled=False`` elsewhere makes every call a no-op).
<workdir>/metrics.jsonl   one JSON object per line: {"step", "split", ...}
<workdir>/tensorboard/    tf.summary scalars per split, prediction images
<workdir>/predictions_<step>.png   image | ground truth | prediction rows
"""
from __future__ import annotations

import json
import math
import os
from typing import Optional

import numpy as np


def _default_colormap(n: int) -> np.ndarray:
    # PASCAL-style bit-interleaved palette: distinct colours for any n.
    cmap = np.zeros((max(n, 1), 3), np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


def colorize(mask: np.ndarray, colormap: Optional[np.ndarray], ignore_index: int = 255) -> np.ndarray:
    """int [H,W] class ids -> uint8 [H,W,3]; ignored pixels white."""
    mask = np.asarray(mask)
    n = int(max(mask[mask != ignore_index].max(initial=0) + 1, 2))
    cmap = np.asarray(colormap, np.uint8) if colormap is not None else _default_colormap(n)
    if len(cmap) < n:
        cmap = _default_colormap(n)
    out = cmap[np.clip(np.where(mask == ignore_index, 0, mask), 0, len(cmap) - 1)]
    out[mask == ignore_index] = 255
    return out


def prediction_grid(images, masks, preds, colormap=None, ignore_index=255,
                    min_size: int = 128) -> np.ndarray:
    """uint8 grid, one row per example: image | ground truth | prediction.

    images uint8 [N,H,W,3]; masks, preds int [N,h,w] (h,w <= H,W: centred).
    Small images are enlarged (nearest) to at least ``min_size`` pixels high.
    """
    rows = []
    for img, m, p in zip(images, masks, preds):
        H, W = img.shape[:2]
        tiles = [img if img.shape[-1] == 3 else np.repeat(img[..., :1], 3, -1)]
        for lab in (m, p):
            canvas = np.full((H, W, 3), 255, np.uint8)
            h, w = lab.shape
            t, l = (H - h) // 2, (W - w) // 2
            canvas[t:t + h, l:l + w] = colorize(lab, colormap, ignore_index)
            tiles.append(canvas)
        sep = np.full((H, 2, 3), 255, np.uint8)
        rows.append(np.concatenate([tiles[0], sep, tiles[1], sep, tiles[2]], axis=1))
    grid = np.concatenate(rows, axis=0)
    scale = max(1, -(-min_size // images.shape[1]))
    return np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)


class Writer:
    def __init__(self, workdir: str, enabled: bool = True):
        self.workdir = workdir
        self.enabled = enabled
        self._tb = None
        if enabled:
            os.makedirs(workdir, exist_ok=True)
            self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")

    def _summary(self):
        if self._tb is None:
            from fluxseg.data._tf import tf  # TF kept off the accelerators
            self._tb = tf.summary.create_file_writer(os.path.join(self.workdir, "tensorboard"))
        return self._tb

    def scalars(self, step: int, split: str, values: dict) -> None:
        if not self.enabled:
            return
        clean = {k: _py(v) for k, v in values.items()}
        self._jsonl.write(json.dumps({"step": int(step), "split": split, **clean}) + "\n")
        self._jsonl.flush()
        from fluxseg.data._tf import tf
        with self._summary().as_default(step=int(step)):
            for k, v in clean.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    tf.summary.write(f"{split}/{k}", tf.constant(float(v), tf.float32),
                                     metadata=_metadata("scalars"))

    def image(self, step: int, name: str, grid: np.ndarray) -> Optional[str]:
        """Writes a uint8 [H,W,3] picture to TensorBoard and as a PNG; returns its path."""
        if not self.enabled:
            return None
        from PIL import Image
        from fluxseg.data._tf import tf
        path = os.path.join(self.workdir, f"{name}_{int(step)}.png")
        Image.fromarray(grid).save(path)
        h, w = grid.shape[:2]
        png = tf.io.encode_png(grid)
        with self._summary().as_default(step=int(step)):
            tf.summary.write(name, tf.stack([tf.as_string(w), tf.as_string(h), png]),
                             metadata=_metadata("images"))
        return path

    def flush(self) -> None:
        if self.enabled and self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self.enabled:
            self.flush()
            self._jsonl.close()


def _metadata(plugin: str) -> bytes:
    # tf.summary.write with TensorBoard's plugin tag: what tf.summary.scalar /
    # image produce, without needing the tensorboard package installed.
    from tensorflow.core.framework import summary_pb2
    md = summary_pb2.SummaryMetadata()
    md.plugin_data.plugin_name = plugin
    return md.SerializeToString()


def _py(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, np.ndarray) and v.ndim == 0:
        return v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no NaN/Inf
    return v
