"""The launcher behind `python launch.py` and `fluxseg train`.

    python launch.py                                    # the default experiment
    python launch.py --config experiments/NAME.py[:ARG] --workdir DIR \\
        [--config.KEY=VALUE ...] [--mode train|eval]
    fluxseg train --config experiments/NAME.py --workdir DIR [--config.KEY=VALUE ...]
    python launch.py --mode eval --workdir DIR          # in-loop eval (the checkpoint's config)

`fluxseg eval` is fluxseg/evaluate.py: whole images at their own sizes.

Multi-host: run the same command on every host. The processes find each
other from SLURM / Cloud TPU / Open MPI / JAX_COORDINATOR_ADDRESS, or from
--coordinator_address HOST:PORT --num_processes N --process_id I.
Re-running a command in the same workdir resumes it. SIGTERM saves a
checkpoint and exits with status 0.
"""

import json
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

# experiments/ sits beside the package in a checkout (pip install -e .).
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(REPO, "experiments", "default.py")

_CONFIG = config_flags.DEFINE_config_file(
    "config", DEFAULT_CONFIG, "experiment config file (experiments/NAME.py[:ARG])",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "output directory (default runs/<experiment>)")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "eval"], "train (and evaluate) or only evaluate")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "multi-process: HOST:PORT of process 0")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "multi-process: number of processes")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "multi-process: this process's index")


def _default_workdir() -> str:
    path = getattr(flags.FLAGS["config"], "config_filename", None) or DEFAULT_CONFIG
    name = os.path.splitext(os.path.basename(str(path).split(":")[0]))[0] or "default"
    return os.path.join("runs", name)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from fluxseg.train import distributed
    distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)

    import jax
    from fluxseg.train import loop

    # Orbax and JAX log every checkpoint step at INFO through absl; keep them
    # at WARNING and let fluxseg's own messages through on process 0.
    logging.set_verbosity(logging.WARNING)
    import logging as pylogging
    pylogging.getLogger("fluxseg").setLevel(
        pylogging.INFO if jax.process_index() == 0 else pylogging.WARNING)
    workdir = _WORKDIR.value or _default_workdir()
    config = _CONFIG.value
    try:
        if _MODE.value == "eval":
            # Without an explicit --config, evaluate with the checkpoint's own.
            result = loop.evaluate(config if flags.FLAGS["config"].present else None, workdir)
        else:
            result = loop.train_and_evaluate(config, workdir)
    except loop.NonFiniteLossError as e:
        print(f"fluxseg: stopped: {e}", file=sys.stderr)
        return 1
    if jax.process_index() == 0:
        summary = {k: v for k, v in result.items() if "/" not in k}
        print(f"fluxseg: done; workdir {os.path.abspath(workdir)}")
        print(json.dumps(summary, indent=1, default=str))
    return 0


def run(argv=None) -> None:
    """Parses absl flags from `argv` (default sys.argv) and runs; exits with main's status."""
    app.run(lambda args: sys.exit(main(args)), argv=argv)
