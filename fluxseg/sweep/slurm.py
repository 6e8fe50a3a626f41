"""A sweep on SLURM: one job array through submitit, one array task per run.

Each task runs the same process as the local executor (a run's own
``python -m fluxseg.cli.sweep_child``) and waits for it. When SLURM is about to
stop the job (time limit or preemption: submitit asks for SIGUSR2
``signal_delay_s`` before it), submitit calls ``RunJob.checkpoint``: the run
gets SIGTERM, saves a checkpoint and exits, and submitit requeues the task,
which resumes the run from its workdir. The child ignores SIGUSR2 itself
(fluxseg/cli/sweep_child.py), since SLURM signals every process of the step.

submitit is optional: ``pip install 'fluxseg[slurm]'``.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Optional, Sequence

from fluxseg.sweep import runs as runs_lib
from fluxseg.sweep.executors import Launch
from fluxseg.sweep.runs import Run

try:
    import submitit
except ImportError:  # the module still imports: submit() says what to install
    submitit = None

INSTALL = "the slurm executor needs submitit: pip install 'fluxseg[slurm]'"
# Seconds between SLURM's warning signal and the kill: the run's save must fit.
SIGNAL_DELAY_S = 120


class RunJob:
    """The callable of one array task: runs a run's process to its end.

    submitit treats a callable with a ``checkpoint`` method as checkpointable
    (``submitit.helpers.Checkpointable`` is the same contract as a base class).
    """

    def __init__(self, launch: Launch):
        self.launch = launch
        self._proc: Optional[subprocess.Popen] = None

    def __call__(self, run: dict) -> dict:
        r = Run(**run)
        started = time.time()
        self._proc = self.launch.start(r)
        st = self.launch.wait(r, self._proc, started)
        if st.state != runs_lib.FINISHED:
            # A failed job, with the run's log in submitit's error file and the status in the sweep.
            raise RuntimeError(f"{r.path}: {st.describe()}\n{runs_lib.log_tail(self.launch.workdir(r))}")
        return {"path": r.path, "state": st.state, "final": st.final}

    def checkpoint(self, run: dict):
        """Called by submitit before SLURM stops the job: the run saves, the task requeues."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)  # the training loop saves at its next step and exits
            _reap(proc.pid, timeout=SIGNAL_DELAY_S - 15)
        return submitit.helpers.DelayedSubmission(RunJob(self.launch), run)

    def __getstate__(self):
        return {"launch": self.launch, "_proc": None}


def _reap(pid: int, timeout: float) -> None:
    """Waits for the child ``pid`` to exit (at most ``timeout`` s; after that SLURM kills it
    and the newest complete checkpoint stays).

    Not Popen.wait: this runs in submitit's signal handler, which interrupts
    ``__call__`` inside Popen.wait, whose lock a second wait could never take.
    """
    end = time.time() + timeout
    while time.time() < end:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
        except ChildProcessError:
            return  # reaped already
        time.sleep(0.2)


def executor(folder: str, *, partition: Optional[str], gpus_per_run: Optional[int],
             cpus_per_run: Optional[int], time_min: int, sbatch: dict, setup: Sequence[str],
             parallel: int, cluster: str = "slurm"):
    """A submitit executor for the sweep's job array (``cluster='local'`` runs the
    same jobs as local processes, for tests)."""
    if submitit is None:
        raise ImportError(INSTALL)
    ex = submitit.AutoExecutor(folder=folder, cluster=cluster)
    params = {"timeout_min": int(time_min), "tasks_per_node": 1, "nodes": 1, "name": "fluxseg-sweep",
              "slurm_signal_delay_s": SIGNAL_DELAY_S, "slurm_array_parallelism": int(parallel)}
    if partition:
        params["slurm_partition"] = partition
    if gpus_per_run is not None:
        params["gpus_per_node"] = int(gpus_per_run)
    if cpus_per_run is not None:
        params["cpus_per_task"] = int(cpus_per_run)
    if sbatch:
        params["slurm_additional_parameters"] = dict(sbatch)
    if setup:
        params["slurm_setup"] = list(setup)
    ex.update_parameters(**params)
    return ex


def submit(launch: Launch, todo: Sequence[Run], *, wait: bool = True, cluster: str = "slurm",
           echo=print, **options) -> list:
    """Submits ``todo`` as one job array; with ``wait``, returns once every job ended."""
    if not todo:
        return []
    folder = os.path.join(launch.root, "slurm")
    ex = executor(folder, cluster=cluster, **options)
    jobs = ex.map_array(RunJob(launch), [r.to_json() for r in todo])
    echo(f"submitted {len(jobs)} runs as job array {jobs[0].job_id.split('_')[0]} "
         f"(submitit files in {folder})")
    if not wait:
        return jobs
    try:
        for job, r in zip(jobs, todo):
            try:
                job.result()
                echo(f"finished: {r.path}")
            except Exception as e:  # noqa: BLE001 - one run's failure is reported, not raised
                echo(f"{r.path}: job {job.job_id} ended without finishing: {str(e).splitlines()[-1][:200]}")
    except KeyboardInterrupt:
        echo("stopped waiting; the jobs keep running. `fluxseg sweep report DIR` when they end, "
             "or run the same command again to resubmit the unfinished runs")
    return jobs
