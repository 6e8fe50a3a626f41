"""`fluxseg eval`: a trained run scored on a whole split, every image at its own size.

    fluxseg eval --workdir DIR [--split S] [--step N] [--tta flip] [--scales 0.75,1,1.25]
"""
from __future__ import annotations

import argparse
import json
import sys

from fluxseg.cli._args import add_run_options


def main(argv: list[str]) -> int:
    """Scores a run on a whole split, every image at its own size; prints and saves a report."""
    p = argparse.ArgumentParser(prog="fluxseg eval", description=main.__doc__)
    add_run_options(p)
    p.add_argument("--split", default=None, help="tfds split (default the config's eval split)")
    p.add_argument("--data-dir", default=None, help="tfds data_dir, if not the one the run used")
    p.add_argument("--out", default=None, help="report directory (default <workdir>/eval_<split>_step<N>)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)

    from fluxseg.infer.evaluation import evaluate
    from fluxseg.infer.report import markdown
    from fluxseg.train.checkpoint import DamagedCheckpointError

    try:
        result = evaluate(args.workdir, args.split, step=args.step, tta=args.tta, scales=args.scales,
                          data_dir=args.data_dir, out_dir=args.out, progress=not args.no_progress)
    except (FileNotFoundError, ValueError, DamagedCheckpointError) as e:
        print(f"fluxseg eval: error: {e}", file=sys.stderr)
        return 2
    print(markdown(result))
    print("report: " + ", ".join(result.get("files", [])))
    keys = ("step", "split", "num_examples", *result["headline"], "images_per_s")
    print(json.dumps({k: result[k] for k in keys}, indent=1))
    return 0
