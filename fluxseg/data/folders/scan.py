"""Reading a user's image folder: listing, fingerprint, decode checks.

Every check names the file: a folder of images is the data most likely to
hold a broken download, a CMYK JPEG or a 16-bit PNG, and each of those must
be fixed or converted, never silently mislabelled.
"""
from __future__ import annotations

import hashlib
import io
import os

import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
VALIDATION_NAMES = ("validation", "valid", "val")


def list_images(directory) -> list[str]:
    """Sorted paths of the image files directly in `directory` (hidden files skipped)."""
    return sorted(os.path.join(directory, f) for f in os.listdir(directory)
                  if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS))


def fingerprint(paths, *extra) -> str:
    """A short hash of names, sizes and modification times (and options): a new
    builder config, hence a fresh tfds cache, whenever the folder changes."""
    h = hashlib.sha1(repr(extra).encode())
    for p in sorted(paths):
        st = os.stat(p)
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:12]


def in_validation(path: str, fraction: float) -> bool:
    """Deterministic split by a hash of the file name: adding files moves no others."""
    digest = hashlib.sha1(os.path.basename(path).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64 < fraction


def header_size(path) -> tuple[int, int]:
    """(H, W) from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as im:
            return im.size[1], im.size[0]
    except Exception as e:  # PIL raises several types for unreadable files
        raise ValueError(f"{path}: not a readable image ({e}); delete or replace it") from None


def check_min_size(paths, crop, max_scale: float = 1.0) -> None:
    """Raises naming every image smaller than the crop even at the largest scale."""
    small = [(p, s) for p in paths for s in [header_size(p)]
             if s[0] * max_scale < crop[0] or s[1] * max_scale < crop[1]]
    if small:
        listed = "; ".join(f"{p} is {h}x{w}" for p, (h, w) in small[:5])
        raise ValueError(
            f"{len(small)} image(s) are smaller than data.crop_size={tuple(crop)} (x{max_scale:g} "
            f"max scale): {listed}{' ...' if len(small) > 5 else ''}. Their crops would be mostly "
            "padding: lower data.crop_size, raise data.scale_range, or remove them.")


def read_image(path, channels: int) -> tuple[np.ndarray | bytes, str]:
    """(pixels uint8 [H, W, channels] or the file's own bytes, mode) with checks.

    RGB JPEG/PNG files are passed through as bytes (no re-encoding); other
    8-bit modes are converted (CMYK and palette -> RGB, alpha dropped, grey ->
    RGB when 3 channels are asked). 16-bit and float images are refused: their
    scale (12-bit sensor? full 16-bit?) is not knowable from the file.
    """
    data = open(path, "rb").read()
    try:
        im = Image.open(io.BytesIO(data))
        im.load()
    except Exception as e:
        raise ValueError(f"{path}: cannot decode the image ({e}); delete or replace it") from None
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F") or im.mode.startswith("I;"):
        raise ValueError(
            f"{path}: {im.mode} image (16-bit or float); fluxseg reads 8-bit images. Convert "
            "it to 8 bits with the scaling your data needs (e.g. PIL or ImageMagick "
            "`-depth 8`).")
    if channels == 3 and im.mode == "RGB" and im.format in ("JPEG", "PNG"):
        return data, im.mode
    target = "RGB" if channels == 3 else "L"
    return np.asarray(im.convert(target), np.uint8).reshape(im.size[1], im.size[0], channels), \
        im.mode
