"""Figures for the CLI and the experiment scripts: captions, pooling panels (matplotlib, Agg)."""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np

from fluxseg.viz import pooling


def titled(image: np.ndarray, lines: Union[str, Sequence[str]]) -> np.ndarray:
    """uint8 RGB image with caption lines written in black on a white band above it."""
    from PIL import Image, ImageDraw, ImageFont

    lines = [lines] if isinstance(lines, str) else list(lines)
    img = Image.fromarray(np.asarray(image, np.uint8))
    try:
        font = ImageFont.load_default(size=12)  # Pillow >= 10.1: a scalable font with proper spacing
    except TypeError:
        font = ImageFont.load_default()
    line_h = 15
    band = line_h * len(lines) + 6
    width = max(img.width, max(int(ImageDraw.Draw(img).textlength(t, font=font)) + 8 for t in lines))
    canvas = Image.new("RGB", (width, img.height + band), "white")
    canvas.paste(img, (0, band))
    draw = ImageDraw.Draw(canvas)
    for k, t in enumerate(lines):
        draw.text((4, 3 + k * line_h), t, fill="black", font=font)
    return np.asarray(canvas)


def enlarge(image: np.ndarray, tile: int, min_tile: int = 64) -> np.ndarray:
    """Nearest-neighbour enlargement so that tiles of `tile` pixels show at >= `min_tile` (small deep maps)."""
    k = max(1, -(-min_tile // max(tile, 1)))
    return np.repeat(np.repeat(image, k, axis=0), k, axis=1)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def shift_figure(path: str, seed: int = 0, times: int = 4) -> dict:
    """A disk and a randomly shifted copy through `times` 2x2 max poolings (row per image)."""
    plt = _plt()
    demo = pooling.shift_demo(seed=seed, times=times)
    fig, axes = plt.subplots(2, times + 1, figsize=(2.3 * (times + 1), 5.8))
    for row, key in enumerate(("original", "shifted")):
        for k, m in enumerate(demo[key]):
            ax = axes[row, k]
            ax.imshow(m, cmap="magma", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            label = "input" if k == 0 else f"{k}x max pool"
            ax.set_title(f"{label} {m.shape[0]}x{m.shape[1]}" + (f"\n{demo['differs'][k]} cells differ" if row else ""), fontsize=8)
        axes[row, 0].set_ylabel("original" if row == 0 else f"shifted {demo['shift']}", fontsize=9)
    fig.suptitle("Repeated 2x2 max pooling (tf.nn.pool SAME) erases a small shift", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(path)
    return demo


def gap_figure(loaded, images: np.ndarray, x: np.ndarray, names: Sequence[str], path: str, layer=None):
    """Each image next to its global-average-pooled backbone features (one bar per channel)."""
    plt = _plt()
    feats = np.asarray(pooling.gap_features(loaded.model, loaded.variables, x, layer))
    fig, axes = plt.subplots(len(images), 2, figsize=(11, 2.4 * len(images)), gridspec_kw={"width_ratios": [1, 4]}, squeeze=False)
    for i, (img, name) in enumerate(zip(images, names)):
        axes[i, 0].imshow(img)
        axes[i, 0].set_axis_off()
        axes[i, 0].set_title(name, fontsize=9)
        axes[i, 1].bar(np.arange(feats.shape[1]), feats[i], width=1.0, color="tab:blue")
        axes[i, 1].set_xlim(-0.5, feats.shape[1] - 0.5)
        axes[i, 1].set_ylabel("mean activation", fontsize=8)
    axes[-1, 1].set_xlabel(f"channel (of {feats.shape[1]})", fontsize=8)
    fig.suptitle(f"Global average pooled features, {loaded.name} ({loaded.note})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(path)
    return feats


def upsample_figure(image: np.ndarray, path: str):
    """An image and its 2x bilinear transposed-convolution upsampling, at their own pixel sizes."""
    plt = _plt()
    up = np.clip(pooling.bilinear_upsample2x(image.astype(np.float32)), 0, 255).astype(np.uint8)
    h, w = image.shape[:2]
    fig = plt.figure(figsize=(3 * w / 100 + 0.4, 2 * h / 100 + 0.6), dpi=100)
    ax1 = fig.add_axes([0.1 / (3 * w / 100 + 0.4), 0.05, w / 100 / (3 * w / 100 + 0.4), 0.5 * (2 * h / 100) / (2 * h / 100 + 0.6)])
    ax2 = fig.add_axes([(0.3 + w / 100) / (3 * w / 100 + 0.4), 0.05, 2 * w / 100 / (3 * w / 100 + 0.4), (2 * h / 100) / (2 * h / 100 + 0.6)])
    ax1.imshow(image), ax1.set_axis_off(), ax1.set_title(f"input {h}x{w}", fontsize=9)
    ax2.imshow(up), ax2.set_axis_off(), ax2.set_title(f"ConvTranspose k=4 s=2 p=1, bilinear kernel: {2 * h}x{2 * w}", fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(path)
    return up
