"""Every experiment config builds its model for its data; the classification
path of the trainer runs end to end."""
import glob
import importlib.util
import json
import os
import shlex

import jax
import numpy as np
import pytest

from _helpers import REPO, top1_by_hand
from fluxseg.train import build, config as config_lib

ARGS = {
    "default.py": [None],
    "s0a_hybrid.py": ["imagenette", "cifar10", "shapes"],
    "s0b_unet_resnet50.py": ["shapes", "voc", "pets"],
    "s1_car_or_truck.py": ["folder"],
    "s2_cnn_small.py": ["cats_vs_dogs", "folder", "shapes"],
    "s3_fcn_resnet18.py": ["voc", "shapes,8s,xavier"],
    "ablation_fcn_init.py": ["bilinear,shapes", "xavier"],
    "ablation_fcn_skips.py": ["32s,shapes", "16s", "8s"],
    "ablation_unet_batchnorm.py": ["batch", "none"],
    "s4_unet.py": ["shapes", "voc", "isbi"],
}


class _Info:  # what data.info() gives, without preparing any dataset
    num_examples = {"train": 1000}

    def __init__(self, num_classes):
        self.num_classes, self.class_names = num_classes, tuple(map(str, range(num_classes)))


def _load(name):
    path = os.path.join(REPO, "experiments", name)
    spec = importlib.util.spec_from_file_location(name[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Percent-format notebooks (run as scripts by tests/train/test_notebook.py): not configs.
NOTEBOOKS = {"notebook_restore_predict.py"}
# Runnable demo scripts that write figures (no training run): they have a
# main() instead of get_config() and document `python experiments/NAME.py`.
SCRIPTS = ("s1_pooling.py", "s2_visualise.py")


def test_every_experiment_file_is_listed():
    files = {os.path.basename(p) for p in glob.glob(os.path.join(REPO, "experiments", "*.py"))}
    assert files == set(ARGS) | NOTEBOOKS | set(SCRIPTS)
    assert not set(ARGS) & (NOTEBOOKS | set(SCRIPTS))
    for name in NOTEBOOKS:  # told apart by form: cells, and no config to load
        with open(os.path.join(REPO, "experiments", name)) as f:
            text = f.read()
        assert text.startswith("# %%") and "def get_config" not in text
    for name in ARGS:
        with open(os.path.join(REPO, "experiments", name)) as f:
            assert "def get_config" in f.read()


@pytest.mark.parametrize("name", SCRIPTS)
def test_demo_scripts_are_scripts_not_configs(name):
    module = _load(name)  # the __main__ guard: loading runs nothing
    assert callable(getattr(module, "main", None)) and not hasattr(module, "get_config")
    with open(os.path.join(REPO, "experiments", name)) as f:
        assert 'if __name__ == "__main__":' in f.read()


def _documented_commands(doc: str):
    """The `python launch.py ...` commands of a docstring (continued lines joined), as argv lists."""
    text = doc.replace("\\\n", " ")
    for line in text.splitlines():
        if "python launch.py" in line:
            yield shlex.split(line[line.index("python launch.py"):])[2:]


@pytest.mark.parametrize("name", sorted(ARGS))
def test_documented_commands_name_this_file_an_argument_it_takes_and_real_keys(name):
    module = _load(name)
    commands = list(_documented_commands(module.__doc__))
    assert commands, f"{name}: its docstring gives no `python launch.py` command"
    for argv in commands:
        flags = dict(a.split("=", 1) if "=" in a else (a, None) for a in argv if a.startswith("--"))
        if name != "default.py" or "--config" in argv:
            path = next(argv[i + 1] for i, a in enumerate(argv) if a == "--config")
            file, _, arg = path.partition(":")
            assert file == f"experiments/{name}", argv
            config = module.get_config(arg) if arg else module.get_config()
        else:
            config = module.get_config()
        for key in flags:
            if key.startswith("--config."):
                assert config_lib.unknown_key_message(config, key[len("--config."):]) is None, argv


@pytest.mark.parametrize("name,arg", [(n, a) for n, args in ARGS.items() for a in args])
def test_config_passes_the_checks_and_builds_a_model_that_fits_its_data(name, arg):
    module = _load(name)
    config = module.get_config(arg) if arg else module.get_config()
    config_lib.check(config)
    # A dataset with as many classes as the config asks for (6 where it takes the data's).
    c = config_lib.resolve(config, _Info(6 if config.num_classes in (None, 1) else config.num_classes))
    model = build.model(c)
    h, w = (int(v) for v in c.data.crop_size)
    x = jax.ShapeDtypeStruct((1, h, w, 3), np.float32)
    out = jax.eval_shape(lambda x: model.apply(model.init(jax.random.key(0), x, train=False), x,
                                               train=False), x)
    assert out.shape[-1] == c.num_classes
    if c.data.task == "segmentation":
        oh, ow = out.shape[1:3]
        valid = dict(c.model_kwargs).get("padding") == "valid"
        assert (oh, ow) == (h, w) or (valid and oh < h and (h - oh) % 2 == 0)
    else:
        assert out.ndim == 2


def test_classification_path_end_to_end(tiny_classifier_run):
    # tests/conftest.py trains experiments/s2_cnn_small.py:shapes for 3 steps.
    workdir = tiny_classifier_run
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        result = [json.loads(line) for line in f if '"validation"' in line][-1]
    assert result["step"] == 3 and np.isfinite(result["loss"])
    # top1 recomputed outside the eval step: the saved model on every valid
    # validation row, argmax against the label.
    hits, total = top1_by_hand(workdir)
    assert total == 18                      # every validation image once, padding left out
    assert result["top1"] == hits / total
    assert "top5" not in result  # five shape classes: the top five would hold every one
