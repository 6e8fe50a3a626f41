"""Run by test_parallel.py in a fresh process with 8 fake CPU devices.

Takes one SGD step with resnet18 (width 8, BatchNorm) on one 16-image batch
three ways: one device on the whole batch, pmap over 8 devices, jit+shard_map
over an 8-device mesh. Prints JSON: the largest absolute difference of the
parameters and BatchNorm statistics of each parallel run from the single one.
Stage 2 is frozen (config.optim.frozen), so the step closes over it and
all-reduces only the trainable gradients; "frozen_moved" is how far its
parameters moved (must be 0).

32x32 images, not smaller: at 16x16 ResNet's last stages see 1x1 maps whose
BatchNorm variances are near zero, and merely permuting the batch on ONE
device moves the gradients by 1e-2 (float32 summation order, amplified).
"""
import functools
import json
import sys

import jax
import numpy as np

from fluxseg.runtime.backend import jit
from fluxseg.train import build, config as config_lib, parallel, step as S

assert jax.device_count() == 8, jax.devices()

cfg = config_lib.from_values(dict(
    model="resnet18", model_kwargs={"width": 8}, num_classes=5, data=dict(task="classification"),
    loss="softmax_ce", dtype="float32", preprocess="unit", num_train_steps=2,
    optim=dict(name="sgd", learning_rate=0.1, momentum=0.9, weight_decay=1e-4,
               schedule="constant", frozen=(r"^layer2_",))))
SHAPE = (32, 32, 3)
rng = np.random.RandomState(0)
batch = {"image": rng.randint(0, 256, (16, *SHAPE)).astype(np.uint8),
         "label": rng.randint(0, 5, (16,)).astype(np.int32)}
batch["label"][[3, 4, 10]] = -1  # padding rows, unevenly spread over the devices


def run(spec, init, step_fn, put):
    state = init(lambda seed: S.init_state(spec.model, spec.tx, seed, SHAPE, "rbg"), 0)
    state, m = step_fn(state, put(batch))
    losses = [float(m["loss"])]
    return parallel.to_host({"params": state.params, "batch_stats": state.batch_stats}), losses


spec1 = build.step_spec(cfg)
# Compiled as DataParallel compiles its steps (backend.jit: the backend's options), so the
# three runs differ only in how the batch is split.
ref, ref_loss = run(spec1, lambda f, r: jit(f)(r),
                    jit(functools.partial(S.train_step, spec=spec1)), lambda b: b)
out = {"ref_loss": ref_loss}
for mode in ("pmap", "jit"):
    dp = parallel.DataParallel(mode)
    spec = build.step_spec(cfg, axis_name=dp.axis_name)
    got, loss = run(spec, dp.init, dp.train_step(functools.partial(S.train_step, spec=spec)),
                    dp.put_batch)
    diffs = jax.tree_util.tree_map(lambda a, b: float(np.max(np.abs(a - b))), ref, got)
    out[mode] = {k: max(jax.tree_util.tree_leaves(diffs[k])) for k in ("params", "batch_stats")}
    out[mode]["loss"] = loss
    init = parallel.to_host(jax.jit(lambda seed: S.init_state(spec1.model, spec1.tx, seed, SHAPE, "rbg"))(0).params)
    moved = jax.tree_util.tree_map(lambda a, b: float(np.max(np.abs(a - b))), got["params"], init)
    out[mode]["changed"] = max(jax.tree_util.tree_leaves(moved))
    out[mode]["frozen_moved"] = max(x for k, sub in moved.items() if k.startswith("layer2_")
                                    for x in jax.tree_util.tree_leaves(sub))
json.dump(out, sys.stdout)
