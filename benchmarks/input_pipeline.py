"""Images per second of the input pipeline, per CPU core, beside plain tf.data doing the same work.

    fluxseg bench input [--cases rrc,voc,isbi,default] [--rounds 3] [--within-epoch] [--step MODEL]
                        [--data photo|clean] [--memory-epochs N] [--json out.json]
    (= python benchmarks/input_pipeline.py ..., but under fluxseg's malloc settings: see
    benchmarks/README.md, "Malloc settings matter here")

Cases (data: benchmarks/_photos.py, cut from photographs, cached on first use):
  rrc:     ImageNet-like JPEG folder (fluxseg_image_folder, 2048 images):
           random-resized-crop 224, flip; batch 128.
  voc:     VOC-like JPEG + palette PNG folder (fluxseg_segmentation_folder,
           1024 pairs): scale 0.5-2, 320x480 crop, flip, colour jitter 0.2; batch 32.
  isbi:    512x512 ISBI-like slices (fluxseg_isbi2012): border weight map,
           elastic deformation, 92 px mirrored context, 572 crop, flip; batch 1.
  default: experiments/default.py's data (fluxseg_shapes 64x64, cached); batch 16.

Each case runs fluxseg's train_iterator (augment_on='host', and 'device':
then the host only decodes and the batches still need the device's
augmentation) and the plain tf.data reference (benchmarks/_input_refs.py),
interleaved A B A B over --rounds rounds in one process; the table gives
medians. For rrc a fourth side, the reference stopped after
`decode_and_crop_jpeg`, gives the floor: the decode of the boxes alone.

Per core: images / CPU-seconds of this process (every thread of it), so the
figure does not depend on how many cores the machine has or how busy it is
with other work. Each measurement builds a fresh iterator, takes a few
batches (start-up and full buffers), then times about two epochs of the
benchmark data (`steady`), epoch restarts included; the iterator is closed
and the process must be idle for 0.2 s before the next (a closed
pipeline's threads wind down on timers). Wall img/s (all cores) is printed
too. --step MODEL also times MODEL's train step on synthetic batches on
this machine's JAX device and names the bottleneck.
"""
from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _input_refs as refs  # noqa: E402
import _photos  # noqa: E402

# case -> (batch size, batches each measurement times: two epochs of the benchmark data)
CASES = {"rrc": (128, 32), "voc": (32, 64), "isbi": (1, 50), "default": (16, 250)}


def _settle(window=0.2, limit=3.0) -> None:
    """Waits (up to `limit` s) until this process has used < 5% of a core for `window` s:
    threads of the iterator closed before (tf.data's autotuner winds down on a timer) must
    not charge their last work to the next measurement."""
    end = time.time() + limit
    while time.time() < end:
        cpu = time.process_time()
        time.sleep(window)
        if time.process_time() - cpu < 0.05 * window:
            return


WARM_BATCHES = 4  # taken before the clock starts: the pipeline is built and its buffers full


def steady(make, batches: int, batch: int) -> dict:
    """img/s of a running iterator over `batches` batches (about two epochs of the
    benchmark folders), after WARM_BATCHES: per core = images / CPU-seconds of this
    process (every thread), wall = images / seconds.

    Start-up is left out; epoch restarts are in, at the folders' frequency. The
    pipeline's read-ahead is about the same when the clock starts and stops, so
    it cancels (to within a few batches of the `batches`).
    """
    gc.collect()
    _settle()
    it = make()
    for _ in range(WARM_BATCHES):
        next(it)
    cpu0, t0 = time.process_time(), time.perf_counter()
    for _ in range(batches):
        next(it)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    if hasattr(it, "close"):
        it.close()
    del it
    n = batches * batch
    return {"per_core": n / cpu, "wall": n / wall}


def _folder_cfg(kind: str, n: int, data_dir: str, style: str):
    import fluxseg.data as fd
    cfg = fd.default_config()
    cfg.data_dir = data_dir
    root = _photos.folder(kind, n, style=style)
    if kind == "imagenet":
        cfg.update(name="fluxseg_image_folder", task="classification", manual_dir=root,
                   crop_size=(224, 224), random_resized_crop=True, hflip=True,
                   validation_fraction=0.0)
    else:
        cfg.update(name="fluxseg_segmentation_folder", manual_dir=root, crop_size=(320, 480),
                   scale_range=(0.5, 2.0), hflip=True, color_jitter=(0.2, 0.2, 0.2),
                   validation_fraction=0.0)
    return cfg, root


