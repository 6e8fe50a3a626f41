"""What data.augment_on='device' costs the accelerator: augmentation and uint8 transfer against the step.

    python benchmarks/device_augment_cost.py [--cases voc,rrc] [--steps 30] [--reps 5] [--device gpu]
    python benchmarks/device_augment_cost.py --small --device cpu     # a quick dry run of the script

Cases (the issue's two recipes, the batches the host would send):
  voc: fcn_resnet18 (21 classes), batch 32, 320x480 crops from uint8 windows padded to a 500x500
       bucket (VOC's largest image), uint8 masks, rescale + crop + flip + colour jitter on device.
  rrc: resnet50 (1000 classes), batch 256, 224x224 uint8 crops (random-resized-crop made on the
       host), flip on device.
  default: experiments/default.py's U-Net, batch 16, 64x64 (flip only): on a CPU, what device
       augmentation would add to that step (the CPU default of data.augment_on is 'host').
Per case, medians over --reps, each of --steps steps, blocked on at the end:
  aug ms:       fluxseg.data.device_augment alone, on a device-resident host batch;
  step ms:      the train step on device-resident, already-augmented batches (the synthetic rate);
  fed step ms:  the train step with the augmentation fused in, fed a fresh host (numpy) batch every
                step through DataParallel.prefetch (device_put two steps ahead: the copy overlaps);
  overhead:     fed / step - 1, what the device path adds to a step (the issue's target: <= 10%).
Host batches are random pixels with random draws; the device's cost does not depend on the values.
Imports no TensorFlow (the GPU hosts have none).
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import pathlib
import statistics
import time

import numpy as np

CASES = {
    "voc": dict(model="fcn_resnet18", classes=21, batch=32, crop=(320, 480), bucket=(500, 500),
                task="segmentation", resample=True, jitter=True),
    "rrc": dict(model="resnet50", classes=1000, batch=256, crop=(224, 224), bucket=None,
                task="classification", resample=False, jitter=False),
    # experiments/default.py's U-Net on 64x64 crops that are the whole image: flip only.
    "default": dict(model="unet", model_kwargs={"features": 8, "padding": "same", "norm": "batch"},
                    classes=6, batch=16, crop=(64, 64), bucket=None, task="segmentation",
                    resample=False, jitter=False),
}
SMALL = {"voc": dict(model="fcn_resnet18", batch=2, crop=(64, 96), bucket=(100, 100)),
         "rrc": dict(model="resnet18", batch=4, crop=(64, 64)), "default": {}}


def host_batch(rng, case) -> dict:
    """One host batch as fluxseg.data.train_crop sends it (augment_on='device')."""
    b, (ch, cw) = case["batch"], case["crop"]
    bh, bw = case["bucket"] or case["crop"]
    out = {"image": rng.integers(0, 256, (b, bh, bw, 3), dtype=np.uint8)}
    ints = np.zeros((b, 9), np.int32)
    if case["resample"]:
        # Scale s in [0.5, 2]: the crop covers crop / s of the image, at most the bucket.
        s = rng.uniform(0.5, 2.0, b)
        wh, ww = np.minimum(np.round(ch / s), bh), np.minimum(np.round(cw / s), bw)
        eh, ew = np.minimum(np.round(wh * s), ch), np.minimum(np.round(ww * s), cw)
        ints[:, 0], ints[:, 2] = (ch - eh) // 2, (cw - ew) // 2
        ints[:, 1], ints[:, 3] = ints[:, 0] + eh, ints[:, 2] + ew
        ints[:, 6], ints[:, 7] = wh, ww
    else:
        ints[:, [1, 6]], ints[:, [3, 7]] = ch, cw
        ints[:, 0] = ints[:, 2] = 0
    ints[:, 8] = rng.integers(0, 2, b)
    out["aug_ints"] = ints
    out["aug_floats"] = rng.uniform(0.8, 1.2, (b, 3)).astype(np.float32)
    if case["task"] == "segmentation":
        out["mask"] = rng.integers(0, case["classes"], (b, bh, bw)).astype(np.uint8)
    else:
        out["label"] = rng.integers(0, case["classes"], (b,)).astype(np.int32)
    return out


def _timed(fn, reps: int) -> float:
    """Median ms of fn() (which blocks on its result) over reps."""
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def run_case(name: str, case: dict, steps: int, reps: int, dtype: str) -> dict:
    import jax
    from fluxseg.data import device_augment
    from fluxseg.runtime.backend import donate_argnums, jit
    from fluxseg.train import build, step as S
    from fluxseg.train import config as config_lib
    from fluxseg.train.parallel import DataParallel

    c = config_lib.from_values(dict(
        model=case["model"], model_kwargs=case.get("model_kwargs", {}), num_classes=case["classes"],
        data=dict(task=case["task"]), loss="softmax_ce",
        preprocess="unit", dtype=dtype, num_train_steps=10,
        optim=dict(name="sgd", learning_rate=0.01, momentum=0.9)))
    dp = DataParallel("jit")
    augment = functools.partial(device_augment.augment, crop=case["crop"], resample=case["resample"],
                                jitter=case["jitter"], ignore_index=255)
    spec = build.step_spec(c, axis_name=dp.axis_name)
    fed_spec = dataclasses.replace(spec, augment=augment)
    state = dp.init(functools.partial(S.init_state, spec.model, spec.tx, image_shape=(*case["crop"], 3),
                                      rng_impl="rbg"), np.int32(0))
    rng = np.random.default_rng(0)
    ring = [host_batch(rng, case) for _ in range(3)]

    aug = jax.jit(augment)
    resident_in = dp.put_batch(ring[0])
    resident = jax.block_until_ready(aug(resident_in))
    resident = {k: v for k, v in resident.items() if k in ("image", "mask", "label")}
    aug_ms = _timed(lambda: jax.block_until_ready(aug(resident_in)), reps)

    plain = dp.train_step(functools.partial(S.train_step, spec=spec))
    fed = dp.train_step(functools.partial(S.train_step, spec=fed_spec))

    def resident_steps():
        nonlocal state
        for _ in range(steps):
            state, m = plain(state, resident)
        jax.block_until_ready(m)

    def fed_steps():
        nonlocal state
        for batch in dp.prefetch(ring[i % len(ring)] for i in range(steps)):
            state, m = fed(state, batch)
        jax.block_until_ready(m)

    state, m = plain(state, resident)            # compile both, untimed
    state, m = fed(state, dp.put_batch(ring[0]))
    jax.block_until_ready(m)
    step_ms, fed_ms = [], []
    for _ in range(reps):                        # interleaved: A B A B
        step_ms.append(_timed(resident_steps, 1) / steps)
        fed_ms.append(_timed(fed_steps, 1) / steps)
    step, fed_step = statistics.median(step_ms), statistics.median(fed_ms)
    nbytes = sum(v.nbytes for v in ring[0].values())
    f32_bytes = case["batch"] * case["crop"][0] * case["crop"][1] * 3 * 4
    return {"case": name, "model": case["model"], "batch": case["batch"], "dtype": dtype,
            "device": str(jax.devices()[0]), "aug_ms": round(aug_ms, 3), "step_ms": round(step, 3),
            "fed_step_ms": round(fed_step, 3), "aug_share_of_step": round(aug_ms / step, 4),
            "overhead": round(fed_step / step - 1, 4), "host_batch_mb": round(nbytes / 2**20, 1),
            "float32_crops_mb": round(f32_bytes / 2**20, 1),
            "step_img_s": round(case["batch"] / step * 1e3, 1),
            "fed_img_s": round(case["batch"] / fed_step * 1e3, 1)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="voc,rrc")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--device", default="gpu", help="gpu | cpu (JAX_PLATFORMS)")
    p.add_argument("--small", action="store_true", help="tiny sizes: a dry run of the script")
    p.add_argument("--json")
    args = p.parse_args(argv)
    import os
    os.environ.setdefault("JAX_PLATFORMS", "cuda" if args.device == "gpu" else args.device)
    rows = []
    for name in args.cases.split(","):
        case = {**CASES[name], **(SMALL[name] if args.small else {})}
        row = run_case(name, case, args.steps, args.reps, args.dtype)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=1))
    print(table(rows))


def table(rows) -> str:
    lines = ["", "| case | model, batch | aug ms | step ms (resident) | fed step ms | aug / step "
             "| fed overhead |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['model']}, {r['batch']} {r['dtype']} | {r['aug_ms']} | "
              f"{r['step_ms']} | {r['fed_step_ms']} | {r['aug_share_of_step']:.1%} | "
              f"{r['overhead']:+.1%} |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
