"""pmap and jit+shard_map steps equal a single-device step (8 fake CPU devices)."""
import json
import os

from _helpers import run_python

HERE = os.path.dirname(os.path.abspath(__file__))


def test_pmap_and_jit_steps_equal_single_device_step():
    proc = run_python([os.path.join(HERE, "_parallel_check.py")], devices=8)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for mode in ("pmap", "jit"):
        # New parameters and BatchNorm statistics after one step.
        assert out[mode]["params"] < 1e-5, (mode, out[mode])
        assert out[mode]["batch_stats"] < 1e-5, (mode, out[mode])
        assert abs(out[mode]["loss"][0] - out["ref_loss"][0]) < 1e-5
    # The step did move the parameters (the comparison is not vacuous).
    assert out["pmap"]["changed"] > 1e-3
