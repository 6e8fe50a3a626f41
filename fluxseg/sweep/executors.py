"""Where the runs of a sweep execute: here (``local``) or on SLURM (``slurm``).

Every run is its own process (``python -m fluxseg.cli.sweep_child``, the
launcher's arguments), so a crash, a NaN or an out-of-memory error ends that
run only. Its stdout and stderr go to ``<run>/log.txt`` and its exit status to
``<run>/exit.json``; whether it finished is read back from its workdir
(fluxseg.sweep.runs), not from the exit status.

local: ``parallel`` runs at a time. With GPUs visible (CUDA_VISIBLE_DEVICES,
else /dev/nvidia*), they are split between the slots, each run seeing its
slot's GPUs only; on a CPU the runs share the cores. SIGINT or SIGTERM to the
sweep sends SIGTERM to each running run (each saves a checkpoint and stops)
and starts no more.

slurm: one job array through submitit (fluxseg/sweep/slurm.py).
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import glob
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Optional, Sequence

from fluxseg.sweep import runs as runs_lib
from fluxseg.sweep.runs import Run


@dataclasses.dataclass(frozen=True)
class Launch:
    """What every run of a sweep shares: the config file and the common overrides."""
    root: str                    # the sweep directory
    config: str                  # 'experiments/NAME.py[:ARG]'
    overrides: tuple = ()        # '--config.KEY=VALUE' arguments given to every run

    def workdir(self, run: Run) -> str:
        return os.path.join(os.path.abspath(self.root), run.path)

    def args(self, run: Run) -> list[str]:
        """The run's launcher arguments: ``python launch.py ARGS`` reproduces it by hand."""
        # No progress bar in a log file; an explicit --config.progress_bar in the
        # shared overrides comes later and wins.
        return [f"--config={self.config}", f"--workdir={self.workdir(run)}",
                "--config.progress_bar=False", *self.overrides, *run.config_args()]

    def command(self, run: Run) -> list[str]:
        return [sys.executable, "-m", "fluxseg.cli.sweep_child", *self.args(run)]

    def start(self, run: Run, env: Optional[dict] = None) -> subprocess.Popen:
        """Starts the run's process, its output appended to its log.txt."""
        workdir = self.workdir(run)
        os.makedirs(workdir, exist_ok=True)
        runs_lib.clear_exit(workdir)
        with open(os.path.join(workdir, runs_lib.RUN_FILE), "w") as f:
            json.dump({"config": self.config, "args": self.args(run)[2:], "seed": run.seed,
                       "overrides": run.overrides,
                       "command": "python launch.py " + " ".join(self.args(run))}, f, indent=1)
        with open(os.path.join(workdir, runs_lib.LOG_FILE), "a") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} "
                      f"{' '.join(self.command(run))}\n")
            log.flush()
            return subprocess.Popen(self.command(run), stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})

    def wait(self, run: Run, proc: subprocess.Popen, started: float) -> runs_lib.Status:
        rc = proc.wait()
        runs_lib.write_exit(self.workdir(run), rc, time.time() - started)
        return runs_lib.status(self.workdir(run))


def visible_gpus() -> list[str]:
    """GPU ids this process may use: CUDA_VISIBLE_DEVICES, else one per /dev/nvidiaN."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    nodes = [os.path.basename(p)[len("nvidia"):] for p in glob.glob("/dev/nvidia[0-9]*")]
    return sorted((n for n in nodes if n.isdigit()), key=int)


def device_slots(parallel: int, gpus: Sequence[str]) -> list[dict]:
    """The environment of each of ``parallel`` slots: disjoint GPU sets, or nothing on a CPU."""
    if parallel < 1:
        raise ValueError(f"--parallel must be at least 1, got {parallel}")
    if not gpus:
        return [{} for _ in range(parallel)]
    if parallel > len(gpus):
        raise ValueError(f"--parallel {parallel} needs at least one GPU per run, and "
                         f"{len(gpus)} are visible ({','.join(gpus)}); use --parallel {len(gpus)} or less")
    per = len(gpus) // parallel  # the remainder stays idle: runs of one sweep get equal devices
    return [{"CUDA_VISIBLE_DEVICES": ",".join(gpus[i * per:(i + 1) * per])} for i in range(parallel)]


class LocalExecutor:
    """Runs ``parallel`` runs at a time on this machine; one failure stops no other run."""

    def __init__(self, launch: Launch, parallel: int = 1, gpus: Optional[Sequence[str]] = None,
                 echo: Callable[[str], None] = print):
        self.launch, self.echo = launch, echo
        self.slots = device_slots(parallel, visible_gpus() if gpus is None else list(gpus))
        self._procs: dict[int, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self._stopping = False

    def _stop(self, signum, frame):
        if not self._stopping:
            self.echo(f"fluxseg sweep: {signal.Signals(signum).name}: asking the running runs to "
                      "save and stop; no new runs start")
        self._stopping = True
        with self._lock:
            for proc in self._procs.values():
                if proc.poll() is None:
                    proc.terminate()

    def _one(self, run: Run, free: "queue.Queue[int]", index: int, total: int):
        slot = free.get()
        try:
            if self._stopping:
                return run, None
            started = time.time()
            self.echo(f"[{index}/{total}] start {run.path}")
            proc = self.launch.start(run, self.slots[slot])
            with self._lock:
                self._procs[proc.pid] = proc
            st = self.launch.wait(run, proc, started)
            with self._lock:
                del self._procs[proc.pid]
            self.echo(f"[{index}/{total}] {st.describe()}: {run.path} ({time.time() - started:.0f} s)")
            return run, st
        finally:
            free.put(slot)

    def run(self, todo: Sequence[Run]) -> list[tuple[Run, Optional[runs_lib.Status]]]:
        """Runs ``todo``; returns each run with its status (None: not started, the sweep was stopped)."""
        free: "queue.Queue[int]" = queue.Queue()
        for i in range(len(self.slots)):
            free.put(i)
        previous = {s: signal.signal(s, self._stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            with concurrent.futures.ThreadPoolExecutor(len(self.slots)) as pool:
                futures = [pool.submit(self._one, r, free, i + 1, len(todo)) for i, r in enumerate(todo)]
                return [f.result() for f in futures]
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
