"""Test-wide settings and fixtures.

Settings: JAX on the CPU, quiet TensorFlow, no GPU for TF, fluxseg's malloc
settings, no compile cache, and a temporary tfds folder: no test writes to the
user's ~/tensorflow_datasets or ~/.cache/fluxseg, whatever it forgets to pass.

Fixtures shared by the test folders: a tiny offline dataset, tiny configs and
one tiny trained run (tests/train, tests/infer, tests/cli use them).
"""
import atexit
import os
import shutil
import tempfile

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
if "TFDS_DATA_DIR" not in os.environ:  # set by the controlling process; xdist workers inherit it
    os.environ["TFDS_DATA_DIR"] = tempfile.mkdtemp(prefix="fluxseg-test-tfds-")
    atexit.register(shutil.rmtree, os.environ["TFDS_DATA_DIR"], ignore_errors=True)

# What `launch.py` and the `fluxseg` command run under (fluxseg/runtime/cpu_process.py):
# the xdist workers start with it, and so do the processes the tests launch.
from fluxseg.runtime import compile_cache, cpu_process  # noqa: E402

os.environ.update(cpu_process.environ())

# No test writes to the user's compilation cache (fluxseg/runtime/compile_cache.py);
# the tests of the cache give it a folder of their own.
os.environ.setdefault(compile_cache.ENV, "off")

from _helpers import tiny_config  # noqa: E402


@pytest.fixture(scope="session")
def small_shapes_dir(tmp_path_factory):
    """A tfds data_dir with fluxseg_shapes/small (32x32; 48 train, 18 validation)."""
    import tensorflow_datasets as tfds
    import fluxseg.data

    fluxseg.data.register_builders()
    tfds.disable_progress_bar()
    data_dir = tmp_path_factory.mktemp("tfds")
    tfds.builder("fluxseg_shapes/small", data_dir=str(data_dir)).download_and_prepare()
    return str(data_dir)


@pytest.fixture
def tiny(small_shapes_dir):
    return lambda **kw: tiny_config(small_shapes_dir, **kw)


def shared_run(name: str, config, tmp_path_factory, worker_id: str) -> str:
    """The workdir of ``config`` trained once per test session under ``name``: under
    pytest-xdist the first worker to get here trains while the others wait on a
    file lock, then all read it."""
    from filelock import FileLock

    import _reference
    from fluxseg.train import loop
    root = _reference.shared_root(tmp_path_factory, worker_id, "runs")  # this session's only
    workdir = root / name
    with FileLock(str(root / f"{name}.lock")):
        if not (workdir / "DONE").exists():
            loop.train_and_evaluate(config, str(workdir))
            (workdir / "DONE").write_text("trained")
    return str(workdir)


@pytest.fixture(scope="session")
def tiny_run(small_shapes_dir, tmp_path_factory, worker_id):
    """A workdir with a 2-step tiny U-Net run on 32x32 shapes (for eval, predict, viz, notebooks)."""
    config = tiny_config(small_shapes_dir, num_train_steps=2, eval_every_steps=2,
                         checkpoint_every_steps=2, num_eval_images=0)
    return shared_run("tiny_run", config, tmp_path_factory, worker_id)


@pytest.fixture(scope="session")
def tiny_classifier_run(small_shapes_dir, tmp_path_factory, worker_id):
    """A workdir with 3 steps of experiments/s2_cnn_small.py:shapes (Chollet's small convnet
    classifying the five shapes, 32 px scaled to its 150 px input)."""
    from _helpers import REPO
    from fluxseg.train.config import load_config_file

    c = load_config_file(os.path.join(REPO, "experiments", "s2_cnn_small.py")).get_config("shapes")
    c.data.builder_config = "small"
    c.data.data_dir = small_shapes_dir
    c.data.scale_range = (4.7, 4.7)       # 32 -> 150 px
    c.num_train_steps = 3
    c.batch_size = 8
    c.progress_bar = False
    c.async_checkpoints = False
    return shared_run("tiny_classifier_run", c, tmp_path_factory, worker_id)
