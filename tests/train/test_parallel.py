"""pmap and jit+shard_map steps equal a single-device step (8 fake CPU devices)."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _helpers import run_python

from fluxseg.runtime import backend
from fluxseg.train import parallel

HERE = os.path.dirname(os.path.abspath(__file__))


def test_pmap_and_jit_steps_equal_single_device_step():
    proc = run_python([os.path.join(HERE, "_parallel_check.py")], devices=8)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for mode in ("pmap", "jit"):
        # New parameters and BatchNorm statistics after one step.
        assert out[mode]["params"] < 1e-5, (mode, out[mode])
        assert out[mode]["batch_stats"] < 1e-5, (mode, out[mode])
        assert abs(out[mode]["loss"][0] - out["ref_loss"][0]) < 1e-5
        # The step did move the parameters (the comparison is not vacuous), but not the frozen ones.
        assert out[mode]["changed"] > 1e-3 and out[mode]["frozen_moved"] == 0.0


@pytest.mark.parametrize("mode", ["jit", "pmap"])
def test_state_is_donated_except_under_the_cpu_forms(monkeypatch, mode):
    # Donation makes XLA copy parameters read after their update; on CPU that
    # cost more than the memory it saves, so only accelerators donate.
    def step(state, batch):
        return jax.tree_util.tree_map(lambda v: v + batch["x"].sum(), state), {"n": batch["x"].shape[0]}

    for setting, donated in (("auto", jax.default_backend() != "cpu"), ("off", True)):
        monkeypatch.setenv(backend.ENV, setting)
        dp = parallel.DataParallel(mode)
        state = dp.init(lambda: {"w": jnp.ones((3,)), "b": jnp.zeros(())})
        new, _ = dp.train_step(step)(state, dp.put_batch({"x": np.ones((2, 1), np.float32)}))
        assert all(leaf.is_deleted() == donated for leaf in jax.tree_util.tree_leaves(state)), setting
        assert float(new["b"]) == 2.0
