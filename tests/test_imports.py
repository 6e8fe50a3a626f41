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


# The packages of fluxseg, each importing only from those after it (README, "Layout").
LAYERS = ("cli", "sweep", "infer", "train", "viz", "data", "tasks", "weights", "models", "runtime")


def _imports(path: str) -> set[str]:
    """The fluxseg modules a file imports anywhere in it (function-level imports too), and
    those it reaches through `fluxseg.restore`-style attributes of the top-level package."""
    import ast

    import fluxseg

    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            if node.module == "fluxseg":
                found.update(f"fluxseg.{a.name}" for a in node.names)
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and node.value.id == "fluxseg" and not node.attr.startswith("__")):  # not fluxseg.__file__
            lazy = fluxseg._LAZY.get(node.attr)
            found.add(lazy[0] if lazy else f"fluxseg.{node.attr}")
    return {m for m in found if m.startswith("fluxseg.")}


def test_packages_import_only_the_layers_below_them():
    package_dir = os.path.join(ROOT, "fluxseg")
    seen, upward = set(), []
    for folder, _, files in os.walk(package_dir):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            package = os.path.relpath(path, package_dir).split(os.sep)[0]
            if package.endswith(".py"):  # fluxseg/__init__.py: the lazy public names
                continue
            assert package in LAYERS, f"{package}: a package the layer list does not place"
            for module in _imports(path):
                other = module.split(".")[1]
                if other != package:
                    seen.add((package, other))
                    if LAYERS.index(other) < LAYERS.index(package):
                        upward.append(f"{os.path.relpath(path, ROOT)} imports {module}")
    assert not upward, "\n".join(upward)
    # The walk saw the edges that matter (a parser that found nothing would pass too).
    assert {("infer", "train"), ("train", "tasks"), ("data", "tasks"), ("cli", "infer")} <= seen


def test_the_models_command_loads_no_tensorflow():
    assert _loaded_after("import contextlib, io\nfrom fluxseg.cli import main\n"
                         "with contextlib.redirect_stdout(io.StringIO()): main(['models'])") == set()
