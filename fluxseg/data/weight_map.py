"""The U-Net border weight map (Ronneberger et al. 2015, eq. 2).

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))

w_c balances the class frequencies; d1 and d2 are the distances to the
border of the nearest and the second nearest cell. The paper uses w0 = 10
and sigma ~ 5 px; the term makes the network learn the thin background
gaps between touching cells. The weights are computed once per ground-truth
mask, as in the paper, and deformed with it.

Choices the paper leaves open, fixed here:
  * cells are the 4-connected components of the foreground (every class but
    `background`), so ISBI's cell interiors separated by membrane are cells;
  * the border term is added on background pixels only (the gaps; inside a
    cell d1 = 0 and the term would only re-weight the cell's own rim);
  * w_c(x) = N / (K * n_c) for the class c of x (N valid pixels, K classes
    present, n_c pixels of class c): every class gets the same total weight;
  * pixels equal to ignore_index get weight 0 (the loss skips them anyway).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage


def class_balance(mask: np.ndarray, ignore_index: int) -> np.ndarray:
    """w_c: float32 [H, W], N / (K n_c) per valid pixel, 0 on ignored pixels."""
    valid = mask != ignore_index
    classes, counts = np.unique(mask[valid], return_counts=True)
    w = np.zeros(mask.shape, np.float32)
    for c, n in zip(classes, counts):
        w[mask == c] = valid.sum() / (len(classes) * n)
    return w


def nearest_two(cells: np.ndarray, num_cells: int, reach: float):
    """(d1, d2) float [H, W]: distances to the nearest and second-nearest cell.

    Each cell's Euclidean distance transform is taken in its bounding box
    grown by `reach` pixels (distances beyond it count as infinite), which
    keeps the cost proportional to the cells' size, not their number times
    the image. Inside the window the distances are exact: the window holds
    the whole cell.
    """
    h, w = cells.shape
    d1 = np.full(cells.shape, np.inf)
    d2 = np.full(cells.shape, np.inf)
    r = int(math.ceil(reach))
    for i, box in enumerate(ndimage.find_objects(cells), start=1):
        if box is None:
            continue
        ys = slice(max(box[0].start - r, 0), min(box[0].stop + r, h))
        xs = slice(max(box[1].start - r, 0), min(box[1].stop + r, w))
        d = ndimage.distance_transform_edt(cells[ys, xs] != i)
        a, b = d1[ys, xs], d2[ys, xs]
        d2[ys, xs] = np.where(d < a, a, np.minimum(b, d))
        d1[ys, xs] = np.minimum(a, d)
    return d1, d2


def border_weights(mask: np.ndarray, *, w0: float, sigma: float, ignore_index: int,
                   background: int = 0) -> np.ndarray:
    """float32 [H, W] weight map w(x) of an integer mask [H, W] (or [H, W, 1])."""
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask[..., 0]
    if sigma <= 0:
        raise ValueError(f"border weight sigma={sigma} must be > 0 pixels")
    w = class_balance(mask, ignore_index)
    foreground = (mask != background) & (mask != ignore_index)
    cells, n = ndimage.label(foreground)
    if n >= 2 and w0 > 0:
        # exp(-(6 sigma)^2 / 2 sigma^2) = e^-18: farther cells add nothing measurable.
        d1, d2 = nearest_two(cells, n, reach=6.0 * sigma)
        term = w0 * np.exp(-((d1 + d2) ** 2) / (2.0 * sigma ** 2))
        w = w + np.where(mask == background, term, 0.0).astype(np.float32)
    return w.astype(np.float32)
