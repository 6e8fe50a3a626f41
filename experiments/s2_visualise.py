"""Visualising what convnets learn (Chollet, Deep Learning with Python, 1st ed. §5.4).

A runnable demo script, not a launch config. One command writes every figure:

    python experiments/s2_visualise.py --out figures/s2 [--cnn-small-run RUN] [--weights keras|random] [--filters 64]

RUN is a workdir trained with `python launch.py --config experiments/s2_cnn_small.py
--workdir RUN` (the book's cats-vs-dogs CNN); without it cnn_small has random
weights. The same figures come from `fluxseg viz activations|filters|gradcam`.

Data: scikit-image's sample photo of a cat (skimage.data.chelsea) and
astronaut, shipped with the package; nothing is downloaded. VGG16 ImageNet
weights are used when `fluxseg.weights.load('vgg16', 'keras')` finds them
offline, otherwise random weights, and every title says which.

Expected:
  s2_activations_<layer>.png  for the eight first layers of cnn_small (conv2d,
      max_pooling2d, ..., max_pooling2d_3), 16 channels per row, each channel
      standardised; with trained weights the first layers look like edge
      detectors of the cat, deeper ones grow sparse and abstract.
  s2_filters_block{1..5}_conv1.png  8x8 grids of 64x64 patterns (5-pixel
      margins) of the first 64 filters of each block ('dlwp' recipe); with
      ImageNet weights: colours and oriented edges in block1, textures in
      block2-3, natural-looking textures (feathers, eyes, leaves) deeper.
      Filters that never activate are crossed out in red.
  s2_filters_block4_conv1_regularized.png  the same filters with the
      regularised ascent (Fourier parameterisation, jitter/scale/rotation),
      larger and smoother structures.
  s2_gradcam.png  Grad-CAM at block5_conv3 overlaid (jet, 0.4) on the cat,
      with the top-3 ImageNet classes; with ImageNet weights the top class is a
      cat class (tabby/tiger cat/Egyptian cat) and the heat lies on the cat's face.
"""
from __future__ import annotations

import argparse
import os
import sys

import jax
import numpy as np


def load_vgg16(weights: str):
    from fluxseg import models
    from fluxseg.viz.loading import Loaded
    from fluxseg.weights import preprocess

    if weights == "keras":
        try:
            from fluxseg import weights as W

            pre = W.load("vgg16", "keras")
            return Loaded(models.create("vgg16"), pre.variables, pre.preprocess_fn, "vgg16", (224, 224), "classification", "Keras ImageNet weights")
        except FileNotFoundError as e:
            print(f"ImageNet weights not found offline, using random weights.\n{e}", file=sys.stderr)
    model = models.create("vgg16")
    variables = jax.jit(lambda x: model.init(jax.random.key(0), x))(np.zeros((1, 224, 224, 3), np.float32))
    return Loaded(model, variables, preprocess.caffe, "vgg16", (224, 224), "classification", "RANDOM weights")


def load_cnn_small(run):
    from fluxseg import models
    from fluxseg.viz.loading import Loaded, from_run

    if run:
        import fluxseg
        return from_run(fluxseg.restore(run))
    model = models.create("cnn_small")
    variables = jax.jit(lambda x: model.init(jax.random.key(0), x))(np.zeros((1, 150, 150, 3), np.float32))
    return Loaded(model, variables, lambda x: x / 255.0, "cnn_small", (150, 150), "classification", "RANDOM weights")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="figures/s2")
    p.add_argument("--weights", choices=("keras", "random"), default="keras")
    p.add_argument("--cnn-small-run", default=None, help="workdir of a trained experiments/s2_cnn_small.py run")
    p.add_argument("--filters", type=int, default=64, help="filters per layer grid (the book: 64)")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--blocks", default="1,2,3,4,5", help="which blockN_conv1 layers to draw")
    p.add_argument("--regularized-steps", type=int, default=160)
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    from skimage import data
    from skimage.transform import resize

    from fluxseg import viz
    from fluxseg.viz import figures
    from fluxseg.weights import decode_predictions

    def photo(hw):
        return resize(data.chelsea(), hw, anti_aliasing=True, preserve_range=True).astype(np.uint8)

    # 1. Intermediate activations of the small convnet (listings 5.25-5.29).
    small = load_cnn_small(args.cnn_small_run)
    img = photo(small.input_hw)
    acts = viz.activations(small.model, small.variables, np.asarray(small.preprocess(img[None].astype(np.float32))))
    for name, fmap in acts.items():
        grid = figures.enlarge(viz.colorize(viz.activation_grid(np.asarray(fmap[0]), per_row=16, margin=1)), fmap.shape[1])
        path = os.path.join(args.out, f"s2_activations_{name}.png")
        viz_save(figures.titled(grid, f"cnn_small {name} {tuple(fmap.shape[1:])} ({small.note})"), path)

    # 2. Filter patterns of VGG16's blockN_conv1 (listings 5.32-5.39): no top, raw pixels as in the book.
    vgg = load_vgg16(args.weights)
    from fluxseg import models

    base = models.create("vgg16", include_top=False)
    base_vars = {"params": {k: v for k, v in vgg.variables["params"].items() if k.startswith("block")}}
    for b in (int(v) for v in args.blocks.split(",")):
        layer = f"block{b}_conv1"
        pats = viz.filter_patterns(base, base_vars, layer, range(args.filters), size=64, steps=args.steps, batch_size=16)
        grid = viz.tile_grid(pats.images, per_row=8, margin=5, crossed=pats.dead)
        viz_save(figures.titled(grid, f"vgg16 {layer}: filters 0-{args.filters - 1}, DLwP ascent, {args.steps} steps ({vgg.note})"), os.path.join(args.out, f"s2_filters_{layer}.png"))
    pats = viz.filter_patterns(base, base_vars, "block4_conv1", range(args.filters), size=64, steps=args.regularized_steps, method="regularized", preprocess=vgg.preprocess, batch_size=16)
    grid = viz.tile_grid(pats.images, per_row=8, margin=5, crossed=pats.dead)
    viz_save(figures.titled(grid, f"vgg16 block4_conv1, regularized ascent, {args.regularized_steps} steps ({vgg.note})"), os.path.join(args.out, "s2_filters_block4_conv1_regularized.png"))

    # 3. Grad-CAM (listings 5.40-5.44), score before the softmax (Selvaraju et al. 2017).
    img = photo((224, 224))
    x = np.asarray(vgg.preprocess(img[None].astype(np.float32)))
    logits = np.asarray(vgg.model.apply(vgg.variables, x))
    top = decode_predictions(logits[0], top=3)
    cam = viz.gradcam(vgg.model, vgg.variables, x, "block5_conv3", None, size=(224, 224))
    lines = [f"Grad-CAM, vgg16 block5_conv3, class {top[0][0]} ({vgg.note})"] + [f"{k}: {n} {p:.3f}" for k, n, p in top]
    viz_save(figures.titled(viz.overlay(img, np.asarray(cam[0])), lines), os.path.join(args.out, "s2_gradcam.png"))
    print("top-3:", top)
    return 0


def viz_save(img, path):
    from PIL import Image

    Image.fromarray(np.asarray(img, np.uint8)).save(path)
    print(path)


if __name__ == "__main__":
    sys.exit(main())
