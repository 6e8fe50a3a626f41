"""Images/s of `fluxseg eval`-style prediction on 50 VOC-sized images of mixed sizes.

    python benchmarks/eval_throughput.py [--images 50] [--before-repo /work/main] [--json out.json]

fcn_resnet18 (32s, 21 classes, random weights), slide inference with
320x480 tiles (the s3 training crop) and stride 214x320 (a third overlap),
over 50 random images whose sizes are drawn from 375x500, 500x375 and
333x500 (VOC's commonest shapes; --sizes 12 draws from twelve). Each variant runs in its own process:

  after        fluxseg.predict per image (this checkout): one compilation
  after_batch  fluxseg.predict_batch on chunks of 8 images, as `fluxseg eval`
  before       fluxseg.predict of the checkout at --before-repo (the jitted
               tiling function compiled once per image size)
  torch        the d2l FCN-ResNet18 in torch (benchmarks/models_throughput_torch),
               mmsegmentation-style slide inference: the same windows, logits
               summed and divided by the window count, argmax

Per image: seconds of one prediction (class-id mask at the image's size).
Reported: the median over images after the first (steady state), and the wall
time of all images including the first call and every compilation.
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

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PREFIX = "BENCH_JSON "
# Common PASCAL VOC shapes (H, W); --sizes N draws from the first N.
VOC_SIZES = ((375, 500), (500, 375), (333, 500), (500, 333), (366, 500), (400, 500),
             (281, 500), (500, 400), (334, 500), (375, 499), (500, 281), (335, 500))
SIZES = VOC_SIZES[:3]
TILE, STRIDE, CLASSES = (320, 480), (214, 320), 21


def images(n: int, num_sizes: int = 3):
    import numpy as np
    rng = np.random.RandomState(0)
    sizes = VOC_SIZES[:num_sizes]
    return [rng.randint(0, 256, (*sizes[rng.randint(len(sizes))], 3)).astype(np.uint8)
            for _ in range(n)]


def _restored():
    import jax
    import jax.numpy as jnp
    import ml_collections

    from fluxseg import models
    from fluxseg.runtime.backend import jit
    from fluxseg.train.checkpoint import Restored
    from fluxseg.weights import preprocess

    model = models.create("fcn_resnet18", num_classes=CLASSES)
    variables = jit(lambda k: model.init(k, jnp.zeros((1, *TILE, 3)), train=False))(
        jax.random.key(0, impl="rbg"))
    config = ml_collections.ConfigDict({"model": "fcn_resnet18", "data": {
        "task": "segmentation", "crop_size": TILE, "eval_mode": "pad", "channels": 3}})
    return Restored(model=model, variables=variables, config=config,
                    preprocess=preprocess.get("unit"), step=0, workdir="")


def worker_jax(mode: str, n: int, num_sizes: int) -> dict:
    import numpy as np

    import fluxseg
    from fluxseg import infer
    r, ims = _restored(), images(n, num_sizes)
    per_image, t_all = [], time.perf_counter()
    if mode == "after_batch":
        for s in range(0, n, 8):
            t0 = time.perf_counter()
            masks = fluxseg.predict_batch(r, ims[s:s + 8], stride=STRIDE, batch_size=4)
            dt = time.perf_counter() - t0
            per_image += [dt / len(masks)] * len(masks)
    else:
        for im in ims:
            t0 = time.perf_counter()
            mask = infer.predict(r, im, stride=STRIDE, batch_size=4)
            np.asarray(mask)
            per_image.append(time.perf_counter() - t0)
    return {"per_image_s": per_image, "wall_s": time.perf_counter() - t_all,
            "infer_module": infer.__file__}


def worker_torch(n: int, num_sizes: int) -> dict:
    import numpy as np
    import torch
    import torchvision

    sys.path.insert(0, HERE)
    from models_throughput_torch import build

    net = build("d2l_fcn", "fcn_resnet18", torch, torchvision).eval()
    ims = images(n, num_sizes)
    (th, tw), (sh, sw) = TILE, STRIDE

    def slide(image):
        H, W = image.shape[:2]
        x = torch.from_numpy(image).permute(2, 0, 1).float().div(255.0)[None]
        ph, pw = max(th - H, 0), max(tw - W, 0)
        x = torch.nn.functional.pad(x, (0, pw, 0, ph))
        Hp, Wp = x.shape[2:]
        rows = [min(i * sh, Hp - th) for i in range((max(Hp - th, 0) + sh - 1) // sh + 1)]
        cols = [min(j * sw, Wp - tw) for j in range((max(Wp - tw, 0) + sw - 1) // sw + 1)]
        starts = [(i, j) for i in rows for j in cols]
        crops = torch.cat([x[:, :, i:i + th, j:j + tw] for i, j in starts])
        logits = net(crops)
        total = torch.zeros((1, CLASSES, Hp, Wp))
        count = torch.zeros((1, 1, Hp, Wp))
        for (i, j), out in zip(starts, logits):
            total[0, :, i:i + th, j:j + tw] += out
            count[0, :, i:i + th, j:j + tw] += 1
        return (total / count)[0, :, :H, :W].argmax(0).numpy()

    per_image, t_all = [], time.perf_counter()
    with torch.inference_mode():
        for im in ims:
            t0 = time.perf_counter()
            mask = slide(im)
            per_image.append(time.perf_counter() - t0)
            assert mask.shape == im.shape[:2]
    return {"per_image_s": per_image, "wall_s": time.perf_counter() - t_all,
            "torch_threads": torch.get_num_threads(), "np": np.__version__}


def _run(mode: str, n: int, num_sizes: int, repo: str) -> dict:
    env = dict(os.environ, PYTHONPATH=repo, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    env = C.allocator_env(env, "torch" if mode == "torch" else "jax")
    proc = subprocess.run([sys.executable, __file__, "--worker", mode, "--images", str(n),
                           "--sizes", str(num_sizes)],
                          env=env, capture_output=True, text=True, cwd=repo)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{proc.stderr[-3000:]}")
    line = next(l for l in proc.stdout.splitlines() if l.startswith(PREFIX))
    return json.loads(line[len(PREFIX):])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=50)
    p.add_argument("--sizes", type=int, default=3, help=f"distinct image shapes, 1..{len(VOC_SIZES)}")
    p.add_argument("--before-repo", default="/work/main", help="checkout with the old per-size jit")
    p.add_argument("--modes", default="after,after_batch,before,torch")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    if a.worker:
        out = (worker_torch(a.images, a.sizes) if a.worker == "torch"
               else worker_jax(a.worker, a.images, a.sizes))
        print(PREFIX + json.dumps(out))
        return
    results = {}
    for mode in a.modes.split(","):
        repo = a.before_repo if mode == "before" else REPO
        r = _run(mode, a.images, a.sizes, repo)
        skip = 8 if mode == "after_batch" else 1  # the first call (or chunk) compiles
        steady = r["per_image_s"][skip:] or r["per_image_s"]
        r["median_s"] = statistics.median(steady)
        r["img_s"] = 1.0 / r["median_s"]
        r["img_s_wall"] = a.images / r["wall_s"]
        results[mode] = r
        print(f"{mode:<12} median {r['median_s']:.3f} s/img = {r['img_s']:.2f} img/s; "
              f"all {a.images} incl. compile {r['wall_s']:.1f} s = {r['img_s_wall']:.2f} img/s",
              flush=True)
    for a_, b_ in [("after", "before"), ("after_batch", "before"), ("after", "torch"),
                   ("after_batch", "torch")]:
        if a_ in results and b_ in results:
            print(f"{a_}/{b_}: median img/s x{results[a_]['img_s'] / results[b_]['img_s']:.2f}, "
                  f"wall img/s x{results[a_]['img_s_wall'] / results[b_]['img_s_wall']:.2f}")
    print(f"cpus available: {len(os.sched_getaffinity(0))}; load average {os.getloadavg()}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
