"""Pooling: condense with max pooling; global average pooling (Kaggle "Computer Vision" lesson 3).

A runnable demo script, not a launch config. One command writes every figure:

    python experiments/s1_pooling.py --out figures/s1 [--weights keras|random]

(the same figures as `fluxseg viz pooling --model vgg16 --weights keras
IMAGE... --out DIR`, plus the detect/condense and random-map panels).

Data: scikit-image's sample photos (skimage.data.chelsea, coffee,
astronaut), shipped with the package; nothing is downloaded. ImageNet VGG16
weights are used when `fluxseg.weights.load('vgg16', 'keras')` finds them
offline; otherwise random weights, and the figure titles say so.

Expected:
  s1_detect_condense.png  a photo, its ReLU'd edge-filter response (detect) and
      that map after one 2x2 max pool (condense): half the size, the same
      edges, a larger share of non-zero pixels.
  s1_shift.png            a disk and a copy shifted by a random (dy, dx) of at
      most 3 pixels, through 4 repeated 2x2 max poolings; the count of cells
      that differ falls to 0 by the last stage: small shifts are erased.
  s1_gap_random_maps.png  five random 5x5 feature maps and the single number
      global average pooling keeps of each (25x fewer values).
  s1_gap_features.png     two photos and the 512 pooled VGG16 features of each
      (block5_pool -> GlobalAvgPool2D); with ImageNet weights the photos give
      visibly different sparse patterns (a few strong features each).
  s3_bilinear_x2.png      a photo doubled by the bilinear transposed convolution
      (k=4, s=2, p=1): it looks like the original, twice as large.
  stdout: the transposed-convolution example [[2,1,3,1],[1,1,1,1],[4,1,5,1],[1,1,1,1]].
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np


def vgg16_base(weights: str):
    """VGG16 without top for the GAP demo, with ImageNet weights if found offline."""
    from fluxseg import models
    from fluxseg.viz.loading import Loaded
    from fluxseg.weights import preprocess

    if weights == "keras":
        try:
            from fluxseg import weights as W

            pre = W.load("vgg16", "keras", include_top=False)
            return Loaded(models.create("vgg16", include_top=False), pre.variables, pre.preprocess_fn, "vgg16", (224, 224), "classification", "Keras ImageNet weights")
        except FileNotFoundError as e:
            print(f"ImageNet weights not found offline, using random weights.\n{e}", file=sys.stderr)
    import jax

    model = models.create("vgg16", include_top=False)
    variables = jax.jit(lambda x: model.init(jax.random.key(0), x))(np.zeros((1, 224, 224, 3), np.float32))
    return Loaded(model, variables, preprocess.caffe, "vgg16", (224, 224), "classification", "RANDOM weights")


def detect_condense(image: np.ndarray, path: str):
    import jax.numpy as jnp
    from jax import lax

    from fluxseg.viz import figures, pooling

    plt = figures._plt()
    gray = image.mean(-1, dtype=np.float32) / 255.0
    kernel = np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], np.float32)  # an edge detector, as in the lesson ('valid': no border edge)
    conv = lax.conv_general_dilated(jnp.asarray(gray)[None, ..., None], jnp.asarray(kernel)[..., None, None], (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    detect = np.asarray(jnp.maximum(conv, 0))[0, ..., 0]
    condense = np.asarray(pooling.max_pool(detect))
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, img, title in zip(axes, (image, detect, condense), ("input", "detect: 3x3 edge kernel + ReLU", "condense: 2x2 max pool")):
        # 99.5th percentile as white: a few strong whisker edges would otherwise make the rest black
        vmax = None if img.ndim == 3 else float(np.percentile(detect, 99.5))
        ax.imshow(img, cmap=None if img.ndim == 3 else "magma", vmin=0 if vmax else None, vmax=vmax)
        ax.set_axis_off()
        nz = "" if img.ndim == 3 else f"\n{img.shape[0]}x{img.shape[1]}, {100 * (img > 0).mean():.0f}% non-zero"
        ax.set_title(title + nz, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(path)


def gap_random_maps(path: str, seed: int = 0):
    from fluxseg.viz import figures, pooling

    plt = figures._plt()
    maps = np.random.default_rng(seed).uniform(0, 1, (1, 5, 5, 5)).astype(np.float32)
    pooled = np.asarray(pooling.global_average_pool(maps))[0]
    fig, axes = plt.subplots(2, 5, figsize=(10, 4.2))
    for k in range(5):
        axes[0, k].imshow(maps[0, ..., k], cmap="magma", vmin=0, vmax=1)
        axes[0, k].set_title(f"feature map {k}", fontsize=9)
        axes[1, k].imshow([[pooled[k]]], cmap="magma", vmin=0, vmax=1)
        axes[1, k].set_title(f"pooled: {pooled[k]:.3f}", fontsize=9)
        for ax in axes[:, k]:
            ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("GlobalAvgPool2D: each 5x5 map becomes its mean (25x fewer values)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="figures/s1")
    p.add_argument("--weights", choices=("keras", "random"), default="keras")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    from skimage import data
    from skimage.transform import resize

    from fluxseg.viz import figures, pooling

    def photo(fn, hw):
        return (resize(fn(), hw, anti_aliasing=True, preserve_range=True)).astype(np.uint8)

    detect_condense(photo(data.chelsea, (300, 451)), os.path.join(args.out, "s1_detect_condense.png"))
    demo = figures.shift_figure(os.path.join(args.out, "s1_shift.png"))
    print(f"shift {demo['shift']}: cells that differ per stage {demo['differs']}")
    gap_random_maps(os.path.join(args.out, "s1_gap_random_maps.png"))
    loaded = vgg16_base(args.weights)
    images = np.stack([photo(data.chelsea, (224, 224)), photo(data.coffee, (224, 224))])
    figures.gap_figure(loaded, images, np.asarray(loaded.preprocess(images.astype(np.float32))), ["chelsea (cat)", "coffee"], os.path.join(args.out, "s1_gap_features.png"))
    figures.upsample_figure(photo(data.astronaut, (256, 256)), os.path.join(args.out, "s3_bilinear_x2.png"))
    print("transposed conv of [[1,2],[3,4]], 1x1 kernel 1, bias 1, stride 2:\n", pooling.transposed_conv_example())
    return 0


if __name__ == "__main__":
    sys.exit(main())
