"""Pictures of masks: colour maps, overlays, titled panel grids with a class legend.

One drawing path for `fluxseg predict` (mask, overlay), `fluxseg eval` (the
confusion matrix of a classifier) and the training-time prediction pictures
(image | truth | prediction), so they all show the same colours and legend.
All images are uint8 RGB [H, W, 3].
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

TITLE_PX = 13
WHITE = (255, 255, 255)
INK = (20, 20, 20)


def default_colormap(n: int) -> np.ndarray:
    """PASCAL-style bit-interleaved palette: distinct colours for any n."""
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


def _cmap(colormap, n: int) -> np.ndarray:
    cmap = np.asarray(colormap, np.uint8) if colormap is not None else default_colormap(n)
    return cmap if len(cmap) >= n else default_colormap(n)


def _ignored(mask: np.ndarray, ignore_index: Optional[int]) -> np.ndarray:
    """bool [H,W]: the pixels marked unlabelled (none when ``ignore_index`` is None: a prediction)."""
    mask = np.asarray(mask)
    return np.zeros(mask.shape, bool) if ignore_index is None else mask == ignore_index


def colorize(mask: np.ndarray, colormap: Optional[np.ndarray], ignore_index: Optional[int] = None) -> np.ndarray:
    """int [H,W] class ids -> uint8 [H,W,3]; pixels equal to ``ignore_index`` white."""
    mask = np.asarray(mask)
    ignored = _ignored(mask, ignore_index)
    n = int(max(mask[~ignored].max(initial=0) + 1, 2))
    cmap = _cmap(colormap, n)
    out = cmap[np.clip(np.where(ignored, 0, mask), 0, len(cmap) - 1)]
    out[ignored] = 255
    return out


def overlay(image: np.ndarray, mask: np.ndarray, colormap=None, ignore_index: Optional[int] = None,
            alpha: float = 0.5) -> np.ndarray:
    """The image with the colour mask blended in (alpha = mask weight); ignored pixels untouched."""
    image = _rgb(image).astype(np.float32)
    colours = colorize(mask, colormap, ignore_index).astype(np.float32)
    keep = _ignored(mask, ignore_index)[..., None]
    out = np.where(keep, image, (1 - alpha) * image + alpha * colours)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def legend_entries(masks: Sequence[np.ndarray], class_names=None, colormap=None,
                   ignore_index: Optional[int] = None, predictions: Sequence[np.ndarray] = ()
                   ) -> list[tuple[str, tuple]]:
    """(name, colour) for every class present in ``masks`` (whose ``ignore_index``
    pixels are unlabelled) and ``predictions`` (none unlabelled), in class order."""
    present = set()
    for m, ignore in [*((m, ignore_index) for m in masks), *((p, None) for p in predictions)]:
        m = np.asarray(m)
        present.update(int(v) for v in np.unique(m[~_ignored(m, ignore)]))
    cmap = _cmap(colormap, max(present, default=0) + 1 if present else 2)
    names = list(class_names) if class_names is not None else []
    entries = [(names[k] if k < len(names) else str(k), tuple(int(c) for c in cmap[min(k, len(cmap) - 1)]))
               for k in sorted(present)]
    if any(_ignored(m, ignore_index).any() for m in masks):
        entries.append(("ignored", WHITE))
    return entries


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.dtype != np.uint8:
        image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    return image if image.shape[-1] == 3 else np.repeat(image[..., :1], 3, -1)


def _font(size: int):
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def _legend(entries, width: int, font_px: int) -> np.ndarray:
    """Rows of colour swatch + class name, wrapped to ``width``."""
    from PIL import Image, ImageDraw
    font = _font(font_px)
    box, gap, pad = font_px, 6, 4
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    placed, x, y = [], pad, pad
    for name, colour in entries:
        w = box + 3 + int(probe.textlength(name, font=font)) + gap
        if x + w > width and x > pad:
            x, y = pad, y + box + pad
        placed.append((x, y, name, colour))
        x += w
    canvas = Image.new("RGB", (width, y + box + pad), WHITE)
    draw = ImageDraw.Draw(canvas)
    for x, y, name, colour in placed:
        draw.rectangle([x, y, x + box - 1, y + box - 1], fill=colour, outline=INK)
        draw.text((x + box + 3, y - 1), name, fill=INK, font=font)
    return np.asarray(canvas)


def _title(text: str, width: int, font_px: int) -> np.ndarray:
    from PIL import Image, ImageDraw
    font = _font(font_px)
    canvas = Image.new("RGB", (width, font_px + 6), WHITE)
    draw = ImageDraw.Draw(canvas)
    tw = draw.textlength(text, font=font)
    draw.text((max((width - tw) / 2, 0), 2), text, fill=INK, font=font)
    return np.asarray(canvas)


def panel_grid(rows: Sequence[Sequence[np.ndarray]], titles: Sequence[str],
               legend: Sequence[tuple] = (), min_height: int = 128, sep: int = 4) -> np.ndarray:
    """Panels in rows under column titles, then the legend; small panels enlarged (nearest).

    rows: each a list of uint8 images (all of one row the same height);
    legend: (name, (r, g, b)) entries.
    """
    rows = [[_rgb(p) for p in row] for row in rows]
    scale = max(1, -(-min_height // max(1, min(r[0].shape[0] for r in rows))))
    rows = [[np.repeat(np.repeat(p, scale, 0), scale, 1) for p in row] for row in rows]
    widths = [max(row[c].shape[1] for row in rows) for c in range(len(titles))]
    total_w = sum(widths) + sep * (len(widths) + 1)
    font_px = TITLE_PX
    parts = []
    header = [np.full((font_px + 6, sep, 3), 255, np.uint8)]
    for title, w in zip(titles, widths):
        header += [_title(title, w, font_px), np.full((font_px + 6, sep, 3), 255, np.uint8)]
    parts.append(np.concatenate(header, 1))
    for row in rows:
        h = max(p.shape[0] for p in row)
        line = [np.full((h, sep, 3), 255, np.uint8)]
        for p, w in zip(row, widths):
            cell = np.full((h, w, 3), 255, np.uint8)
            cell[:p.shape[0], :p.shape[1]] = p
            line += [cell, np.full((h, sep, 3), 255, np.uint8)]
        parts += [np.concatenate(line, 1), np.full((sep, total_w, 3), 255, np.uint8)]
    if legend:
        # Never narrower than the widest legend entry: names are not cut off.
        key = _legend(legend, max(total_w, _widest(legend, font_px)), font_px)
        width = key.shape[1]
        parts = [np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0)), constant_values=255)
                 for p in parts] + [key]
    return np.concatenate(parts, 0)


def _widest(entries, font_px: int) -> int:
    from PIL import Image, ImageDraw
    font, probe = _font(font_px), ImageDraw.Draw(Image.new("RGB", (1, 1)))
    return max(font_px + 3 + int(probe.textlength(name, font=font)) + 6 + 8 for name, _ in entries)


def prediction_grid(images, masks, preds, colormap=None, ignore_index: Optional[int] = None,
                    class_names=None, min_size: int = 128) -> np.ndarray:
    """One row per example: image | truth | prediction, with a legend of the classes shown.

    images uint8 [N,H,W,3]; masks, preds int [N,h,w] (h,w <= H,W: centred,
    the rest white, as for the unpadded U-Net's smaller output); truth pixels
    equal to ``ignore_index`` are white.
    """
    rows = []
    for img, m, p in zip(images, masks, preds):
        H, W = img.shape[:2]
        row = [img]
        for lab in (m, p):
            canvas = np.full((H, W, 3), 255, np.uint8)
            h, w = lab.shape
            t, l = (H - h) // 2, (W - w) // 2
            canvas[t:t + h, l:l + w] = colorize(lab, colormap, ignore_index if lab is m else None)
            row.append(canvas)
        rows.append(row)
    legend = legend_entries(masks, class_names, colormap, ignore_index, predictions=preds)
    return panel_grid(rows, ("image", "truth", "prediction"), legend, min_height=min_size)


def confusion_picture(cm: np.ndarray, class_names: Sequence[str], path: str) -> str:
    """Row-normalised confusion matrix (rows = true class) as a PNG, with counts' shares."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(cm, np.float64)
    rows = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    n = len(cm)
    fig, ax = plt.subplots(figsize=(2 + 0.5 * n, 1.6 + 0.5 * n), dpi=100)
    im = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix (row-normalised)")
    if n <= 25:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{rows[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if rows[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
