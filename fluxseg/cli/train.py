"""The launcher behind `python launch.py` and `fluxseg train`.

    python launch.py                                    # the default experiment
    python launch.py --config experiments/NAME.py[:ARG] --workdir DIR \\
        [--config.KEY=VALUE ...] [--mode train|eval]
    fluxseg train --config experiments/NAME.py --workdir DIR [--config.KEY=VALUE ...]
    python launch.py --mode eval --workdir DIR          # in-loop eval (the checkpoint's config)

`fluxseg eval` (fluxseg/cli/eval.py) scores whole images at their own sizes instead.

Multi-host: run the same command on every host. The processes find each
other from SLURM / Cloud TPU / Open MPI / JAX_COORDINATOR_ADDRESS, or from
--coordinator_address HOST:PORT --num_processes N --process_id I.
Re-running a command in the same workdir resumes it. SIGTERM saves a
checkpoint and exits with status 0.
"""

import json
import os
import re
import sys

from absl import app, flags, logging
from ml_collections import config_flags

# experiments/ sits beside the package in a checkout (pip install -e .).
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_CONFIG = os.path.join(REPO, "experiments", "default.py")

_CONFIG = None  # defined by run(), once the overrides are known to name real keys
_WORKDIR = flags.DEFINE_string("workdir", None, "output directory (default runs/<experiment>)")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "eval"], "train (and evaluate) or only evaluate")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "multi-process: HOST:PORT of process 0")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "multi-process: number of processes")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "multi-process: this process's index")


def _default_workdir() -> str:
    path = getattr(flags.FLAGS["config"], "config_filename", None) or DEFAULT_CONFIG
    name = os.path.splitext(os.path.basename(str(path).split(":")[0]))[0] or "default"
    return os.path.join("runs", name)


def _launch(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from fluxseg.runtime import distributed
    distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)

    import jax
    from fluxseg.runtime import compile_cache
    from fluxseg.train import config as config_lib, loop
    from fluxseg.train.checkpoint import CheckpointMismatchError, DamagedCheckpointError

    compile_cache.enable()  # a second run of the same config skips compiling

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
            config_lib.check(config)  # before anything starts; train_and_evaluate checks again
            result = loop.train_and_evaluate(config, workdir)
    except config_lib.ConfigError as e:
        print(f"fluxseg: {e}", file=sys.stderr)
        return 2
    except (loop.NonFiniteLossError, DamagedCheckpointError, CheckpointMismatchError) as e:
        print(f"fluxseg: stopped: {e}", file=sys.stderr)
        return 1
    if jax.process_index() == 0:
        summary = {k: v for k, v in result.items() if "/" not in k}
        print(f"fluxseg: done; workdir {os.path.abspath(workdir)}")
        print(json.dumps(summary, indent=1, default=str))
    return 0


def _config_argument(argv: list[str]) -> str:
    for i, arg in enumerate(argv):
        if arg.startswith(("--config=", "-config=")):
            return arg.split("=", 1)[1]
        if arg in ("--config", "-config") and i + 1 < len(argv):
            return argv[i + 1]
    return DEFAULT_CONFIG


def check_overrides(argv: list[str]) -> None:
    """Exits with one line if a --config.KEY=VALUE names a key the config lacks: the key
    that replaced it, or the valid keys there (fluxseg.train.config.unknown_key_message).

    ml_collections would fail with a bare KeyError traceback, and before
    absl's flag parsing starts, so the check runs on ``argv`` first.
    """
    overrides = [m.group(1) for m in map(re.compile(r"^--?(?:no)?config\.([^=]+)").match, argv) if m]
    if not overrides:
        return
    from fluxseg.train.config import load_config_file, unknown_key_message

    path, _, arg = _config_argument(argv).partition(":")
    module = load_config_file(path)
    config = module.get_config(arg) if arg else module.get_config()
    for override in overrides:
        message = unknown_key_message(config, override)
        if message:
            print(f"fluxseg: --{message}", file=sys.stderr)
            raise SystemExit(2)  # as for a bad value (_launch): a usage error


def config_from_args(config: str, overrides: list[str]):
    """The config ``launch.py --config CONFIG OVERRIDES`` would train, parsed by the same
    ml_collections flag (types from the config's values), without running anything.

    Raises absl's IllegalFlagValueError on a value of the wrong type.
    """
    from absl.flags import FlagValues

    argv = ["fluxseg", f"--config={config}", *overrides]
    values = FlagValues()
    flag = config_flags.DEFINE_config_file("config", config, flag_values=values, lock_config=True,
                                           sys_argv=argv)
    values(argv)
    return flag.value


def run(argv=None) -> None:
    """Parses absl flags from `argv` (default sys.argv) and runs; exits with main's status."""
    global _CONFIG
    argv = list(sys.argv if argv is None else argv)
    check_overrides(argv)
    # ml_collections reads the overrides when the flag is defined, from the argv given here.
    _CONFIG = config_flags.DEFINE_config_file(
        "config", DEFAULT_CONFIG, "experiment config file (experiments/NAME.py[:ARG])",
        lock_config=True, sys_argv=argv)
    app.run(lambda args: sys.exit(_launch(args)), argv=argv)


def main(argv: list[str]) -> int:
    """`fluxseg train ARGS`: the same as `python launch.py ARGS`."""
    run(["fluxseg train", "--mode=train", *argv])
    return 0
