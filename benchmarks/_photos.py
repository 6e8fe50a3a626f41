"""Benchmark folders cut from photographs, so that JPEG decoding costs what it costs on real data.

The source pictures are the colour photographs bundled with scikit-image
(astronaut, chelsea, coffee, rocket, hubble_deep_field, immunohistochemistry,
retina). Each benchmark image is a random crop of one of them, resized
(Lanczos) to a size drawn from the target dataset's distribution, with
photographic grain added, saved as a baseline JPEG (quality 92, 4:2:0 chroma,
libjpeg's defaults otherwise):

* the grain (Gaussian, sigma 12 on luminance, 6 per channel) stands in for
  the sensor noise and texture of Flickr photographs. Without it these clean
  pictures compress to 0.2-0.35 bytes a pixel at quality 90, a third of
  ImageNet's (~110 KB for ~470x390 pixels: 0.6 B/px), and the entropy
  decoder, part of every JPEG decode, would have too little to do;
* ImageNet-like: aspect ratios 4:3 (3 in 8), 3:4, 1:1, 3:2, 2:3, 16:9 and
  the shorter side drawn uniformly from 300-480 px (mean about 420x510,
  a little above ILSVRC-2012's ~390x470);
* VOC-like: 500x375, 375x500, 500x333, 500x281 and 333x500 (VOC's common
  shapes; its images are at most 500 px a side), with palette-PNG masks of the
  21 VOC classes: a few SLIC superpixel regions of the picture become objects
  of random classes on background 0, with a 5 px band of 255 (void) along
  object boundaries, as VOC's masks have.

style='clean' writes the issue's own data instead (its first measurement):
the same crops at 375x500, no grain, quality 90 (about 0.2-0.35 bytes a
pixel), VOC masks as above. Their random-resized-crop boxes decode 1.8x as
fast as the photograph-like files' (benchmarks/README.md), so what a pipeline
costs besides the decode weighs more.

The files are a pure function of (kind, count, seed, style): they are written once
into a cache folder ($FLUXSEG_BENCH_DATA, default ~/.cache/fluxseg/bench-data)
and reused; nothing here is committed. `describe(root)` measures what was
written (mean size in pixels and KiB), which the benchmark prints.
"""
from __future__ import annotations

import io
import os
import shutil

import numpy as np
from PIL import Image

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
          "immunohistochemistry", "retina")
QUALITY = 92
GRAIN = 12.0
VERSION = 1  # bump when the recipe above changes: a new cache folder
IMAGENET_ASPECTS = (4 / 3, 4 / 3, 4 / 3, 3 / 4, 1.0, 3 / 2, 2 / 3, 16 / 9)
VOC_SIZES = ((375, 500), (375, 500), (375, 500), (500, 375), (333, 500), (281, 500), (500, 333))


def cache_root() -> str:
    return os.environ.get("FLUXSEG_BENCH_DATA") or os.path.expanduser("~/.cache/fluxseg/bench-data")


def _sources() -> list[np.ndarray]:
    import skimage.data
    return [getattr(skimage.data, name)() for name in PHOTOS]


CLEAN_QUALITY, CLEAN_SIZE = 90, (375, 500)  # style='clean': the first measurement


def _picture(rng: np.random.Generator, sources, size, grain: float = GRAIN) -> np.ndarray:
    """uint8 [h, w, 3]: a crop of a random source with the (h, w) aspect, resized, with grain."""
    h, w = size
    src = sources[rng.integers(len(sources))]
    sh, sw = src.shape[:2]
    # The largest crop of this aspect that fits, then 55-100% of it: a
    # downscale in most cases (detail per pixel as in camera pictures).
    fit = min(sh / h, sw / w)
    k = fit * rng.uniform(0.55, 1.0)
    ch, cw = max(int(h * k), 8), max(int(w * k), 8)
    y, x = rng.integers(0, sh - ch + 1), rng.integers(0, sw - cw + 1)
    crop = Image.fromarray(src[y:y + ch, x:x + cw]).resize((w, h), Image.LANCZOS)
    if rng.random() < 0.5:
        crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
    pixels = np.asarray(crop, np.float32)
    if grain:
        pixels = pixels + rng.normal(0, grain, (h, w, 1)) + rng.normal(0, grain / 2, (h, w, 3))
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def _jpeg(path: str, pixels: np.ndarray, quality: int = QUALITY) -> None:
    Image.fromarray(pixels).save(path, format="JPEG", quality=quality)


def _imagenet_size(rng) -> tuple[int, int]:
    aspect = IMAGENET_ASPECTS[rng.integers(len(IMAGENET_ASPECTS))]  # width / height
    short = int(rng.uniform(300, 480))
    return (short, int(short * aspect)) if aspect >= 1 else (int(short / aspect), short)


