"""`fluxseg export`: a trained run as an artifact that runs without fluxseg.

    fluxseg export --workdir W [--step N] --format stablehlo|savedmodel|onnx --out DIR
                   [--batch N|dynamic] [--size H,W|dynamic] [--dtype float32|bfloat16]

DIR gets the model (model.jaxexport, saved_model/ or model.onnx), model.json
(classes, the sides the model takes, preprocessing, outputs, the parity check
against JAX made at export) and fluxseg_loader.py (runs it without fluxseg).
"""
from __future__ import annotations

import argparse
import json
import sys


def _batch(text: str):
    if text == "dynamic":
        return text
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive batch size or 'dynamic', got {text!r}")
    return n


def _size(text: str):
    if text == "dynamic":
        return text
    try:
        h, w = (int(v) for v in text.split(","))
    except ValueError:
        h = w = 0
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"expected H,W as two positive integers (e.g. 188,188) or "
                                         f"'dynamic', got {text!r}")
    return h, w


def main(argv: list[str]) -> int:
    """Exports the run's checkpoint; prints where the files went and the parity check."""
    from fluxseg.infer.export.common import FORMATS

    p = argparse.ArgumentParser(prog="fluxseg export", description=main.__doc__)
    p.add_argument("--workdir", required=True, help="the run directory (its newest checkpoint is used)")
    p.add_argument("--step", type=int, default=None, help="a checkpoint step other than the newest")
    p.add_argument("--format", required=True, choices=FORMATS, help="the artifact's format")
    p.add_argument("--out", required=True, help="directory to write the artifact into")
    p.add_argument("--batch", type=_batch, default="dynamic", help="images per call: N or dynamic")
    p.add_argument("--size", type=_size, default="dynamic",
                   help="H,W, or dynamic: every side the model's arithmetic allows (model.json says which)")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                   help="compute dtype of the artifact (bfloat16-trained runs export in float32 unless asked)")
    args = p.parse_args(argv)

    import fluxseg
    from fluxseg.infer.export import ExportError, export

    try:
        restored = fluxseg.restore(args.workdir, args.step)
        out = export(restored, args.format, args.out, batch=args.batch, size=args.size, dtype=args.dtype)
    except (ExportError, FileNotFoundError) as e:
        print(f"fluxseg export: error: {e}", file=sys.stderr)
        return 1
    with open(f"{out}/model.json") as f:
        meta = json.load(f)
    check = meta["parity_check"]
    print(f"{args.format} export of {meta['model']} step {meta['step']} in {out}: input {meta['input_shape']} "
          f"uint8; logits within {check['logits_max_rel_diff']:.1e} of JAX on {check['images']} images")
    return 0
