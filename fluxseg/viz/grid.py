"""Channel grids of a feature map and grids of image tiles (DLwP 1st ed. §5.4.1-5.4.2)."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


def standardize(channel: np.ndarray) -> np.ndarray:
    """One channel [h, w] -> uint8: (x - mean) / std * 64 + 128, clipped to [0, 255].

    The book divides by the standard deviation unguarded, which turns a
    constant (e.g. dead ReLU) channel into NaN; here it becomes a flat 128.
    """
    x = np.asarray(channel, np.float64)
    x = x - x.mean()
    std = x.std()
    if std > 0:
        x = x / std
    return np.clip(x * 64 + 128, 0, 255).astype(np.uint8)


def activation_grid(fmap, per_row: int = 16, margin: int = 0) -> np.ndarray:
    """A feature map [h, w, C] -> uint8 image of its channels, `per_row` tiles per row.

    Tile (r, c) — rows of h pixels, columns of w pixels, plus `margin` — shows
    channel r * per_row + c, standardised by `standardize`. Tiles past the
    last channel stay 0 (black).
    """
    fmap = np.asarray(fmap)
    if fmap.ndim == 4 and fmap.shape[0] == 1:
        fmap = fmap[0]
    if fmap.ndim != 3:
        raise ValueError(f"expected one feature map [h, w, C] (take one image of the batch), got shape {fmap.shape}")
    if per_row < 1:
        raise ValueError(f"per_row must be >= 1, got {per_row}")
    h, w, c = fmap.shape
    rows = -(-c // per_row)
    out = np.zeros((rows * h + (rows - 1) * margin, per_row * w + (per_row - 1) * margin), np.uint8)
    for k in range(c):
        r, col = divmod(k, per_row)
        top, left = r * (h + margin), col * (w + margin)
        out[top : top + h, left : left + w] = standardize(fmap[..., k])
    return out


def tile_grid(images: Sequence[np.ndarray], per_row: int = 8, margin: int = 5, crossed: Optional[Sequence[bool]] = None) -> np.ndarray:
    """Images [N, s, s, 3] uint8 -> one grid with `margin` black pixels between tiles (DLwP listing 5.39).

    Tile (r, c) is image r * per_row + c. `crossed[i]` draws tile i as black
    with a red cross: a filter that never activated has no pattern to show,
    and a grey noise tile would look like one.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected images [N, h, w, 3], got shape {images.shape}")
    n, h, w, _ = images.shape
    rows = -(-n // per_row)
    out = np.zeros((rows * h + (rows - 1) * margin, per_row * w + (per_row - 1) * margin, 3), np.uint8)
    for i in range(n):
        r, c = divmod(i, per_row)
        top, left = r * (h + margin), c * (w + margin)
        tile = images[i]
        if crossed is not None and crossed[i]:
            tile = _cross(h, w)
        out[top : top + h, left : left + w] = tile
    return out


def _cross(h: int, w: int) -> np.ndarray:
    tile = np.zeros((h, w, 3), np.uint8)
    t = np.linspace(0, 1, max(h, w) * 2)
    for thick in range(-1, 2):
        ys = np.clip((t * (h - 1)).round().astype(int) + thick, 0, h - 1)
        xs = (t * (w - 1)).round().astype(int)
        tile[ys, xs] = (200, 0, 0)
        tile[ys, w - 1 - xs] = (200, 0, 0)
    return tile
