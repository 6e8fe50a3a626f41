"""`fluxseg eval` and `fluxseg predict`: a trained run on a split, or on image files.

    fluxseg eval --workdir DIR [--split S] [--tta flip] [--scales 0.75,1,1.25]
    fluxseg predict --workdir DIR IMAGES... [--out OUTDIR] [--probs] [--tta flip]

IMAGES may be files, directories (their image files, sorted) or globs
('val/*.jpg', quoted so the shell leaves it alone). A bad file is reported on
stderr and skipped; the exit status is 1 if any was.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys


def _scales(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive factors such as 0.75,1,1.25, got {text!r}")
    return values


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workdir", required=True, help="the run directory (its newest checkpoint is used)")
    p.add_argument("--step", type=int, default=None, help="a checkpoint step other than the newest")
    p.add_argument("--tta", choices=["flip"], default=None, help="average with the mirrored image")
    p.add_argument("--scales", type=_scales, default=(1.0,), help="multi-scale factors, e.g. 0.75,1,1.25")


def eval_main(argv: list[str]) -> int:
    """Scores a run on a whole split, every image at its own size; prints and saves a report."""
    p = argparse.ArgumentParser(prog="fluxseg eval", description=eval_main.__doc__)
    _common(p)
    p.add_argument("--split", default=None, help="tfds split (default the config's eval split)")
    p.add_argument("--data-dir", default=None, help="tfds data_dir, if not the one the run used")
    p.add_argument("--out", default=None, help="report directory (default <workdir>/eval_<split>_step<N>)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)

    from fluxseg.evaluate import evaluate, markdown
    from fluxseg.train.checkpoint import DamagedCheckpointError

    try:
        result = evaluate(args.workdir, args.split, step=args.step, tta=args.tta, scales=args.scales,
                          data_dir=args.data_dir, out_dir=args.out, progress=not args.no_progress)
    except (FileNotFoundError, ValueError, DamagedCheckpointError) as e:
        print(f"fluxseg eval: error: {e}", file=sys.stderr)
        return 2
    print(markdown(result, result["class_names"]))
    print("report: " + ", ".join(result.get("files", [])))
    keys = ("step", "split", "num_examples", "pixel_acc", "mean_acc", "mIoU", "fwIoU", "top1",
            "top5", "images_per_s")
    print(json.dumps({k: result[k] for k in keys if k in result}, indent=1))
    return 0


def expand(items: list[str]) -> tuple[list[str], list[str]]:
    """(image paths, error messages) from files, directories and globs."""
    from fluxseg.infer_io import IMAGE_SUFFIXES

    paths, errors = [], []
    for item in items:
        if os.path.isdir(item):
            found = sorted(os.path.join(item, f) for f in os.listdir(item)
                           if f.lower().endswith(IMAGE_SUFFIXES))
            if not found:
                errors.append(f"{item}: directory holds no image files ({', '.join(IMAGE_SUFFIXES)})")
            paths += found
        elif glob.has_magic(item):
            found = sorted(glob.glob(item))
            if not found:
                errors.append(f"{item}: no file matches this pattern")
            paths += found
        else:
            paths.append(item)
    return paths, errors


def _classes(config):
    """(class names, colormap) of the run's dataset; numbered names if it is not at hand."""
    try:
        from fluxseg import data
        info = data.info(config.data)
        return tuple(info.class_names), info.colormap
    except Exception as e:  # noqa: BLE001  drawing needs no dataset; say why names are missing
        print(f"fluxseg predict: note: class names unavailable ({e}); numbering classes",
              file=sys.stderr)
        return tuple(str(i) for i in range(max(int(config.num_classes), 2))), None


def _unique_stem(path: str, used: set) -> str:
    stem = os.path.splitext(os.path.basename(path))[0]
    name, k = stem, 1
    while name in used:
        k += 1
        name = f"{stem}_{k}"
    used.add(name)
    return name


def predict_main(argv: list[str]) -> int:
    """Writes a colour mask, an overlay with a class legend and optionally probabilities per image."""
    p = argparse.ArgumentParser(prog="fluxseg predict", description=predict_main.__doc__)
    p.add_argument("images", nargs="+", help="image files, directories or quoted globs")
    _common(p)
    p.add_argument("--out", default=None, help="output directory (default <workdir>/predictions)")
    p.add_argument("--probs", action="store_true", help="also save float32 probabilities [H,W,K] as .npy")
    p.add_argument("--alpha", type=float, default=0.5, help="mask weight in the overlay")
    args = p.parse_args(argv)

    import numpy as np
    from PIL import Image

    import fluxseg
    from fluxseg import infer, infer_draw
    from fluxseg.infer_io import BadImageError, read_image
    from fluxseg.train.checkpoint import DamagedCheckpointError

    paths, failures = expand(args.images)
    for msg in failures:
        print(f"fluxseg predict: error: {msg}", file=sys.stderr)
    try:
        restored = fluxseg.restore(args.workdir, args.step)
    except (FileNotFoundError, ValueError, DamagedCheckpointError) as e:
        print(f"fluxseg predict: error: {e}", file=sys.stderr)
        return 2
    out = args.out or os.path.join(args.workdir, "predictions")
    os.makedirs(out, exist_ok=True)
    names, colormap = _classes(restored.config)
    channels = infer.input_channels(restored)
    from fluxseg import tasks

    segmentation = tasks.kind(restored.config.task).dense
    used, labels, done = set(), {}, 0
    for path in paths:
        try:
            image = read_image(path, channels)
            probs = fluxseg.predict(restored, image, probs=True, tta=args.tta, scales=args.scales,
                                    name=path)
        except BadImageError as e:
            print(f"fluxseg predict: error: {e}", file=sys.stderr)
            failures.append(path)
            continue
        stem, done = _unique_stem(path, used), done + 1
        if not segmentation:
            order = np.argsort(-probs)[:5]
            top = [(names[k] if k < len(names) else str(k), float(probs[k])) for k in order]
            labels[path] = top
            print(f"{path}: {top[0][0]} ({top[0][1]:.3f}); top-5 " +
                  ", ".join(f"{n} {q:.3f}" for n, q in top))
            continue
        mask = (probs[..., 0] > 0.5).astype(np.uint8) if probs.shape[-1] == 1 else \
            np.argmax(probs, -1).astype(np.uint8)
        pal = Image.fromarray(mask, mode="P")
        cmap = colormap if colormap is not None else infer_draw.default_colormap(256)
        pal.putpalette(np.asarray(cmap, np.uint8)[:256].reshape(-1).tolist())
        pal.save(os.path.join(out, f"{stem}_mask.png"))
        legend = infer_draw.legend_entries([mask], names, colormap)
        view = infer_draw.panel_grid([[infer_draw.overlay(image, mask, colormap, alpha=args.alpha)]],
                                     [os.path.basename(path)], legend, min_height=0)
        Image.fromarray(view).save(os.path.join(out, f"{stem}_overlay.png"))
        if args.probs:
            np.save(os.path.join(out, f"{stem}_probs.npy"), probs.astype(np.float32))
        print(f"{path}: {mask.shape[0]}x{mask.shape[1]} -> {os.path.join(out, stem)}_mask.png, _overlay.png"
              + (", _probs.npy" if args.probs else ""))
    if labels:
        with open(os.path.join(out, "classes.json"), "w") as f:
            json.dump(labels, f, indent=1)
    if failures:
        print(f"fluxseg predict: {len(failures)} input(s) failed, {done} predicted", file=sys.stderr)
        return 1
    return 0
