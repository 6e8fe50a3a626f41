"""`fluxseg bench`: the benchmarks of a source checkout as one console command.

    fluxseg bench                       the README's CPU table: resnet50 (batch 16,
                                        224x224) and the unpadded U-Net (batch 2,
                                        188x188), train and infer, beside torch and Keras
    fluxseg bench models ARGS...        benchmarks/models_throughput.py (any model, --device gpu, --dtype)
    fluxseg bench profile ARGS...       benchmarks/profile_step.py (where one step's time goes)
    fluxseg bench train-step ARGS...    benchmarks/train_step.py (the real train step, jit/pmap)
    fluxseg bench input ARGS...         benchmarks/input_pipeline.py (input pipeline img/s per core
                                        beside plain tf.data; --step MODEL names the bottleneck)
    fluxseg bench gpu [BUDGET_S]        benchmarks/gpu_suite.sh (the GPU figures, one run)
    fluxseg bench export ARGS...        benchmarks/export_throughput.py (each exported format's
                                        runtime beside the in-JAX prediction)
    fluxseg bench list                  these, with the script each one runs

Each runs the script in its own process with this Python; `ARGS` go to the
script unchanged (`fluxseg bench models -h` shows its options). The scripts
live in the repository's benchmarks/ folder, beside the package, so an
editable install (`pip install -e .`) is needed.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SCRIPTS = {
    "models": "models_throughput.py",
    "profile": "profile_step.py",
    "train-step": "train_step.py",
    "gpu": "gpu_suite.sh",
    "export": "export_throughput.py",
    "input": "input_pipeline.py",
}
# The README table: each model at the size its paper and peers use on a CPU.
README_TABLE = (
    ["--models", "resnet50", "--batch", "16", "--size", "224,224", "--reps", "5"],
    ["--models", "unet", "--batch", "2", "--size", "188,188", "--reps", "5"],
)


def _run(script: str, args: list[str]) -> int:
    path = BENCHMARKS / script
    if not path.exists():
        print(f"fluxseg bench: error: {path} not found; fluxseg bench runs the scripts in the benchmarks/ "
              "folder of a source checkout: clone the repository and `pip install -e .` there", file=sys.stderr)
        return 2
    cmd = ["bash", str(path), *args] if script.endswith(".sh") else [sys.executable, str(path), *args]
    # gpu_suite.sh runs from the repository root; the Python scripts find _common.py beside them.
    return subprocess.call(cmd, cwd=BENCHMARKS.parent if script.endswith(".sh") else None)


def main(argv: list[str]) -> int:
    if not argv:
        return max(_run(SCRIPTS["models"], args) for args in README_TABLE)
    name, rest = argv[0], argv[1:]
    if name in ("-h", "--help"):
        print(__doc__)
        return 0
    if name == "list":
        for key, script in SCRIPTS.items():
            print(f"{key:11s} {BENCHMARKS / script}")
        return 0
    if name not in SCRIPTS:
        print(f"fluxseg bench: error: unknown benchmark {name!r}; choose from: {', '.join(SCRIPTS)}, list "
              "(or no argument for the README table)", file=sys.stderr)
        return 2
    return _run(SCRIPTS[name], rest)
