"""The `fluxseg` console script: one module per subcommand, each with ``main(argv) -> int``.

    fluxseg models                              list the registered models
    fluxseg summary NAME [--input-shape H,W,C] [--json] [--set key=value ...]
    fluxseg weights convert|list ...            convert official weight files once
    fluxseg train --config experiments/X.py --workdir DIR [--config.key=value ...]
    fluxseg eval  --workdir DIR [--split S] [--tta flip] [--scales 0.75,1,1.25]
    fluxseg predict --workdir DIR IMAGES... [--out DIR] [--probs] [--tta flip]
    fluxseg export --workdir DIR --format stablehlo|savedmodel|onnx --out DIR [--batch N] [--size H,W]
    fluxseg viz activations|filters|gradcam|pooling ...
    fluxseg bench [models|profile|train-step|gpu|list] [ARGS...]
    fluxseg sweep --config experiments/X.py [--grid key=v1,v2] [--seeds 0-4] [--workdir DIR]
    fluxseg sweep report DIR                    results.json/.md and figures of a sweep

`fluxseg COMMAND -h` shows a command's options. A command's module is
imported only when it runs, so `fluxseg models` loads no TensorFlow.
"""
from __future__ import annotations

import importlib
import sys

from fluxseg.runtime import compile_cache, cpu_process

# name -> (module under fluxseg.cli, one-line help)
COMMANDS = {
    "models": ("models", "list the registered models"),
    "summary": ("summary", "Keras-style table of a model's layers and parameter counts"),
    "weights": ("weights", "convert official weight files; list where they are looked for"),
    "train": ("train", "train (and evaluate) an experiment config, as launch.py does"),
    "eval": ("eval", "score a trained run on a whole split, every image at its own size"),
    "predict": ("predict", "masks, overlays and probabilities of a trained run for image files"),
    "export": ("export", "a trained run as StableHLO, a SavedModel or ONNX, proven equal to JAX"),
    "viz": ("viz", "activations, filter patterns, Grad-CAM and pooling figures"),
    "bench": ("bench", "the benchmarks of a source checkout"),
    "sweep": ("sweep", "a grid of runs over seeds; mean, spread and significance in a report"),
}
# Commands whose compiled functions are kept on disk for the next run (`train`: the launcher enables it).
CACHED = ("eval", "predict", "viz", "export")


def usage() -> str:
    rows = "\n".join(f"  {name:<9}{help_}" for name, (_, help_) in COMMANDS.items())
    return f"usage: fluxseg COMMAND [ARGS...]\n\ncommands:\n{rows}\n\n`fluxseg COMMAND -h` for a command's options."


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # run as the `fluxseg` command, not called from Python
        cpu_process.reexec()  # glibc's malloc settings for XLA's CPU runtime; before JAX loads
        argv = sys.argv[1:]
        if argv[:1] and argv[0] in CACHED:
            compile_cache.enable()
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"fluxseg: error: unknown command {name!r}; choose from: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"fluxseg.cli.{COMMANDS[name][0]}")
    return module.main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