def _voc_mask(rng, pixels: np.ndarray) -> np.ndarray:
    """uint8 [h, w] VOC class ids: superpixel regions as objects, 255 along their borders."""
    from scipy import ndimage
    from skimage.segmentation import find_boundaries, slic

    h, w = pixels.shape[:2]
    small = np.asarray(Image.fromarray(pixels).resize((w // 4, h // 4), Image.BILINEAR))
    regions = slic(small, n_segments=int(rng.integers(6, 14)), compactness=10, start_label=0)
    regions = np.asarray(Image.fromarray(regions.astype(np.uint8)).resize((w, h), Image.NEAREST))
    n = int(regions.max()) + 1
    # About a third of the regions become objects of 1-3 classes; the rest is background.
    classes = rng.integers(1, 21, size=3)
    ids = np.where(rng.random(n) < 0.35, classes[rng.integers(0, 3, n)], 0).astype(np.uint8)
    mask = ids[regions]
    edges = find_boundaries(mask, mode="thick") & ndimage.binary_dilation(mask > 0, iterations=3)
    return np.where(ndimage.binary_dilation(edges, iterations=2), 255, mask).astype(np.uint8)


def _write(root: str, kind: str, n: int, seed: int, clean: bool) -> None:
    from fluxseg.data.voc.classes import voc_colormap
    rng = np.random.default_rng([seed, VERSION, len(kind)])
    sources = _sources()
    palette = voc_colormap().reshape(-1).tolist()
    grain, quality = (0.0, CLEAN_QUALITY) if clean else (GRAIN, QUALITY)
    for i in range(n):
        if kind == "imagenet":
            cls = f"class{i % 4}"
            os.makedirs(os.path.join(root, cls), exist_ok=True)
            size = CLEAN_SIZE if clean else _imagenet_size(rng)
            _jpeg(os.path.join(root, cls, f"{i:05d}.jpg"), _picture(rng, sources, size, grain),
                  quality)
        else:
            os.makedirs(os.path.join(root, "images"), exist_ok=True)
            os.makedirs(os.path.join(root, "masks"), exist_ok=True)
            size = CLEAN_SIZE if clean else VOC_SIZES[rng.integers(len(VOC_SIZES))]
            pixels = _picture(rng, sources, size, grain)
            _jpeg(os.path.join(root, "images", f"{i:05d}.jpg"), pixels, quality)
            mask = Image.fromarray(_voc_mask(rng, pixels), mode="P")
            mask.putpalette(palette)
            mask.save(os.path.join(root, "masks", f"{i:05d}.png"))


STYLES = ("photo", "clean")


def folder(kind: str, n: int, seed: int = 0, style: str = "photo") -> str:
    """The path of a benchmark folder ('imagenet': ROOT/<class>/*.jpg, 4 classes;
    'voc': ROOT/images/*.jpg + ROOT/masks/*.png), written on first use."""
    if kind not in ("imagenet", "voc"):
        raise ValueError(f"kind={kind!r}; expected 'imagenet' or 'voc'")
    if style not in STYLES:
        raise ValueError(f"style={style!r}; expected one of {STYLES}")
    tag = "" if style == "photo" else f"-{style}"
    root = os.path.join(cache_root(), f"{kind}{tag}-n{n}-s{seed}-v{VERSION}")
    if not os.path.exists(os.path.join(root, "DONE")):
        tmp = root + ".partial"
        shutil.rmtree(tmp, ignore_errors=True)
        _write(tmp, kind, n, seed, clean=style == "clean")
        shutil.rmtree(root, ignore_errors=True)
        os.rename(tmp, root)
        open(os.path.join(root, "DONE"), "w").close()
    return root


def describe(root: str) -> dict:
    """Measured: image count, mean (h, w), mean JPEG KiB and bytes per pixel (and mask KiB)."""
    jpgs, pngs = [], []
    for d, _, files in os.walk(root):
        jpgs += [os.path.join(d, f) for f in files if f.endswith(".jpg")]
        pngs += [os.path.join(d, f) for f in files if f.endswith(".png")]
    sizes = np.array([Image.open(p).size[::-1] for p in jpgs], np.float64)
    nbytes = np.array([os.path.getsize(p) for p in jpgs], np.float64)
    out = {"images": len(jpgs), "mean_hw": [round(v) for v in sizes.mean(0)],
           "mean_kib": round(nbytes.mean() / 1024, 1),
           "bytes_per_pixel": round(float((nbytes / sizes.prod(1)).mean()), 3)}
    if pngs:
        out["mean_mask_kib"] = round(float(np.mean([os.path.getsize(p) for p in pngs])) / 1024, 2)
    return out


def _main():
    import json
    import sys
    for kind in sys.argv[1:] or ["imagenet", "voc"]:
        print(kind, json.dumps(describe(folder(kind, 64))))


if __name__ == "__main__":
    _main()
