"""`fluxseg summary NAME`: a Keras-style table of a model's layers, output shapes and parameters."""
from __future__ import annotations

import argparse
import json
import sys

from fluxseg.cli._args import parse_override, parse_shape


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="fluxseg summary", description=__doc__)
    p.add_argument("name")
    p.add_argument("--input-shape", type=parse_shape, default=None, help="H,W,C (default: the model's own)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the totals and output shape")
    p.add_argument("--set", type=parse_override, action="append", default=[], metavar="KEY=VALUE",
                   help="model option, e.g. --set variant=8s")
    args = p.parse_args(argv)
    from fluxseg.models.summary import summarize

    try:
        s = summarize(args.name, args.input_shape, **dict(args.set))
    except (ValueError, TypeError) as e:
        print(f"fluxseg summary: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(s.as_dict()) if args.json else s.table())
    return 0
