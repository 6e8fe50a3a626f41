"""Heatmaps over images: the jet colormap in RGB order, and the overlay (DLwP listing 5.44)."""
from __future__ import annotations

import numpy as np

# MATLAB/matplotlib 'jet' as piecewise-linear (position, value) anchors per
# channel: 0 is dark blue (0, 0, 0.5), 1 dark red (0.5, 0, 0). OpenCV's
# COLORMAP_JET is the same map in BGR order, the usual source of swapped
# colours in Grad-CAM overlays.
_JET = {
    "r": ((0.0, 0.0), (0.35, 0.0), (0.66, 1.0), (0.89, 1.0), (1.0, 0.5)),
    "g": ((0.0, 0.0), (0.125, 0.0), (0.375, 1.0), (0.64, 1.0), (0.91, 0.0), (1.0, 0.0)),
    "b": ((0.0, 0.5), (0.11, 1.0), (0.34, 1.0), (0.65, 0.0), (1.0, 0.0)),
}


def jet(values) -> np.ndarray:
    """Values in [0, 1] (clipped), any shape -> float RGB in [0, 1] with a trailing axis of 3."""
    v = np.clip(np.asarray(values, np.float64), 0.0, 1.0)
    return np.stack([np.interp(v, *zip(*_JET[ch])) for ch in "rgb"], axis=-1)


def _resize(cam: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if cam.shape == tuple(hw):
        return cam
    import jax

    return np.asarray(jax.image.resize(cam.astype(np.float32), hw, "bilinear"))


def overlay(image, cam, alpha: float = 0.4) -> np.ndarray:
    """RGB image [H, W, 3] (uint8 or floats in [0, 255]) + map [h, w] in [0, 1] -> uint8 RGB [H, W, 3].

    The map is resized bilinearly to the image when their sizes differ,
    coloured with `jet` and blended as alpha * heat + (1 - alpha) * image.
    (The book adds 0.4 * heat to the full image, which saturates bright
    regions; the convex blend keeps both readable.)
    """
    image = np.asarray(image)
    cam = np.asarray(cam, np.float64)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an RGB image [H, W, 3], got shape {image.shape}")
    if cam.ndim != 2:
        raise ValueError(f"expected one map [h, w] (take one image of the batch), got shape {cam.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if not np.all(np.isfinite(cam)):
        raise ValueError("the map has NaN or inf values")
    heat = jet(_resize(cam, image.shape[:2])) * 255.0
    out = alpha * heat + (1.0 - alpha) * image.astype(np.float64)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def colorize(gray, cmap: str = "viridis") -> np.ndarray:
    """uint8 [H, W] -> uint8 RGB [H, W, 3] through a matplotlib colormap (how the book's plots look)."""
    from matplotlib import colormaps

    lut = (colormaps[cmap](np.arange(256))[:, :3] * 255).round().astype(np.uint8)
    return lut[np.asarray(gray, np.uint8)]
