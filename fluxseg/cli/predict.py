"""`fluxseg predict`: a trained run on image files.

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

from fluxseg.cli._args import add_run_options


def expand(items: list[str]) -> tuple[list[str], list[str]]:
    """(image paths, error messages) from files, directories and globs."""
    from fluxseg.infer.io import IMAGE_SUFFIXES

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


def _task(config):
    """(the run's task, the dataset's colormap or None): its class names are the
    dataset's, or numbered where the dataset is not at hand."""
    from fluxseg.infer.classes import run_task

    task, colormap, missing = run_task(config)
    if missing:
        print(f"fluxseg predict: note: class names unavailable ({missing}); numbering classes",
              file=sys.stderr)
    return task, colormap


def _unique_stem(path: str, used: set) -> str:
    stem = os.path.splitext(os.path.basename(path))[0]
    name, k = stem, 1
    while name in used:
        k += 1
        name = f"{stem}_{k}"
    used.add(name)
    return name


def main(argv: list[str]) -> int:
    """Writes a colour mask, an overlay with a class legend and optionally probabilities per image."""
    p = argparse.ArgumentParser(prog="fluxseg predict", description=main.__doc__)
    p.add_argument("images", nargs="+", help="image files, directories or quoted globs")
    add_run_options(p)
    p.add_argument("--out", default=None, help="output directory (default <workdir>/predictions)")
    p.add_argument("--probs", action="store_true", help="also save float32 probabilities [H,W,K] as .npy")
    p.add_argument("--alpha", type=float, default=0.5, help="mask weight in the overlay")
    args = p.parse_args(argv)

    import numpy as np
    from PIL import Image

    import fluxseg
    from fluxseg import infer, tasks
    from fluxseg.viz import draw
    from fluxseg.infer.io import BadImageError, read_image
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
    task, colormap = _task(restored.config)
    names = task.names
    channels = infer.input_channels(restored)
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
        if not task.dense:
            # A binary head gives P(class 1) alone: rank both classes.
            ranked = np.concatenate([1.0 - probs, probs]) if task.binary else probs
            top = [(names[k], float(ranked[k])) for k in np.argsort(-ranked)[:5]]
            labels[path] = top
            print(f"{path}: {top[0][0]} ({top[0][1]:.3f}); top-5 " +
                  ", ".join(f"{n} {q:.3f}" for n, q in top))
            continue
        mask = tasks.class_ids_from_probs(probs).astype(np.uint8)
        pal = Image.fromarray(mask, mode="P")
        cmap = colormap if colormap is not None else draw.default_colormap(256)
        pal.putpalette(np.asarray(cmap, np.uint8)[:256].reshape(-1).tolist())
        pal.save(os.path.join(out, f"{stem}_mask.png"))
        legend = draw.legend_entries([mask], names, colormap)
        view = draw.panel_grid([[draw.overlay(image, mask, colormap, alpha=args.alpha)]],
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
