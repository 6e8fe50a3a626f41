"""How much a learned result moves with the seed and the CPU's instruction set.

XLA compiles different code for different instruction sets (SSE4.2, AVX2,
AVX-512), so the float trajectory of a training run, and the mIoU it ends at,
differs from machine to machine even with the same seed. A test that asserts
a learned result must take its bound from this spread, not from one run.

    python benchmarks/learning_spread.py --seeds 0,1,2,3,4 --isa native,SSE4_2 \
        --steps 600,1500 --out runs/learning_spread.jsonl

runs `python launch.py` (the default experiment) once per (steps, isa, seed)
with `--config.seed=S --config.num_train_steps=N`, `XLA_FLAGS=--xla_cpu_max_isa=ISA`
('native' = no cap: the best the CPU has), appends each final eval summary to
--out (a rerun skips the combinations already there), and prints, per
(steps, isa) and over all instruction sets, the validation mIoU as
mean ± std (min–max). Extra `--config.KEY=VALUE` arguments pass through, to
measure a recipe change before making it the default.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(seed: int, steps: int, isa: str, overrides: list[str], cache_root: str) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               # A separate compilation cache per instruction set, so that no run
               # executes code compiled under another ISA cap.
               JAX_COMPILATION_CACHE_DIR=os.path.join(cache_root, isa),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    env["XLA_FLAGS"] = " ".join(f for f in [os.environ.get("XLA_FLAGS", ""),
                                            "" if isa == "native" else f"--xla_cpu_max_isa={isa}"] if f)
    with tempfile.TemporaryDirectory(prefix="fluxseg-spread-") as workdir:
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "launch.py", "--workdir", workdir, "--config.progress_bar=False",
             f"--config.seed={seed}", f"--config.num_train_steps={steps}", *overrides],
            cwd=REPO, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"seed {seed}, {steps} steps, isa {isa} failed:\n{proc.stderr[-3000:]}")
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    return {"seed": seed, "steps": steps, "isa": isa, "overrides": overrides,
            "mIoU": summary["mIoU"], "pixel_accuracy": summary.get("pixel_accuracy"),
            "wall_s": round(wall, 1)}


def describe(values: list[float]) -> str:
    """'mean ± std (min–max), n=N' (sample standard deviation)."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return (f"{statistics.mean(values):.3f} ± {std:.3f} "
            f"({min(values):.3f}–{max(values):.3f}), n={len(values)}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--isa", default="native,SSE4_2", help="comma list: native, SSE4_2, AVX, AVX2, AVX512, ...")
    p.add_argument("--steps", default="600,1500")
    p.add_argument("--out", default=os.path.join(REPO, "runs", "learning_spread.jsonl"))
    p.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "fluxseg-spread-cache"))
    args, overrides = p.parse_known_args(argv)
    bad = [o for o in overrides if not o.startswith("--config.")]
    if bad:
        p.error(f"unknown arguments {bad}; only --config.KEY=VALUE overrides pass through to launch.py")

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    done = []
    if os.path.exists(args.out):
        with open(args.out) as f:
            done = [json.loads(line) for line in f if line.strip()]
    key = lambda r: (r["seed"], r["steps"], r["isa"], tuple(r["overrides"]))  # noqa: E731
    have = {key(r) for r in done}
    for steps in (int(s) for s in args.steps.split(",")):
        for isa in args.isa.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                if (seed, steps, isa, tuple(overrides)) in have:
                    continue
                r = _run(seed, steps, isa, overrides, args.cache)
                print(json.dumps(r), flush=True)
                with open(args.out, "a") as f:
                    f.write(json.dumps(r) + "\n")
                done.append(r)

    rows = [r for r in done if tuple(r["overrides"]) == tuple(overrides)]
    print(f"\nvalidation mIoU, {' '.join(overrides) or 'the default recipe'}:")
    for steps in sorted({r["steps"] for r in rows}):
        for isa in sorted({r["isa"] for r in rows}):
            vals = [r["mIoU"] for r in rows if r["steps"] == steps and r["isa"] == isa]
            if vals:
                print(f"  {steps:>5} steps  {isa:<8} {describe(vals)}")
        print(f"  {steps:>5} steps  all      {describe([r['mIoU'] for r in rows if r['steps'] == steps])}")


if __name__ == "__main__":
    main()
