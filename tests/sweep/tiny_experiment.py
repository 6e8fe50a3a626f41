"""The sweep tests' experiment: tests/_helpers.tiny_config, a U-Net with 4 base
channels on 32x32 shapes that trains in seconds. The tests pass the data with
--config.data.data_dir=DIR (the small shapes data of tests/conftest.py).

Commands:
    python launch.py --config tests/sweep/tiny_experiment.py --workdir /tmp/tiny --config.data.data_dir=DIR
    fluxseg sweep --config tests/sweep/tiny_experiment.py:resume --workdir /tmp/s --config.data.data_dir=DIR
Data: fluxseg_shapes/small.
Expected: nothing learned in a few steps; the tests check the sweep's bookkeeping.
"""
import importlib.util
import os

LONG = 300  # steps of the run that the resume test kills half-way


def get_config(arg=None):
    del arg  # 'resume' only selects the sweep below
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_helpers.py")
    spec = importlib.util.spec_from_file_location("fluxseg_tests_helpers", path)
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    return helpers.tiny_config(None, num_eval_images=0)


def get_sweep(arg=None):
    """':resume': two 6-step runs, one that fails as it starts (an optimiser that does not
    exist), and a long run saved every 25 steps. Otherwise no sweep of its own."""
    if arg != "resume":
        return [{}]
    return [{"num_train_steps": 6, "seed": 0}, {"num_train_steps": 6, "seed": 1},
            {"optim.name": "nosuch", "seed": 0},
            {"num_train_steps": LONG, "checkpoint_every_steps": 25, "seed": 0}]