def setup(case: str, cache: str, style: str = "photo"):
    """(fluxseg data config, reference iterator factory, data description) of a case."""
    import fluxseg.data as fd
    data_dir = os.path.join(cache, "tfds")
    batch = CASES[case][0]
    if case == "rrc":
        cfg, root = _folder_cfg("imagenet", 2048, data_dir, style)
        return cfg, lambda: refs.random_resized_crop(root, batch), _photos.describe(root)
    if case == "voc":
        cfg, root = _folder_cfg("voc", 1024, data_dir, style)
        return cfg, lambda: refs.voc_recipe(root, batch), _photos.describe(root)
    cfg = fd.default_config()
    cfg.data_dir = data_dir
    if case == "isbi":
        from fluxseg.data.isbi import fixture
        manual = os.path.join(cache, "isbi512")
        if not os.path.exists(os.path.join(manual, "test-volume.tif")):
            fixture.write_isbi(manual, size=(512, 512))
        cfg.update(name="fluxseg_isbi2012", manual_dir=manual, crop_size=(572, 572),
                   mirror_margin=92, elastic_sigma=10.0, elastic_grid=3, border_weight_w0=10.0,
                   border_weight_sigma=5.0, hflip=True, cache=True)
        return cfg, lambda: refs.isbi_recipe(manual, batch), {"images": 25, "hw": [512, 512]}
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                    "experiments"))
    import default as default_experiment
    cfg = default_experiment.get_config().data
    cfg.data_dir = data_dir
    return cfg, lambda: refs.shapes_recipe(data_dir, batch), {"images": 2000, "hw": [64, 64]}


def fluxseg_iterator(cfg, batch: int, augment_on: str = "host"):
    """fluxseg's training iterator with data.augment_on set (left unset where the
    checkout has no such key: the baseline before the device path)."""
    import fluxseg.data as fd
    if "augment_on" in cfg:
        cfg = cfg.copy_and_resolve_references()
        cfg.augment_on = augment_on
    return fd.train_iterator(cfg, global_batch_size=batch, seed=0, process_index=0,
                             process_count=1)


