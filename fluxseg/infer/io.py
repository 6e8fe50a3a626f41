"""Images for prediction: reading files and checking arrays, with errors that say what to do.

Every image becomes float32 [H, W, C] on the 0..255 scale, C the model's
input channels. Conversions that are safe are done and documented here:

  grayscale (L, or [H, W]) for an RGB model   the channel is repeated (what the
                                              training pipeline does too)
  RGB for a 1-channel model                   ITU-R 601 luma (PIL's 'L')
  palette PNG ('P')                           expanded to RGB
  RGBA / LA with an opaque alpha              alpha dropped
  16-bit PNG (I;16) or uint16 array           divided by 257 (65535 -> 255)
  float array with max <= 1                   taken as [0, 1] and scaled by 255
                                              (the skimage / matplotlib
                                              convention); a float array with
                                              max > 1 is taken as [0, 255]

Everything else raises BadImageError naming the file (or "array") and what
was expected: files PIL cannot identify, truncated data, transparency that
would have to be invented away, empty images, NaN, values outside the range.
"""
from __future__ import annotations

import numpy as np

# Files `fluxseg predict` picks up from a directory.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


class BadImageError(ValueError):
    """An input that cannot be predicted; the message names it and what was expected."""


def read_image(path: str, channels: int = 3) -> np.ndarray:
    """float32 [H, W, channels] (0..255) from an image file; BadImageError if unusable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()  # decode now: a truncated file fails here, not later
            mode = img.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img, np.float64)
                if arr.max(initial=0) > 65535 or arr.min(initial=0) < 0:
                    raise BadImageError(f"{path}: {mode} image with values outside 0..65535; "
                                        "expected 8- or 16-bit samples")
                return check_array(arr / 257.0, path, channels, kind="16-bit")
            if mode == "P":
                img = img.convert("RGBA" if "transparency" in img.info else "RGB")
            elif mode not in ("L", "LA", "RGB", "RGBA"):
                img = img.convert("RGB")  # CMYK, YCbCr, 1-bit: PIL's standard conversion
            arr = np.asarray(img)
    except FileNotFoundError:
        raise BadImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadImageError(f"{path}: is a directory, expected an image file") from None
    except UnidentifiedImageError:
        raise BadImageError(f"{path}: not an image PIL can read; expected a PNG, JPEG, BMP, "
                            "GIF, TIFF or WebP file") from None
    except (OSError, SyntaxError, ValueError) as e:
        if isinstance(e, BadImageError):
            raise
        raise BadImageError(f"{path}: the image data is truncated or corrupt ({e}); "
                            "expected a complete image file") from None
    return check_array(arr, path, channels)


def check_array(image, name: str = "array", channels: int = 3, *, kind: str | None = None) -> np.ndarray:
    """float32 [H, W, channels] (0..255) from an array [H, W] or [H, W, 1|2|3|4]."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise BadImageError(f"{name}: expected one image [H, W] or [H, W, C], got shape {arr.shape}")
    h, w, c = arr.shape
    if h == 0 or w == 0:
        raise BadImageError(f"{name}: empty image of shape {arr.shape}; expected H, W >= 1")
    if c not in (1, 2, 3, 4):
        raise BadImageError(f"{name}: {c} channels; expected 1 (gray), 3 (RGB) or an alpha "
                            "channel on top of those")
    arr = _scaled(arr, name, kind)
    if c in (2, 4):  # alpha: drop it only if it hides nothing
        if not np.all(arr[..., -1] >= 254.5):
            raise BadImageError(f"{name}: has transparent pixels (an alpha channel below 255); "
                                "expected an opaque image: flatten it onto a background first")
        arr = arr[..., :-1]
    c = arr.shape[-1]
    if c == channels:
        return arr
    if c == 1 and channels == 3:
        return np.repeat(arr, 3, axis=-1)
    if c == 3 and channels == 1:
        return (arr @ np.array([299, 587, 114], np.float32) / 1000.0)[..., None]
    raise BadImageError(f"{name}: {c} channels; the model expects {channels}")


def _scaled(arr: np.ndarray, name: str, kind: str | None) -> np.ndarray:
    if arr.dtype == np.bool_:
        raise BadImageError(f"{name}: a boolean array; expected an image (uint8, or float "
                            "in [0, 1] or [0, 255])")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32)
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 257.0
    if np.issubdtype(arr.dtype, np.integer):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise BadImageError(f"{name}: {arr.dtype} values in [{lo}, {hi}]; expected 0..255 "
                                "(or a uint16 array for 16-bit images)")
        return arr.astype(np.float32)
    if not np.issubdtype(arr.dtype, np.floating):
        raise BadImageError(f"{name}: dtype {arr.dtype}; expected uint8, uint16 or float")
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise BadImageError(f"{name}: contains NaN or Inf; expected finite pixel values")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0 or hi > 255.0 + 1e-3:
        raise BadImageError(f"{name}: float values in [{lo:g}, {hi:g}]; expected [0, 1] or [0, 255]")
    if kind is None and hi <= 1.0:
        return arr * 255.0  # [0, 1] convention (skimage, matplotlib's PNG reader)
    return np.minimum(arr, 255.0)
