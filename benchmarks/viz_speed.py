"""Grad-CAM and filter visualisation speed: fluxseg.viz next to the Keras recipe and torch.

    python benchmarks/viz_speed.py [--reps 3] [--cases gradcam,filters] [--loop-filters 4] [--json out.json]

Cases (random weights everywhere; no download):
  gradcam  VGG16 with top, 224x224, batch 8, map at block5_conv3 for each
           image's top class, ReLU, normalised, upsampled to 224x224.
           fluxseg: `viz.gradcam` (one jitted function). Keras: the DLwP
           listing 5.42 recipe with tf.GradientTape, eagerly as the book runs
           it and wrapped in tf.function. torch: autograd on a forward hook of
           torchvision's vgg16 `features[29]` (the pytorch-grad-cam recipe;
           the `grad-cam` package itself is not installed here).
  filters  64 filters of block3_conv1 at 150x150, 40 'dlwp' steps.
           fluxseg: `viz.filter_patterns`, all 64 filters as one batch, and one
           filter at a time (batch_size=1). Keras: the book's per-filter Python
           loop (listing 5.38, GradientTape, eager and tf.function step). torch: the same
           loop. The per-filter loops are timed on `--loop-filters` filters and
           scaled to 64: the loop does the same work for every filter, so the
           time is linear in the count (the table says which rows are scaled).
Each framework runs in its own process (TensorFlow and torch crash when
imported together). The first call (compilation, tracing) is never timed and
is reported separately. Results: medians over --reps, and ratios of medians
(peer time / fluxseg time: > 1 means fluxseg is faster).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import _common as C

PREFIX = "VIZ_BENCH "
BATCH, SIZE, TOP_LAYER = 8, 224, "block5_conv3"
F_LAYER = "block3_conv1"
F_SIZE, F_STEPS, F_COUNT = 150, 40, 64  # the case; --filter-* shrink it on a busy machine


def _timed(fn, reps):
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return first, times


def _emit(case, impl, first, times, scale=1.0, note=""):
    print(PREFIX + json.dumps({"case": case, "impl": impl, "first_s": first, "times_s": [t * scale for t in times], "scaled": scale != 1.0, "note": note}), flush=True)


# ----------------------------------------------------------------------------- jax
def _filter_case(args):
    global F_SIZE, F_STEPS, F_COUNT
    F_SIZE, F_STEPS, F_COUNT = args.filter_size, args.filter_steps, args.filter_count


def jax_worker(args):
    _filter_case(args)
    import jax
    import jax.numpy as jnp
    import numpy as np

    from fluxseg import models, viz
    from fluxseg.runtime.backend import jit

    rng = np.random.default_rng(0)
    if "gradcam" in args.cases:
        model = models.create("vgg16")
        x = jnp.asarray(rng.standard_normal((BATCH, SIZE, SIZE, 3)) * 50, jnp.float32)
        v = jit(lambda x: model.init(jax.random.key(0), x))(x[:1])
        first, times = _timed(lambda: viz.gradcam(model, v, x, TOP_LAYER, size=(SIZE, SIZE)).block_until_ready(), args.reps)
        _emit("gradcam", "fluxseg", first, times)
    if "filters" in args.cases:
        model = models.create("vgg16", include_top=False)
        v = jit(lambda x: model.init(jax.random.key(0), x))(jnp.zeros((1, 32, 32, 3)))
        first, times = _timed(lambda: viz.filter_patterns(model, v, F_LAYER, range(F_COUNT), size=F_SIZE, steps=F_STEPS), args.reps)
        _emit("filters", f"fluxseg ({F_COUNT} filters at once)", first, times)
        n = args.loop_filters
        first, times = _timed(lambda: viz.filter_patterns(model, v, F_LAYER, range(n), size=F_SIZE, steps=F_STEPS, batch_size=1), args.reps)
        _emit("filters", "fluxseg (batch_size=1)", first, times, F_COUNT / n, f"timed on {n} filters")


# ----------------------------------------------------------------------------- keras
def keras_worker(args):
    _filter_case(args)
    import keras
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    if "gradcam" in args.cases:
        vgg = keras.applications.VGG16(weights=None, classifier_activation=None)
        cam_model = keras.Model(vgg.inputs, [vgg.get_layer(TOP_LAYER).output, vgg.output])
        x = tf.constant(rng.standard_normal((BATCH, SIZE, SIZE, 3)) * 50, tf.float32)

        def recipe(x):
            with tf.GradientTape() as tape:
                acts, logits = cam_model(x)
                score = tf.reduce_max(logits, axis=1)  # each image's top class, before softmax
            grads = tape.gradient(score, acts)
            w = tf.reduce_mean(grads, axis=(1, 2))
            cam = tf.nn.relu(tf.einsum("bhwc,bc->bhw", acts, w))
            cam = cam / (tf.reduce_max(cam, axis=(1, 2), keepdims=True) + 1e-12)
            return tf.image.resize(cam[..., None], (SIZE, SIZE), "bilinear")

        first, times = _timed(lambda: recipe(x).numpy(), args.reps)
        _emit("gradcam", "Keras GradientTape (eager)", first, times)
        compiled = tf.function(recipe)
        first, times = _timed(lambda: compiled(x).numpy(), args.reps)
        _emit("gradcam", "Keras GradientTape (tf.function)", first, times)
    if "filters" in args.cases:
        base = keras.applications.VGG16(weights=None, include_top=False, input_shape=(None, None, 3))
        feat = keras.Model(base.inputs, base.get_layer(F_LAYER).output)

        def step(img, f):
            with tf.GradientTape() as tape:
                tape.watch(img)
                loss = tf.reduce_mean(feat(img)[:, :, :, f])
            g = tape.gradient(loss, img)
            return loss, g / (tf.sqrt(tf.reduce_mean(tf.square(g))) + 1e-5)

        def book_loop(step_fn, n):
            for f in range(n):  # listing 5.38: one filter, one image, 40 steps
                img = tf.constant(np.random.random((1, F_SIZE, F_SIZE, 3)) * 20 + 128.0, tf.float32)
                for _ in range(F_STEPS):
                    _, g = step_fn(img, tf.constant(f))
                    img = img + g
                img.numpy()

        n = args.loop_filters
        first, times = _timed(lambda: book_loop(step, n), args.reps)
        _emit("filters", "Keras DLwP loop (eager)", first, times, F_COUNT / n, f"timed on {n} filters")
        compiled = tf.function(step)
        first, times = _timed(lambda: book_loop(compiled, n), args.reps)
        _emit("filters", "Keras DLwP loop (tf.function step)", first, times, F_COUNT / n, f"timed on {n} filters")


# ----------------------------------------------------------------------------- torch
def torch_worker(args):
    _filter_case(args)
    import numpy as np
    import torch
    import torchvision

    torch.set_num_threads(os.cpu_count() or 1)
    rng = np.random.default_rng(0)
    if "gradcam" in args.cases:
        model = torchvision.models.vgg16(weights=None).eval()
        x = torch.from_numpy((rng.standard_normal((BATCH, 3, SIZE, SIZE)) * 50).astype(np.float32))
        saved = {}
        model.features[29].register_forward_hook(lambda m, i, o: saved.__setitem__("a", o))  # ReLU after conv5_3

        def recipe():
            logits = model(x)
            score = logits.max(dim=1).values
            (g,) = torch.autograd.grad(score.sum(), saved["a"])
            cam = torch.relu(torch.einsum("bchw,bc->bhw", saved["a"], g.mean(dim=(2, 3))))
            cam = cam / (cam.amax(dim=(1, 2), keepdim=True) + 1e-12)
            return torch.nn.functional.interpolate(cam[:, None], size=(SIZE, SIZE), mode="bilinear", align_corners=False).detach()

        first, times = _timed(recipe, args.reps)
        _emit("gradcam", "torch autograd hook", first, times)
    if "filters" in args.cases:
        feats = torchvision.models.vgg16(weights=None).features[:12].eval()  # up to block3_conv1's ReLU
        for p in feats.parameters():
            p.requires_grad_(False)

        def loop(n):
            for f in range(n):
                img = torch.from_numpy((np.random.random((1, 3, F_SIZE, F_SIZE)) * 20 + 128).astype(np.float32))
                for _ in range(F_STEPS):
                    img.requires_grad_(True)
                    loss = feats(img)[:, f].mean()
                    (g,) = torch.autograd.grad(loss, img)
                    img = (img + g / (g.square().mean().sqrt() + 1e-5)).detach()

        n = args.loop_filters
        first, times = _timed(lambda: loop(n), args.reps)
        _emit("filters", "torch DLwP loop", first, times, F_COUNT / n, f"timed on {n} filters")


# ----------------------------------------------------------------------------- driver
def run_driver(args):
    results = []
    for fw in args.frameworks.split(","):
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", fw, "--reps", str(args.reps), "--cases", args.cases, "--loop-filters", str(args.loop_filters),
               "--filter-count", str(args.filter_count), "--filter-steps", str(args.filter_steps), "--filter-size", str(args.filter_size)]
        env = C.allocator_env(dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow",
                                   CUDA_VISIBLE_DEVICES=os.environ.get("CUDA_VISIBLE_DEVICES", "")), fw)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        lines = [json.loads(l[len(PREFIX):]) for l in proc.stdout.splitlines() if l.startswith(PREFIX)]
        if proc.returncode != 0:
            print(f"{fw} worker failed (rc={proc.returncode}):\n{proc.stderr[-2000:]}", file=sys.stderr)
        results += lines
    table(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


def table(results):
    print(f"\ncpus: {os.cpu_count()}; medians of the repetitions\n")
    for case in ("gradcam", "filters"):
        rows = [r for r in results if r["case"] == case]
        if not rows:
            continue
        ref = next((statistics.median(r["times_s"]) for r in rows if r["impl"].startswith("fluxseg")), None)
        print(f"| {case} | median s | min-max s | first call s | peer / fluxseg |\n|---|---|---|---|---|")
        for r in rows:
            med = statistics.median(r["times_s"])
            ratio = f"{med / ref:.1f}x" if ref else "-"
            label = r["impl"] + (f" (scaled from {r['note'].split()[-2]} filters)" if r["scaled"] else "")
            print(f"| {label} | {med:.2f} | {min(r['times_s']):.2f}-{max(r['times_s']):.2f} | {r['first_s']:.2f} | {ratio} |")
        print()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--cases", default="gradcam,filters")
    p.add_argument("--frameworks", default="jax,keras,torch")
    p.add_argument("--loop-filters", type=int, default=4, help="filters the per-filter loops are timed on (scaled to 64)")
    p.add_argument("--filter-count", type=int, default=F_COUNT, help="filters of block3_conv1 (the issue: 64)")
    p.add_argument("--filter-steps", type=int, default=F_STEPS, help="ascent steps (the book: 40)")
    p.add_argument("--filter-size", type=int, default=F_SIZE, help="pattern size (the book: 150)")
    p.add_argument("--json", default=None)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        {"jax": jax_worker, "keras": keras_worker, "torch": torch_worker}[args.worker](args)
    else:
        run_driver(args)


if __name__ == "__main__":
    main()
