"""The local executor with stand-in runs (a few lines of Python instead of training):
GPUs split between the slots, a failure stops no other run, SIGINT stops the sweep
by asking each running run to save."""
import dataclasses
import os
import sys
import threading
import time

import pytest

from fluxseg.sweep import executors, runs

# A stand-in run: writes the GPUs it was given, then exits with the status it is told to;
# on SIGTERM it writes 'terminated' and exits 0, as the training loop does after saving.
STAND_IN = """
import os, signal, sys, time
out, code, sleep = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
def stop(*_):
    open(out + ".term", "w").write("terminated"); sys.exit(0)
signal.signal(signal.SIGTERM, stop)
open(out, "w").write(os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"))
time.sleep(sleep)
sys.exit(code)
"""


@dataclasses.dataclass(frozen=True)
class StandIn(executors.Launch):
    codes: tuple = ()
    sleep: float = 0.2

    def command(self, run):  # the run of seed s exits with codes[s]
        return [sys.executable, "-c", STAND_IN, os.path.join(self.workdir(run), "gpus"),
                str(self.codes[run.seed]), str(self.sleep)]


def test_slots_split_the_gpus_and_one_failure_stops_nothing(tmp_path):
    table = runs.plan([{"seed": s} for s in range(5)])
    launch = StandIn(root=str(tmp_path), config="x.py", codes=(0, 3, 0, 0, 0))
    done = executors.LocalExecutor(launch, parallel=2, gpus=["0", "1", "2", "3"], echo=lambda s: None).run(table)
    seen = [open(os.path.join(launch.workdir(r), "gpus")).read() for r in table]
    assert set(seen) == {"0,1", "2,3"}  # two slots, two GPUs each, disjoint
    states = [st.state for _, st in done]
    assert states == [runs.PARTIAL, runs.FAILED, runs.PARTIAL, runs.PARTIAL, runs.PARTIAL]
    assert runs.read_json(os.path.join(launch.workdir(table[1]), "exit.json"))["returncode"] == 3
    assert "=== " in open(os.path.join(launch.workdir(table[1]), "log.txt")).read()  # its command, logged


def test_device_slots():
    assert executors.device_slots(3, ["4", "5", "6", "7"]) == [
        {"CUDA_VISIBLE_DEVICES": "4"}, {"CUDA_VISIBLE_DEVICES": "5"}, {"CUDA_VISIBLE_DEVICES": "6"}]
    assert executors.device_slots(2, []) == [{}, {}]  # CPU: the runs share it
    with pytest.raises(ValueError, match="--parallel 3 needs at least one GPU per run, and 2 are visible"):
        executors.device_slots(3, ["0", "1"])


def test_visible_gpus_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert executors.visible_gpus() == ["2", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert executors.visible_gpus() == []


def test_sigint_asks_running_runs_to_save_and_starts_no_more(tmp_path):
    table = runs.plan([{"seed": s} for s in range(3)])
    launch = StandIn(root=str(tmp_path), config="x.py", codes=(0, 0, 0), sleep=60)
    ex = executors.LocalExecutor(launch, parallel=1, gpus=[], echo=lambda s: None)
    first = os.path.join(launch.workdir(table[0]), "gpus")

    def interrupt():
        while not os.path.exists(first):
            time.sleep(0.05)
        ex._stop(2, None)  # what Ctrl-C calls
    threading.Thread(target=interrupt, daemon=True).start()
    done = ex.run(table)
    assert open(first + ".term").read() == "terminated"
    assert [st is None for _, st in done] == [False, True, True]
