"""Run by test_damaged_checkpoints.py: resumes a tiny run and is SIGKILLed during a save.

    python _kill_mid_save.py DATA_DIR WORKDIR STEP

Trains the tiny config on to STEP with asynchronous checkpoints and kills this
process (SIGKILL, no cleanup) from Orbax's finalising thread while it finishes
step STEP's save: every item is written into Orbax's temporary directory, the
directory has not been renamed to its final name.
"""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: _helpers

from _helpers import tiny_config  # noqa: E402
from fluxseg.train import checksums, loop  # noqa: E402

data_dir, workdir, step = sys.argv[1], sys.argv[2], int(sys.argv[3])
write = checksums.write


def write_then_die(step_dir, items):
    write(step_dir, items)
    if os.path.basename(step_dir).startswith(f"{step}."):
        os.kill(os.getpid(), signal.SIGKILL)


checksums.write = write_then_die
loop.train_and_evaluate(tiny_config(data_dir, num_train_steps=step, checkpoint_every_steps=2, keep_last=3,
                                    keep_best=0, num_eval_images=0, async_checkpoints=True), workdir)
print("not killed", file=sys.stderr)
