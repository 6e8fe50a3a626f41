"""The sweep tests' experiment: tests/train/_helpers.tiny_config, a U-Net with 4 base
channels on 32x32 shapes that trains in seconds. The tests pass the data with
--config.data.data_dir=DIR (the small shapes data of tests/train/conftest.py).

Commands:
    python launch.py --config tests/sweep/tiny_experiment.py --workdir /tmp/tiny --config.data.data_dir=DIR
Data: fluxseg_shapes/small.
Expected: nothing learned in 6 steps; the tests check the sweep's bookkeeping.
"""
import importlib.util
import os


def get_config(arg=None):
    del arg
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "train", "_helpers.py")
    spec = importlib.util.spec_from_file_location("fluxseg_tests_train_helpers", path)
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    return helpers.tiny_config(None, eval_every_steps=3)
