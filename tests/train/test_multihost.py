"""Two processes x 2 devices == one process x 4 devices (jit over a global mesh)."""
import os
import socket
import subprocess
import sys

import jax
import ml_collections
import numpy as np

from _helpers import CACHE_ENV, REPO, run_python
from fluxseg.train import build, checkpoint

HERE = os.path.dirname(os.path.abspath(__file__))

SCRIPT = os.path.join(HERE, "_multihost_check.py")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_process(tmp_path):
    one = str(tmp_path / "one.npz")
    run_python([SCRIPT, "1", "0", "0", str(tmp_path / "ckpt1"), one], devices=4)

    two, workdir, port = str(tmp_path / "two.npz"), str(tmp_path / "ckpt2"), str(_free_port())
    env = dict(os.environ, **CACHE_ENV, JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=2")
    procs = [subprocess.Popen([sys.executable, SCRIPT, "2", str(i), port, workdir, two],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=900)
        assert p.returncode == 0, err[-4000:]

    a, b = np.load(one), np.load(two)
    assert set(a.files) == set(b.files)
    np.testing.assert_allclose(a["losses"], b["losses"], atol=1e-5)
    for k in a.files:
        np.testing.assert_allclose(a[k], b[k], atol=1e-5, err_msg=k)
    assert np.abs(a["losses"][1] - a["losses"][0]) > 1e-4  # two different batches
    # Step 2 unreadable for one process: both fall back to step 1, and step 2 is moved once.
    assert open(one + ".resume0").read() == "2"
    assert [open(f"{two}.resume{i}").read() for i in range(2)] == ["1", "1"]
    assert os.listdir(os.path.join(workdir + "_resume", "damaged_checkpoints")) == ["2"]

    # The checkpoint both processes wrote together restores in this 1-device process.
    cfg = ml_collections.ConfigDict(dict(model="resnet18", model_kwargs={"width": 8},
                                         num_classes=5, dtype="float32"))
    model = build.model(cfg)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), np.zeros((1, 32, 32, 3)),
                                               train=False))
    ckpt = checkpoint.Checkpoints.reader(workdir)
    restored = ckpt.restore_variables(2, checkpoint.abstract(
        dict(shapes), jax.sharding.SingleDeviceSharding(jax.devices()[0])))
    for path, v in jax.tree_util.tree_flatten_with_path(restored)[0]:
        np.testing.assert_array_equal(np.asarray(v), b["/".join(str(k.key) for k in path)])
