"""Every experiment config builds its model for its data; the classification
path of the trainer runs end to end."""
import glob
import importlib.util
import os

import jax
import numpy as np
import pytest

from _helpers import REPO, top1_by_hand
from fluxseg.train import build, config as config_lib, loop

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
    num_classes, ignore_index, num_examples = 6, 255, {"train": 1000}


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
    doc = module.__doc__
    assert f"python experiments/{name}" in doc and "Expected" in doc and "Data" in doc
    assert callable(getattr(module, "main", None)) and not hasattr(module, "get_config")
    with open(os.path.join(REPO, "experiments", name)) as f:
        assert 'if __name__ == "__main__":' in f.read()


@pytest.mark.parametrize("name,arg", [(n, a) for n, args in ARGS.items() for a in args])
def test_config_builds_a_model_that_fits_its_data(name, arg):
    module = _load(name)
    doc = module.__doc__
    assert "python launch.py" in doc and "Expected" in doc and "Data" in doc
    config = module.get_config(arg) if arg else module.get_config()
    c = config_lib.resolve(config, _Info())
    model = build.model(c)
    h, w = (int(v) for v in c.data.crop_size)
    x = jax.ShapeDtypeStruct((1, h, w, 3), np.float32)
    out = jax.eval_shape(lambda x: model.apply(model.init(jax.random.key(0), x, train=False), x,
                                               train=False), x)
    assert out.shape[-1] == c.num_classes
    if c.task == "segmentation":
        oh, ow = out.shape[1:3]
        valid = dict(c.model_kwargs).get("padding") == "valid"
        assert (oh, ow) == (h, w) or (valid and oh < h and (h - oh) % 2 == 0)
    else:
        assert out.ndim == 2


def test_classification_path_end_to_end(small_shapes_dir, tmp_path):
    c = _load("s2_cnn_small.py").get_config("shapes")
    c.data.builder_config = "small"
    c.data.data_dir = small_shapes_dir
    c.data.scale_range = (4.7, 4.7)       # 32 -> 150 px
    c.num_train_steps = 3
    c.batch_size = 8
    c.progress_bar = False
    c.async_checkpoints = False
    workdir = str(tmp_path / "cls")
    result = loop.train_and_evaluate(c, workdir)
    assert result["step"] == 3 and np.isfinite(result["loss"])
    # top1 recomputed outside the eval step: the saved model on every valid
    # validation row, argmax against the label.
    hits, total = top1_by_hand(workdir)
    assert total == 18                      # every validation image once, padding left out
    assert result["top1"] == hits / total
    assert result["top1"] <= result["top5"]
