"""Images/s of the input pipeline alone vs what the train step consumes.

    python benchmarks/input_pipeline.py [--cases voc,isbi] [--batches 20] [--step-batch 2]
        [--no-step] [--json out.json]

voc:  a VOC-like segmentation folder (JPEG 375x500 + palette PNG masks of 21
      classes, 64 images) through fluxseg_segmentation_folder with the FCN
      recipe's augmentation: scale 0.5-2, 320x480 crops, flips, colour jitter;
      batch 32. Train step: fcn_resnet18 (width 64, 21 classes) at 320x480.
isbi: generated 512x512 ISBI-like TIFF stacks (30 slices) through
      fluxseg_isbi2012 with the U-Net recipe: border weight map, elastic
      deformation (3x3 grid, sigma 10), 92 px mirrored context, 572 crops,
      flips; batch 1 as in the paper. Train step: unet (width 64, valid).
The pipeline is timed after its first batch (tf.data warm-up, dataset
preparation excluded); the step after its compile, on device-resident
batches of --step-batch images (the step's img/s hardly depends on the
batch size once the device is busy; on a 2-core CPU small batches keep the
run short). The pipeline keeps up when its img/s exceeds the step's.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import tempfile
import time

import numpy as np


def _voc_folder(root, n=64, seed=0):
    from PIL import Image
    rng = np.random.default_rng(seed)
    os.makedirs(f"{root}/images", exist_ok=True)
    os.makedirs(f"{root}/masks", exist_ok=True)
    palette = [v for i in range(256) for v in (i, (37 * i) % 256, (91 * i) % 256)]
    for i in range(n):
        base = rng.integers(0, 256, (47, 63, 3), dtype=np.uint8)  # smooth-ish photo content
        image = Image.fromarray(base).resize((500, 375), Image.BILINEAR)
        image.save(f"{root}/images/{i:04d}.jpg", quality=90)
        mask = rng.integers(0, 21, (12, 16), dtype=np.uint8)
        m = Image.fromarray(mask, mode="P").resize((500, 375), Image.NEAREST)
        m.putpalette(palette)
        m.save(f"{root}/masks/{i:04d}.png")


def _data_cfg(case, tmp):
    import fluxseg.data as fd
    cfg = fd.default_config()
    cfg.data_dir = f"{tmp}/tfds"
    if case == "voc":
        _voc_folder(f"{tmp}/voc")
        cfg.update(name="fluxseg_segmentation_folder", manual_dir=f"{tmp}/voc",
                   crop_size=(320, 480), scale_range=(0.5, 2.0), hflip=True,
                   color_jitter=(0.2, 0.2, 0.2), validation_fraction=0.1)
        return cfg, 32
    from fluxseg.data.isbi import fixture
    fixture.write_isbi(f"{tmp}/isbi", size=(512, 512))
    cfg.update(name="fluxseg_isbi2012", manual_dir=f"{tmp}/isbi", crop_size=(572, 572),
               mirror_margin=92, elastic_sigma=10.0, elastic_grid=3, border_weight_w0=10.0,
               border_weight_sigma=5.0, hflip=True, cache=True)
    return cfg, 1


def pipeline_rate(cfg, batch, batches):
    import fluxseg.data as fd
    fd.info(cfg)  # prepares the dataset (not timed)
    it = fd.train_iterator(cfg, global_batch_size=batch, seed=0, process_index=0, process_count=1)
    next(it)
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch / (time.perf_counter() - t)


def step_rate(case, batch, reps=3):
    import jax
    from fluxseg.train import config as config_lib
    from fluxseg.train import build
    from fluxseg.runtime.backend import donate_argnums, jit
    from fluxseg.train import step as S
    if case == "voc":
        model, kw, size, classes = "fcn_resnet18", {}, (320, 480), 21
    else:
        model, kw, size, classes = "unet", {"features": 64, "padding": "valid"}, (572, 572), 2
    c = config_lib.from_values(dict(
        model=model, model_kwargs=kw, num_classes=classes,
        loss="softmax_ce", dtype="float32", preprocess="unit", num_train_steps=10,
        optim=dict(name="sgd", learning_rate=0.01, momentum=0.9, schedule="constant",
                   frozen=None)))
    spec = build.step_spec(c)
    channels = 3 if case == "voc" else 1
    state = S.init_state(spec.model, spec.tx, 0, (*size, channels), rng_impl="rbg")
    rng = np.random.default_rng(0)
    b = {"image": jax.device_put(rng.integers(0, 256, (batch, *size, channels), dtype=np.uint8)),
         "mask": jax.device_put(rng.integers(0, classes, (batch, *size)).astype(np.int32))}
    if case == "isbi":
        b["weight"] = jax.device_put(np.ones((batch, *size), np.float32))
    fn = jit(functools.partial(S.train_step, spec=spec), donate_argnums=donate_argnums(0))
    state, m = fn(state, b)
    jax.block_until_ready(m)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        state, m = fn(state, b)
        jax.block_until_ready(m)
        times.append(time.perf_counter() - t)
    return batch / float(np.median(times))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="voc,isbi")
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--step-batch", type=int, default=2)
    p.add_argument("--no-step", action="store_true")
    p.add_argument("--json")
    args = p.parse_args(argv)
    import jax
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases.split(","):
            cfg, batch = _data_cfg(case, f"{tmp}/{case}")
            row = {"case": case, "pipeline_batch": batch,
                   "pipeline_img_s": pipeline_rate(cfg, batch, args.batches)}
            if not args.no_step:
                row["step_batch"] = args.step_batch if case == "voc" else 1
                row["step_img_s"] = step_rate(case, row["step_batch"])
                row["device"] = jax.devices()[0].platform
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        json.dump(rows, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
