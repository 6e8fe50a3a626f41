"""What importing a part of fluxseg costs: configs, models and inference do not import TensorFlow.

Each check runs in a fresh interpreter, since this test process may already
have TensorFlow loaded by other tests.
"""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _loaded_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(m for m in ('tensorflow', 'torch') if m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return set(run.stdout.split())


@pytest.mark.parametrize("code", [
    "from fluxseg.train.config import base_config; c = base_config(); assert c.data.name",
    "import fluxseg.models",
    "import fluxseg.infer",
    # the sweep process only launches, watches and reports: the runs load the data
    "import fluxseg.cli.sweep, fluxseg.sweep.report, fluxseg.sweep.executors, fluxseg.sweep.slurm",
])
def test_no_tensorflow_until_data_is_loaded(code):
    assert _loaded_after(code) == set()


def test_loading_a_dataset_imports_tensorflow_and_registers_the_builders():
    # The other side of the lazy import: the data functions still work from a bare import.
    loaded = _loaded_after(
        "import fluxseg.data as fd; import tensorflow_datasets as tfds\n"
        "assert 'fluxseg_shapes' not in tfds.list_builders()\n"
        "fd.register_builders()\n"
        "assert {'fluxseg_shapes', 'fluxseg_voc2012', 'fluxseg_isbi2012'} <= set(tfds.list_builders())")
    assert loaded == {"tensorflow"}
