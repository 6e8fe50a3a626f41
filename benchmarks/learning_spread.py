"""How much a learned result moves with the seed and the CPU's instruction set.

XLA compiles different code for different instruction sets (SSE4.2, AVX2,
AVX-512), so the float trajectory of a training run, and the mIoU it ends at,
differs from machine to machine even with the same seed. A test that asserts
a learned result must take its bound from this spread, not from one run.

    python benchmarks/learning_spread.py --seeds 0,1,2,3,4 --isa native,SSE4_2 \
        --steps 600,1500 --out runs/learning_spread

runs one `fluxseg sweep` of the default experiment per instruction set, over
the seeds and `--grid num_train_steps=...`, in `--out/<isa>/` with
`XLA_FLAGS=--xla_cpu_max_isa=ISA` ('native' = no cap: the best the CPU has)
and a compilation cache of its own (no run executes code compiled under
another cap). The sweep keeps each run's workdir and resumes: a rerun trains
only what is missing. It prints, per (steps, isa) and over all instruction
sets, the validation mIoU as mean ± std (min–max). Extra `--config.KEY=VALUE`
arguments pass through, to measure a recipe change before making it the
default (give it its own --out).

The instruction set is not a config key but the environment of the runs,
hence one sweep per instruction set rather than one `--grid`.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from fluxseg.sweep import runs as runs_lib, stats  # noqa: E402


def _sweep(isa: str, seeds: str, steps: str, root: str, overrides: list[str], cache_root: str) -> int:
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               JAX_COMPILATION_CACHE_DIR=os.path.join(cache_root, isa),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    env["XLA_FLAGS"] = " ".join(f for f in [os.environ.get("XLA_FLAGS", ""),
                                            "" if isa == "native" else f"--xla_cpu_max_isa={isa}"] if f)
    return subprocess.call(
        [sys.executable, "-m", "fluxseg.cli", "sweep", "--config", "experiments/default.py",
         "--seeds", seeds, "--grid", f"num_train_steps={steps}", "--workdir", root, *overrides],
        cwd=REPO, env=env)


def _results(root: str) -> list[tuple[int, float]]:
    """(steps, final mIoU) of each finished run of a sweep directory."""
    out = []
    for r in runs_lib.load_sweep(root)["runs"]:
        st = runs_lib.status(os.path.join(root, r.path))
        if st.state == runs_lib.FINISHED:
            out.append((int(st.total), float(st.final["mIoU"])))
    return out


def describe(values: list[float]) -> str:
    """'mean ± std (min–max), n=N' (sample standard deviation)."""
    s = stats.summary(values)
    if s["std"] is None:
        return f"{s['mean']:.3f}, n=1"
    return f"{s['mean']:.3f} ± {s['std']:.3f} ({s['min']:.3f}–{s['max']:.3f}), n={s['n']}"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--isa", default="native,SSE4_2", help="comma list: native, SSE4_2, AVX, AVX2, AVX512, ...")
    p.add_argument("--steps", default="600,1500")
    p.add_argument("--out", default=os.path.join(REPO, "runs", "learning_spread"))
    p.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "fluxseg-spread-cache"))
    args, overrides = p.parse_known_args(argv)
    bad = [o for o in overrides if not o.startswith("--config.")]
    if bad:
        p.error(f"unknown arguments {bad}; only --config.KEY=VALUE overrides pass through to the runs")

    rows = {}
    for isa in args.isa.split(","):
        root = os.path.join(os.path.abspath(args.out), isa)
        code = _sweep(isa, args.seeds, args.steps, root, overrides, args.cache)
        if code not in (0, 1):  # 1: some run failed (listed above); the others still count
            raise SystemExit(f"the sweep for {isa} could not start (exit status {code})")
        rows[isa] = _results(root)

    print(f"\nvalidation mIoU, {' '.join(overrides) or 'the default recipe'}:")
    for steps in sorted({s for r in rows.values() for s, _ in r}):
        for isa, results in sorted(rows.items()):
            vals = [v for s, v in results if s == steps]
            if vals:
                print(f"  {steps:>5} steps  {isa:<8} {describe(vals)}")
        print(f"  {steps:>5} steps  all      {describe([v for r in rows.values() for s, v in r if s == steps])}")


if __name__ == "__main__":
    main()
