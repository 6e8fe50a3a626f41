"""Run by test_multihost.py: N processes with 4 // N fake CPU devices each.

Two jit+shard_map steps of resnet18 (width 8, BatchNorm) on a 16-image global
batch that each process feeds its own rows of; an Orbax checkpoint written by
all processes together; process 0 saves the resulting variables. Then, in a
copy of the workdir, resuming when step 2 is damaged for process 1 only (its
checksum check is made to fail): every process must fall back to step 1 and
say so in OUT.resume<PROCESS_ID>.

usage: _multihost_check.py NUM_PROCESSES PROCESS_ID PORT WORKDIR OUT.npz
"""
import functools
import shutil
import sys

import jax

num_processes, process_id, port = (int(a) for a in sys.argv[1:4])
workdir, out = sys.argv[4:6]
if num_processes > 1:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}",
                               num_processes=num_processes, process_id=process_id)

import numpy as np  # noqa: E402

from fluxseg.train import build, checkpoint, checksums, config as config_lib, damage, parallel, step as S  # noqa: E402

assert jax.device_count() == 4 and jax.process_count() == num_processes
SHAPE = (32, 32, 3)
cfg = config_lib.from_values(dict(
    model="resnet18", model_kwargs={"width": 8}, num_classes=5, data=dict(task="classification"),
    loss="softmax_ce", dtype="float32", preprocess="unit", num_train_steps=2,
    optim=dict(name="sgd", learning_rate=0.1, momentum=0.9, weight_decay=1e-4,
               schedule="constant", frozen=None)))
rng = np.random.RandomState(0)
images = rng.randint(0, 256, (2, 16, *SHAPE)).astype(np.uint8)
labels = rng.randint(0, 5, (2, 16)).astype(np.int32)
labels[0, [1, 2, 9]] = -1  # padding rows, uneven over the processes
rows = slice(process_id * 16 // num_processes, (process_id + 1) * 16 // num_processes)

dp = parallel.DataParallel("jit")
spec = build.step_spec(cfg, axis_name=dp.axis_name)
state = dp.init(lambda seed: S.init_state(spec.model, spec.tx, seed, SHAPE, "rbg"), 0)
step = dp.train_step(functools.partial(S.train_step, spec=spec))
losses = []
ckpt = checkpoint.Checkpoints(workdir, keep_last=cfg.keep_last, keep_best=0, best_metric=cfg.best_metric,
                             best_mode=cfg.best_mode, async_save=cfg.async_checkpoints)
for i in range(2):
    state, m = step(state, dp.put_batch({"image": images[i, rows], "label": labels[i, rows]}))
    losses.append(float(parallel.to_host(m["loss"])))
    ckpt.save(state, {"step": i + 1, "config": cfg.to_dict()})
ckpt.wait()
ckpt.close()

copy = workdir + "_resume"
if process_id == 0:
    shutil.copytree(workdir, copy)
damage.barrier("copied")
if process_id == 1:
    intact = checksums.problems
    checksums.problems = lambda d, items: ["simulated"] if d.endswith("/2") else intact(d, items)
resumer = checkpoint.Checkpoints(copy, keep_last=cfg.keep_last, keep_best=0, best_metric=cfg.best_metric,
                             best_mode=cfg.best_mode, async_save=cfg.async_checkpoints)
found = resumer.resume(lambda: checkpoint.abstract(jax.eval_shape(
    lambda: S.init_state(spec.model, spec.tx, 0, SHAPE, "rbg")), dp.replicated),
    on_damaged="fallback", check_meta=lambda meta: None)
resumer.close()
with open(f"{out}.resume{process_id}", "w") as f:
    f.write(str(found[1]))
host = parallel.to_host({"params": state.params, "batch_stats": state.batch_stats})
if process_id == 0:
    flat = {"/".join(str(k.key) for k in p): v
            for p, v in jax.tree_util.tree_flatten_with_path(host)[0]}
    np.savez(out, losses=np.array(losses), **flat)
