"""What the checkpoint checksum list costs, for a ResNet-50-sized train state.

    python benchmarks/checkpoint_checksums.py [--model resnet50] [--reps 5] [--dir DIR]

Saves a TrainState of --model (ImageNet head, SGD momentum: the parameters
and one trace of the same size, random values so that nothing compresses
away) with fluxseg's Checkpoints, asynchronously as the trainer saves,
alternating a manager that writes the checksum list (fluxseg's own) with one
that does not (A B, B A, ...). Per save: how long save() holds the training thread, and how
long until the step is committed (wait_until_finished). Then, on a committed
step: checksums.write alone (the list, taken on Orbax's finalising thread)
and checksums.problems (what every restore and resume adds before reading).
Medians over --reps; the files sit in the page cache, as right after a save.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fluxseg import models
from fluxseg.train import checksums
from fluxseg.train.checkpoint import ITEMS, Checkpoints
from fluxseg.train.step import TrainState


class _WithoutList(Checkpoints):
    def _write_checksums(self) -> None:
        pass


def _state(name: str) -> TrainState:
    model = models.create(name)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 224, 224, 3)), train=False))
    rng = np.random.default_rng(0)
    fill = lambda s: jnp.asarray(rng.standard_normal(s.shape, np.float32))  # noqa: E731
    params = jax.tree_util.tree_map(fill, shapes["params"])
    opt_state = jax.tree_util.tree_map(
        lambda x: fill(x) if x.ndim else x, optax.sgd(0.1, momentum=0.9).init(params))
    return TrainState(step=jnp.int32(0), params=params, batch_stats=jax.tree_util.tree_map(fill, shapes["batch_stats"]),
                      opt_state=opt_state, rng=jax.random.PRNGKey(0))


def _size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="resnet50")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--dir", default=None, help="where to save (default: a temporary directory)")
    args = p.parse_args()
    root = tempfile.mkdtemp(prefix="fluxseg-ckpt-", dir=args.dir)
    state = _state(args.model)
    times = {kind: {"save": [], "commit": []} for kind in ("with list", "without")}
    keys = dict(keep_last=2, keep_best=0, best_metric="mIoU", best_mode="max", async_save=True)
    managers = {"with list": Checkpoints(os.path.join(root, "with"), **keys),
                "without": _WithoutList(os.path.join(root, "without"), **keys)}
    for step in range(1, args.reps + 2):
        order = list(managers.items())
        for kind, ckpt in (order if step % 2 else order[::-1]):  # A B, B A, ...: no order effect
            t0 = time.perf_counter()
            ckpt.save(state, {"step": step})
            t1 = time.perf_counter()
            ckpt.wait()
            t2 = time.perf_counter()
            if step > 1:  # the first save of each manager pays for Orbax's setup
                times[kind]["save"].append(t1 - t0)
                times[kind]["commit"].append(t2 - t0)
    step_dir = managers["with list"].step_dir(args.reps + 1)
    assert checksums.problems(step_dir, ITEMS) == []
    write, check = [], []
    for _ in range(args.reps):
        t = time.perf_counter()
        checksums.write(step_dir, ITEMS)
        write.append(time.perf_counter() - t)
        t = time.perf_counter()
        assert checksums.problems(step_dir, ITEMS) == []
        check.append(time.perf_counter() - t)
    mb = _size(step_dir) / 2**20
    for ckpt in managers.values():
        ckpt.close()
    shutil.rmtree(root, ignore_errors=True)
    ms = lambda v: f"{1000 * statistics.median(v):8.1f}"  # noqa: E731
    print(f"{args.model} train state (params + SGD momentum): {mb:.0f} MiB on disk per step, medians of {args.reps}")
    print(f"{'':22}{'save() ms':>10}{'commit ms':>10}")
    for kind, t in times.items():
        print(f"{kind:22}{ms(t['save']):>10}{ms(t['commit']):>10}")
    print(f"checksums.write  {ms(write)} ms  ({mb / statistics.median(write):.0f} MiB/s)")
    for kind, t in times.items():
        print(f"{kind}: save() ms " + " ".join(f"{1000 * v:.0f}" for v in t["save"]))
    print(f"checksums.problems {ms(check)} ms")


if __name__ == "__main__":
    main()