def run_case(case: str, rounds: int, cache: str, within_epoch: bool = False,
             style: str = "photo") -> dict:
    import fluxseg.data as fd
    batch, k = CASES[case]
    cfg, make_ref, data = setup(case, cache, style)
    if within_epoch:  # the timed batches all inside fluxseg's first epoch: no restart
        k = data["images"] // batch - WARM_BATCHES - 2
    fd.info(cfg)  # prepares the dataset (not timed)
    sides = {"fluxseg": lambda: fluxseg_iterator(cfg, batch)}
    if "augment_on" in cfg and not (cfg.mirror_margin or cfg.elastic_sigma):
        # This checkout has the device path and the recipe can take it: time its host side.
        sides["fluxseg_device_host_side"] = lambda: fluxseg_iterator(cfg, batch, "device")
    sides["tf.data"] = make_ref
    if case == "rrc":  # the decode alone: what no pipeline of this recipe can go below
        sides["tf.data_decode_only"] = lambda: refs.random_resized_crop(cfg.manual_dir, batch,
                                                                        decode_only=True)
    for make in sides.values():  # warm-up: file cache, tracing caches
        steady(make, 1, batch)
    runs = {name: [] for name in sides}
    for _ in range(rounds):
        for name, make in sides.items():
            runs[name].append(steady(make, k, batch))
    row = {"case": case, "batch": batch, "images_timed": k * batch, "data": data}
    for name, rs in runs.items():
        row[name] = {key: round(statistics.median([r[key] for r in rs if r[key] == r[key]] or [0]), 1)
                     for key in rs[0]}
        row[name]["per_core_all"] = [round(r["per_core"], 1) for r in rs]
    ref = row["tf.data"]["per_core"]
    for name in runs:
        if name not in ("tf.data", "tf.data_decode_only"):
            row[f"{name}/tf.data"] = round(row[name]["per_core"] / ref, 3)
    return row


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_over_epochs(case: str, epochs: int, cache: str, style: str = "photo") -> list[float]:
    """Resident memory (MiB) of this process after each of `epochs` epochs of fluxseg's
    host-mode iterator: flat when nothing is kept or fragmented from epoch to epoch."""
    batch = CASES[case][0]
    cfg, _, data = setup(case, cache, style)
    it = fluxseg_iterator(cfg, batch)
    out = []
    for _ in range(epochs):
        for _ in range(data["images"] // batch):
            next(it)
        out.append(round(_rss_mib(), 1))
    return out


def step_rate(model: str, case: str, batch: int, reps: int = 3) -> float:
    """img/s of MODEL's train step (fluxseg.train.step, SGD) on device-resident synthetic batches."""
    import jax
    from fluxseg.runtime.backend import donate_argnums, jit
    from fluxseg.train import build
    from fluxseg.train import config as config_lib
    from fluxseg.train import step as S
    size, classes, channels = {"rrc": ((224, 224), 1000, 3), "voc": ((320, 480), 21, 3),
                               "isbi": ((572, 572), 2, 1), "default": ((64, 64), 6, 3)}[case]
    task = "classification" if case == "rrc" else "segmentation"
    c = config_lib.from_values(dict(
        model=model, num_classes=classes, data=dict(task=task), loss="softmax_ce",
        preprocess="unit", num_train_steps=10,
        optim=dict(name="sgd", learning_rate=0.01, momentum=0.9)))
    spec = build.step_spec(c)
    state = S.init_state(spec.model, spec.tx, 0, (*size, channels), rng_impl="rbg")
    rng = np.random.default_rng(0)
    b = {"image": rng.integers(0, 256, (batch, *size, channels), dtype=np.uint8)}
    if task == "classification":
        b["label"] = rng.integers(0, classes, (batch,)).astype(np.int32)
    else:
        b["mask"] = rng.integers(0, classes, (batch, *size)).astype(np.int32)
    b = jax.device_put(b)
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


def _print_table(rows) -> None:
    print("\n| case | fluxseg img/s per core | tf.data img/s per core | fluxseg / tf.data "
          "| device path: host side per core (/ tf.data) |")
    print("|---|---|---|---|---|")
    for r in rows:
        dev = r.get("fluxseg_device_host_side")
        dev_s = f"{dev['per_core']} ({r['fluxseg_device_host_side/tf.data']})" if dev else "-"
        print(f"| {r['case']} (batch {r['batch']}) | {r['fluxseg']['per_core']} | "
              f"{r['tf.data']['per_core']} | {r['fluxseg/tf.data']} | {dev_s} |")
    for r in rows:
        if "tf.data_decode_only" in r:
            print(f"\n{r['case']}: the decode alone (tf.data, decode_and_crop_jpeg of the same boxes) "
                  f"runs at {r['tf.data_decode_only']['per_core']} img/s per core")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="rrc,voc,isbi,default")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--step", metavar="MODEL", help="also time this model's train step and name the bottleneck")
    p.add_argument("--step-batch", type=int, default=2, help="batch of the timed step (CPU: keep small)")
    p.add_argument("--cache", default=None, help="where the data is written (default: _photos.cache_root())")
    p.add_argument("--within-epoch", action="store_true",
                   help="time only batches inside the first epoch (a large dataset: no epoch "
                        "end among the timed batches)")
    p.add_argument("--data", choices=_photos.STYLES, default="photo",
                   help="rrc and voc folders: 'photo' (photograph-like, ImageNet's and VOC's sizes "
                        "and bytes a pixel) or 'clean' (the issue's first data: clean 375x500 "
                        "crops at quality 90, 40% of the bytes)")
    p.add_argument("--memory-epochs", type=int, metavar="N",
                   help="instead of timing: fluxseg's resident memory after each of N epochs")
    p.add_argument("--json")
    args = p.parse_args(argv)
    cache = args.cache or _photos.cache_root()
    os.environ.setdefault("FLUXSEG_BENCH_DATA", cache)
    import tensorflow_datasets as tfds
    from absl import logging as absl_logging
    tfds.disable_progress_bar()
    absl_logging.set_verbosity(absl_logging.ERROR)  # tfds' per-dataset "custom data configuration"
    if args.memory_epochs:
        for case in args.cases.split(","):
            rss = memory_over_epochs(case, args.memory_epochs, cache, args.data)
            print(f"{case}: resident MiB after each epoch: {rss}", flush=True)
        return
    rows = []
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}; fluxseg from {_fluxseg_path()}; malloc: "
          f"{os.environ.get('GLIBC_TUNABLES') or 'glibc defaults'}", flush=True)
    for case in args.cases.split(","):
        row = run_case(case, args.rounds, cache, args.within_epoch, args.data)
        if args.step:
            import jax
            row["step"] = {"model": args.step, "batch": args.step_batch, "device": str(jax.devices()[0]),
                           "img_s": round(step_rate(args.step, case, args.step_batch), 2)}
            pipe = row["fluxseg"]["wall"]
            row["bottleneck"] = "input pipeline" if pipe < row["step"]["img_s"] else "train step"
            print(f"{case}: pipeline {pipe} img/s (all {os.cpu_count()} cores) vs {args.step} step "
                  f"{row['step']['img_s']} img/s on {row['step']['device']}: the {row['bottleneck']} "
                  "is the bottleneck", flush=True)
        rows.append(row)
        print(json.dumps(row), flush=True)
    _print_table(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


def _fluxseg_path() -> str:
    import fluxseg
    return os.path.dirname(os.path.abspath(fluxseg.__file__))


if __name__ == "__main__":
    main()
