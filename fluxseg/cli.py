"""The `fluxseg` console script.

    fluxseg models                              list the registered models
    fluxseg summary NAME [--input-shape H,W,C] [--json] [--set key=value ...]
    fluxseg weights convert ...                 see `fluxseg weights -h`
    fluxseg train --config experiments/X.py --workdir DIR [--config.key=value ...]
    fluxseg eval  --workdir DIR [--split S] [--tta flip] [--scales 0.75,1,1.25]
    fluxseg predict --workdir DIR IMAGES... [--out DIR] [--probs] [--tta flip]
    fluxseg viz ...                             see `fluxseg viz -h`
    fluxseg bench [models|profile|train-step|gpu|list] [ARGS...]   see `fluxseg bench -h`
"""
from __future__ import annotations

import argparse
import ast
import json
import sys

from fluxseg import compile_cache, cpu_process


def _parse_shape(text: str) -> tuple[int, int, int]:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected H,W,C as three positive integers (e.g. 224,224,3), got {text!r}")
    return shape


def _parse_override(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value  # a bare string such as variant=8s


def cmd_models(args) -> int:
    from fluxseg import models

    for name in models.names():
        s = models.spec(name)
        print(f"{name:<24}{s.task:<16}{'x'.join(map(str, s.input_shape)):<14}{s.description}")
    return 0


def cmd_summary(args) -> int:
    from fluxseg.summary import summarize

    s = summarize(args.name, args.input_shape, **dict(args.set))
    print(json.dumps(s.as_dict()) if args.json else s.table())
    return 0


def _weights(argv: list[str]) -> int:
    from fluxseg.weights import cli as weights_cli

    return weights_cli.main(argv) or 0


def _launch(mode: str):
    def run(argv: list[str]) -> int:
        from fluxseg import launcher  # absl flags: defined only when a run is launched

        launcher.run([f"fluxseg {mode}", f"--mode={mode}", *argv])
        return 0

    return run


def _infer(name: str):
    def run(argv: list[str]) -> int:
        from fluxseg import infer_cli  # argparse of its own; jax loads only when it runs
        return getattr(infer_cli, f"{name}_main")(argv)

    return run


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # run as the `fluxseg` command, not called from Python
        cpu_process.reexec()  # glibc's malloc settings for XLA's CPU runtime; before JAX loads
        argv = sys.argv[1:]
        if argv[:1] in (["eval"], ["predict"], ["viz"]):  # `train`: the launcher enables it
            compile_cache.enable()  # compiled functions kept on disk for the next command
    # These subcommands own their flags (absl/ml_collections or their own parser).
    passthrough = {"weights": _weights, "train": _launch("train"), "eval": _infer("eval"), "predict": _infer("predict")}
    passthrough["viz"] = lambda argv: __import__("fluxseg.viz.cli", fromlist=["main"]).main(argv)
    passthrough["bench"] = lambda argv: __import__("fluxseg.bench", fromlist=["main"]).main(argv)
    if argv and argv[0] in passthrough:
        return passthrough[argv[0]](argv[1:])

    parser = argparse.ArgumentParser(prog="fluxseg", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("models", help="list the registered models").set_defaults(func=cmd_models)
    p = sub.add_parser("summary", help="Keras-style table of a model's layers and parameter counts")
    p.add_argument("name")
    p.add_argument("--input-shape", type=_parse_shape, default=None, help="H,W,C (default: the model's own)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the totals and output shape")
    p.add_argument("--set", type=_parse_override, action="append", default=[], metavar="KEY=VALUE", help="model option, e.g. --set variant=8s")
    p.set_defaults(func=cmd_summary)
    for name in passthrough:
        sub.add_parser(name, help=f"see `fluxseg {name} -h`")
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError) as e:
        print(f"fluxseg {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
