"""`fluxseg weights ...`: convert official weight files once, and show where files are looked for.

    fluxseg weights convert --model vgg16 --source keras [--path FILE] [--notop] --out DIR
    fluxseg weights list

`convert` reads the original file (found as `fluxseg.weights.load` finds
it, or `--path`), converts it, and writes `DIR/<model>_<source>[_notop].fluxseg.msgpack`;
with DIR = $FLUXSEG_WEIGHTS_DIR (the default when set) every later `load`
reads that file instead of converting again.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from fluxseg.weights import hub, registry


def _convert(args) -> int:
    out = args.out or os.environ.get("FLUXSEG_WEIGHTS_DIR")
    if not out:
        print("error: --out DIR is required (or set $FLUXSEG_WEIGHTS_DIR)", file=sys.stderr)
        return 2
    try:
        pre = hub.load(
            args.model, args.source, path=args.path, include_top=not args.notop,
            allow_download=args.allow_download, prefer_converted=False,
        )
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    dest = hub.save_converted(pre, out)
    print(f"{pre.path} -> {dest} ({pre.preprocess} preprocessing)")
    return 0


def _list(args) -> int:
    for (source, model), files in registry.FILES.items():
        for wf in files:
            where = next((d / wf.filename for d, _ in hub.search_dirs() if (d / wf.filename).is_file()), None)
            top = "" if wf.include_top else " notop"
            print(f"{model:15s} {source:12s}{top:6s} {wf.filename:55s} {where or 'missing: ' + wf.url}")
    print("searched:", ", ".join(f"{d} ({label})" for d, label in hub.search_dirs()))
    return 0


def main(argv: Sequence[str]) -> int:
    """Entry point for `fluxseg weights`; `argv` excludes 'weights' itself. Returns the exit code."""
    parser = argparse.ArgumentParser(prog="fluxseg weights", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="convert an official weight file once")
    conv.add_argument("--model", required=True, help="vgg16 | resnet50_keras | resnet18 | resnet34 | resnet50 | resnet101")
    conv.add_argument("--source", required=True, choices=sorted(registry.SOURCES))
    conv.add_argument("--path", help="the original file (default: look it up offline)")
    conv.add_argument("--notop", action="store_true", help="convolutional base only")
    conv.add_argument("--out", help="output directory (default $FLUXSEG_WEIGHTS_DIR)")
    conv.add_argument("--allow-download", action="store_true", help="fetch the official file if absent")
    conv.set_defaults(run=_convert)
    sub.add_parser("list", help="known files and where they are").set_defaults(run=_list)
    args = parser.parse_args(argv)
    return args.run(args)

