"""The hybrid's train step with its VGG16 frozen, three ways, interleaved in one process.

    python benchmarks/frozen_step.py [--size 96,96] [--batch 4] [--steps 3] [--reps 7] [--json out.json]

- **frozen**: the step as it is: the frozen VGG16 is a constant of the step,
  only the trainable parameters are differentiated (fluxseg/train/step.py).
- **stop_gradient**: the step before issue 20: the model cut the gradient
  with `jax.lax.stop_gradient` on VGG16's output and the step differentiated
  every parameter (the optimiser zeroed the frozen ones' updates). Rebuilt
  here by putting that stop_gradient back where hybrid.py had it (on the
  VGG16 map, before the x32 upsampling) while this variant is traced, and by
  giving its step no frozen patterns.
- **nothing frozen**: config.optim.frozen = [] (VGG16 trains as well): what
  the step would cost if it built the frozen part's backward pass.

fluxseg.train.step.train_step itself on one device-resident batch (SGD
momentum, softmax cross-entropy), as benchmarks/train_step.py times it; each
variant compiled once, then the variants take turns, --steps steps each, for
--reps rounds. img/s = batch / median seconds per step; ratios are of medians.
GFLOP: what XLA's cost analysis counts in the compiled step (no timing noise).
benchmarks/train_step.py --model hybrid_vgg16_resnet50 runs one variant per
process (e.g. against another checkout via PYTHONPATH).
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import statistics
import time
from unittest import mock

from fluxseg.runtime import cpu_process

if __name__ == "__main__":
    cpu_process.reexec()  # glibc's malloc settings, as launch.py runs; before JAX loads

import jax
import numpy as np

from fluxseg.models import hybrid
from fluxseg.runtime.backend import donate_argnums, jit
from fluxseg.train import build, config as config_lib
from fluxseg.train import step as S

VARIANTS = ("frozen", "stop_gradient", "nothing frozen")


def _spec(variant: str):
    cfg = config_lib.from_values(dict(
        model="hybrid_vgg16_resnet50", num_classes=10, data=dict(task="classification"), loss="softmax_ce",
        dtype="float32", preprocess="caffe", num_train_steps=1000,
        optim=dict(name="sgd", learning_rate=0.01, momentum=0.9, schedule="constant",
                   frozen=[] if variant == "nothing frozen" else None)))
    spec = build.step_spec(cfg)
    return dataclasses.replace(spec, frozen=()) if variant == "stop_gradient" else spec


def _compiled(variant: str, spec, state, batch):
    fn = jit(functools.partial(S.train_step, spec=spec), donate_argnums=donate_argnums(0))
    if variant != "stop_gradient":
        return fn.lower(state, batch).compile()
    upsample = hybrid.layers.upsample_nearest
    cut = lambda x, factor: upsample(jax.lax.stop_gradient(x), factor)  # noqa: E731
    with mock.patch.object(hybrid.layers, "upsample_nearest", cut):
        return fn.lower(state, batch).compile()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", default="96,96")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    h, w = (int(v) for v in args.size.split(","))
    rng = np.random.RandomState(0)
    batch = jax.device_put({"image": rng.randint(0, 256, (args.batch, h, w, 3)).astype(np.uint8),
                            "label": rng.randint(0, 10, (args.batch,)).astype(np.int32)})
    runs = {}
    for variant in VARIANTS:
        spec = _spec(variant)
        state = jit(lambda s: S.init_state(spec.model, spec.tx, s, (h, w, 3), "rbg"))(0)
        t = time.perf_counter()
        fn = _compiled(variant, spec, state, batch)
        compile_s = time.perf_counter() - t
        state, m = fn(state, batch)
        jax.block_until_ready(m)
        cost = fn.cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        runs[variant] = {"fn": fn, "state": state, "times": [], "compile_s": compile_s,
                         "gflop": float(cost.get("flops", float("nan"))) / 1e9}
    for _ in range(args.reps):
        for variant, r in runs.items():
            t = time.perf_counter()
            for _ in range(args.steps):
                r["state"], m = r["fn"](r["state"], batch)
            jax.block_until_ready(m)
            r["times"].append((time.perf_counter() - t) / args.steps)
    rows = []
    base = statistics.median(runs["frozen"]["times"])
    print(f"hybrid_vgg16_resnet50 {h}x{w}, batch {args.batch}, {jax.devices()[0].platform}; "
          f"medians of {args.reps} rounds of {args.steps} steps")
    print(f"{'variant':16} {'ms/step':>8} {'img/s':>7} {'÷ frozen':>9} {'GFLOP':>7} {'compile s':>10}")
    for variant, r in runs.items():
        med = statistics.median(r["times"])
        rows.append({"variant": variant, "ms_per_step": 1000 * med, "img_s": args.batch / med,
                     "time_vs_frozen": med / base, "gflop": r["gflop"], "compile_s": r["compile_s"],
                     "times": r["times"]})
        print(f"{variant:16} {1000 * med:8.0f} {args.batch / med:7.2f} {med / base:9.2f} {r['gflop']:7.1f} "
              f"{r['compile_s']:10.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
