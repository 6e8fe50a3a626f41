"""Throughput of fluxseg's train step: one device vs the pmap / jit wrappers, f32 vs bf16.

    python benchmarks/train_step.py [--model unet] [--model-kwargs '{"features": 8, "padding": "same"}']
        [--task segmentation|classification] [--frozen '["^vgg16/"]']
        [--size 64,64] [--classes 6] [--batch 16] [--steps 10] [--reps 5]
        [--parallel single,jit,pmap] [--dtype float32,bfloat16] [--json out.json]

Measures fluxseg.train.step.train_step itself (uint8 preprocessing on
device, masked loss, psum of gradients, optimiser update, metrics), fed
device-resident batches, so the numbers leave out the input pipeline; the
loop's own images/s (with the pipeline) is in each run's metrics.jsonl.
img/s = batch / seconds per step, median over --reps repetitions of --steps
steps each (after one compile step). On CPU, fake several devices with
XLA_FLAGS=--xla_force_host_platform_device_count=N to see the wrappers'
overhead (they then share the same cores, so expect no speed-up).
--frozen sets config.optim.frozen (a JSON list of regexes; '[]' trains
everything); left out, the model's own frozen part stays frozen, e.g. the
hybrid's VGG16, whose backward pass the step then does not build.
"""
from __future__ import annotations

import argparse
import functools
import json
import statistics
import time

from fluxseg.runtime import cpu_process

if __name__ == "__main__":
    cpu_process.reexec()  # glibc's malloc settings, as launch.py runs; before JAX loads

import jax
import numpy as np

from fluxseg.runtime.backend import donate_argnums, jit
from fluxseg.train import build, config as config_lib, parallel
from fluxseg.train import step as S


def _config(args, dtype):
    frozen = None if args.frozen is None else tuple(json.loads(args.frozen))
    return config_lib.from_values(dict(
        model=args.model, model_kwargs=json.loads(args.model_kwargs), num_classes=args.classes,
        loss="softmax_ce", dtype=dtype, preprocess="unit",
        num_train_steps=1000, optim=dict(name="sgd", learning_rate=0.01, momentum=0.9,
                                         schedule="constant", frozen=frozen)))


def _batch(args, h, w):
    rng = np.random.RandomState(0)
    batch = {"image": rng.randint(0, 256, (args.batch, h, w, 3)).astype(np.uint8)}
    if args.task == "classification":
        batch["label"] = rng.randint(0, args.classes, (args.batch,)).astype(np.int32)
    else:
        batch["mask"] = rng.randint(0, args.classes, (args.batch, h, w)).astype(np.int32)
    return batch


def _time(step_fn, state, batch, steps, reps):
    state, m = step_fn(state, batch)          # compile
    jax.block_until_ready(m)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(steps):
            state, m = step_fn(state, batch)
        jax.block_until_ready(m)
        times.append((time.perf_counter() - t) / steps)
    return times


def run(args, mode, dtype):
    h, w = (int(v) for v in args.size.split(","))
    batch = _batch(args, h, w)
    cfg = _config(args, dtype)
    if mode == "single":
        spec = build.step_spec(cfg)
        state = jit(lambda s: S.init_state(spec.model, spec.tx, s, (h, w, 3), "rbg"))(0)
        step_fn = jit(functools.partial(S.train_step, spec=spec), donate_argnums=donate_argnums(0))
        batch = jax.device_put(batch)
    else:
        dp = parallel.DataParallel(mode)
        spec = build.step_spec(cfg, axis_name=dp.axis_name)
        state = dp.init(lambda s: S.init_state(spec.model, spec.tx, s, (h, w, 3), "rbg"), 0)
        step_fn = dp.train_step(functools.partial(S.train_step, spec=spec))
        batch = dp.put_batch(batch)
    times = _time(step_fn, state, batch, args.steps, args.reps)
    med = statistics.median(times)
    return {"mode": mode, "dtype": dtype, "devices": 1 if mode == "single" else jax.device_count(),
            "img_s": args.batch / med, "img_s_min": args.batch / max(times),
            "img_s_max": args.batch / min(times)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="unet")
    p.add_argument("--model-kwargs", default='{"features": 8, "padding": "same"}')
    p.add_argument("--task", choices=("segmentation", "classification"), default="segmentation")
    p.add_argument("--frozen", default=None, help="JSON list of regexes for config.optim.frozen")
    p.add_argument("--size", default="64,64")
    p.add_argument("--classes", type=int, default=6)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--parallel", default="single,jit,pmap")
    p.add_argument("--dtype", default="float32,bfloat16")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    rows = [run(args, m, d) for d in args.dtype.split(",") for m in args.parallel.split(",")]
    print(f"{args.model} {args.model_kwargs} frozen {args.frozen or 'model default'} batch {args.batch} "
          f"size {args.size} on {jax.device_count()} x {jax.devices()[0].platform}")
    print(f"{'mode':8} {'dtype':9} {'devices':>7} {'img/s':>9}  (min-max)")
    for r in rows:
        print(f"{r['mode']:8} {r['dtype']:9} {r['devices']:7d} {r['img_s']:9.1f}  "
              f"({r['img_s_min']:.1f}-{r['img_s_max']:.1f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
