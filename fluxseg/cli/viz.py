"""`fluxseg viz activations|filters|gradcam|pooling`: PNG figures of what a model does.

    fluxseg viz activations --model cnn_small --workdir runs/s2 cat.jpg --out figs
    fluxseg viz filters --model vgg16 --weights keras --layer block3_conv1 --out figs
    fluxseg viz gradcam --model vgg16 --weights keras elephant.jpg --out figs
    fluxseg viz gradcam --workdir runs/fcn --class-id 15 street.jpg --out figs
    fluxseg viz pooling --model vgg16 --weights keras car.jpg --out figs

--weights: keras | torchvision (the ImageNet files, found offline as in
`fluxseg.weights.load`), a weight file path, or random (for trying the
commands); --workdir: a training run's newest checkpoint instead.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from fluxseg import tasks


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fluxseg viz", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp, images: str):
        sp.add_argument("--model", help="a registered model name (`fluxseg models`)")
        sp.add_argument("--weights", default=None, help="keras | torchvision | random | PATH (default random)")
        sp.add_argument("--workdir", default=None, help="a training run; its newest checkpoint and preprocessing are used")
        sp.add_argument("--out", required=True, help="output directory for the PNG files")
        sp.add_argument("--size", type=_hw, default=None, help="H,W the images are resized to (default: the model's input size)")
        if images:
            sp.add_argument("images", nargs=images, help="image files")

    a = sub.add_parser("activations", help="channel grids of every conv/pool layer (DLwP §5.4.1)")
    common(a, "+")
    a.add_argument("--layer", action="append", default=None, help="a layer to draw (repeatable; default every conv and pool)")
    a.add_argument("--per-row", type=int, default=16)
    f = sub.add_parser("filters", help="patterns that maximise filters of a layer (DLwP §5.4.2)")
    common(f, "")
    f.add_argument("--layer", required=True)
    f.add_argument("--filters", type=int, default=64, help="the first N filters (default 64: an 8x8 grid)")
    f.add_argument("--pattern-size", type=int, default=64, help="pixels per pattern (the book's grid uses 64)")
    f.add_argument("--steps", type=int, default=40)
    f.add_argument("--method", choices=("dlwp", "regularized"), default="dlwp")
    f.add_argument("--batch-size", type=int, default=None, help="filters ascended at once (memory)")
    g = sub.add_parser("gradcam", help="Grad-CAM heatmaps over the images (Selvaraju et al. 2017)")
    common(g, "+")
    g.add_argument("--layer", default=None, help="default: the model's last convolutional map")
    g.add_argument("--class-id", type=int, default=None, help="target class (default: each image's top class; required for segmentation)")
    g.add_argument("--alpha", type=float, default=0.4)
    q = sub.add_parser("pooling", help="max-pooling shift demo, GAP features of IMAGE, bilinear x2 of IMAGE")
    common(q, "*")
    return p


def _hw(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected H,W (e.g. 224,224), got {text!r}") from None
    return h, w


def _save(img: np.ndarray, out: str, name: str) -> str:
    from PIL import Image

    path = os.path.join(out, name)
    Image.fromarray(np.asarray(img, np.uint8)).save(path)
    print(path)
    return path


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def _batch(loaded, paths, hw):
    from fluxseg.viz.loading import read_image

    images = np.stack([read_image(p, hw) for p in paths])
    return images, np.asarray(loaded.preprocess(images.astype(np.float32)), np.float32)


def cmd_activations(args, loaded) -> int:
    from fluxseg import viz
    from fluxseg.viz import figures

    hw = args.size or loaded.input_hw
    images, x = _batch(loaded, args.images, hw)
    acts = viz.activations(loaded.model, loaded.variables, x, args.layer)
    for i, path in enumerate(args.images):
        for name, fmap in acts.items():
            grid = viz.colorize(viz.activation_grid(np.asarray(fmap[i]), per_row=args.per_row, margin=1))
            grid = figures.titled(figures.enlarge(grid, fmap.shape[1]), f"{loaded.name} {name} {tuple(fmap.shape[1:])} ({loaded.note})")
            _save(grid, args.out, f"{_stem(path)}_activations_{name.replace('/', '_')}.png")
    return 0


def cmd_filters(args, loaded) -> int:
    from fluxseg import viz
    from fluxseg.viz import figures

    pre = loaded.preprocess if args.method == "regularized" else None  # the book feeds raw pixels
    pats = viz.filter_patterns(loaded.model, loaded.variables, args.layer, range(args.filters), size=args.pattern_size,
                               steps=args.steps, method=args.method, preprocess=pre, batch_size=args.batch_size)
    grid = viz.tile_grid(pats.images, per_row=8, margin=5, crossed=pats.dead)
    _save(figures.titled(grid, f"{loaded.name} {args.layer}, filters 0-{args.filters - 1}, {args.method} ({loaded.note})"),
          args.out, f"filters_{args.layer.replace('/', '_')}_{args.method}.png")
    if pats.dead.any():
        print(f"{int(pats.dead.sum())} filter(s) never activated or got no gradient (crossed out): {np.flatnonzero(pats.dead).tolist()}")
    return 0


def cmd_gradcam(args, loaded) -> int:
    from fluxseg import viz
    from fluxseg.viz import figures
    from fluxseg.viz.loading import gradcam_layer

    hw = args.size or loaded.input_hw
    images, x = _batch(loaded, args.images, hw)
    layer = args.layer or gradcam_layer(loaded, x)
    if tasks.kind(loaded.task).dense:
        if args.class_id is None:
            raise ValueError("a segmentation model needs --class-id (the class whose predicted pixels are explained)")
        targets = viz.segmentation_target(args.class_id)
    else:
        targets = args.class_id
    cams, _ = viz.gradcam(loaded.model, loaded.variables, x, layer, targets, size=hw, return_scores=True)
    logits = np.asarray(loaded.model.apply(loaded.variables, x))
    for i, path in enumerate(args.images):
        lines = [f"Grad-CAM at {layer} ({loaded.note})"]
        if logits.ndim == 2 and logits.shape[-1] == 1000:
            from fluxseg.weights import decode_predictions

            top = decode_predictions(logits[i], top=3)
            lines += [f"{k}: {name} {p:.3f}" for k, name, p in top]
            print(f"{path}: " + "; ".join(f"{name} ({k}) {p:.3f}" for k, name, p in top))
        target = args.class_id if args.class_id is not None else (int(logits[i].argmax()) if logits.ndim == 2 else None)
        lines.append(f"target class {target}")
        _save(figures.titled(viz.overlay(images[i], np.asarray(cams[i]), args.alpha), lines), args.out, f"{_stem(path)}_gradcam_{layer.replace('/', '_')}.png")
    return 0


def cmd_pooling(args, loaded) -> int:
    from fluxseg.viz import figures

    figures.shift_figure(os.path.join(args.out, "pooling_shift.png"))
    if args.images:
        hw = args.size or loaded.input_hw
        images, x = _batch(loaded, args.images, hw)
        figures.gap_figure(loaded, images, x, [_stem(p) for p in args.images], os.path.join(args.out, "pooling_gap_features.png"))
        for img, path in zip(images, args.images):
            figures.upsample_figure(img, os.path.join(args.out, f"{_stem(path)}_bilinear_x2.png"))
    return 0


COMMANDS = {"activations": cmd_activations, "filters": cmd_filters, "gradcam": cmd_gradcam, "pooling": cmd_pooling}


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from fluxseg.train.checkpoint import DamagedCheckpointError
    from fluxseg.viz import loading

    try:
        os.makedirs(args.out, exist_ok=True)
        loaded = None
        if args.workdir:
            import fluxseg
            loaded = loading.from_run(fluxseg.restore(args.workdir))
        elif args.command != "pooling" or args.images:
            loaded = loading.load(args.model, args.weights)
        return COMMANDS[args.command](args, loaded)
    except (ValueError, KeyError, FileNotFoundError, TypeError, DamagedCheckpointError) as e:
        print(f"fluxseg viz {args.command}: error: {e}", file=sys.stderr)
        return 2

