"""The SLURM executor: the sbatch script submitit writes for the sweep's job array, and
the same jobs run for real by submitit's LocalExecutor, preempted and requeued."""
import os
import pickle
import signal
import sys
import time

import pytest

from _sweep_paths import TINY

from fluxseg.sweep import executors, runs, slurm

pytest.importorskip("submitit")

OPTIONS = dict(partition="gpu", gpus_per_run=2, cpus_per_run=8, time_min=90,
               sbatch={"account": "proj", "qos": "high"}, setup=["module load cuda/12"], parallel=3)


def _fake_slurm(bin_dir, record):
    """sbatch and srun stand-ins: sbatch keeps the script it was given and answers as SLURM does."""
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\ncp "$1" {record}\necho "Submitted batch job 4242"\n')
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sacct").write_text("#!/bin/sh\nexit 0\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)


def test_one_job_array_with_the_partition_gpus_time_and_extra_options(tmp_path, monkeypatch):
    record = tmp_path / "submitted.sh"
    _fake_slurm(tmp_path / "bin", record)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    table = runs.plan([{"optim.learning_rate": lr, "seed": s} for lr in ("1e-3", "3e-3") for s in (0, 1)])
    launch = executors.Launch(root=str(tmp_path / "sweep"), config="experiments/default.py",
                              overrides=("--config.num_train_steps=10",))
    jobs = slurm.submit(launch, table, wait=False, echo=lambda s: None, **OPTIONS)
    assert [j.job_id for j in jobs] == ["4242_0", "4242_1", "4242_2", "4242_3"]
    script = record.read_text()
    for line in ("#SBATCH --array=0-3%3", "#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=2",
                 "#SBATCH --cpus-per-task=8", "#SBATCH --time=90", "#SBATCH --account=proj",
                 "#SBATCH --qos=high", "#SBATCH --ntasks-per-node=1", "#SBATCH --nodes=1",
                 f"#SBATCH --signal=USR2@{slurm.SIGNAL_DELAY_S}", "module load cuda/12"):
        assert line in script.splitlines(), f"{line!r} not in:\n{script}"
    assert "-m submitit.core._submit" in script
    # Each array task carries its run: the pickled call of task 2 is run 2's.
    with open(jobs[2].paths.submitted_pickle, "rb") as f:
        delayed = pickle.load(f)
    assert isinstance(delayed.function, slurm.RunJob) and delayed.args == (table[2].to_json(),)
    assert delayed.function.launch.args(table[2])[-2:] == ["--config.seed=0", "--config.optim.learning_rate=3e-3"]


def test_without_submitit_the_error_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setattr(slurm, "submitit", None)
    launch = executors.Launch(root=str(tmp_path), config="experiments/default.py")
    with pytest.raises(ImportError, match=r"pip install 'fluxseg\[slurm\]'"):
        slurm.submit(launch, runs.plan([{"seed": 0}]), **OPTIONS)


def _children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, IndexError, ValueError):
                continue
    return out


def test_preempted_job_saves_requeues_and_resumes(shapes_dir, sweep_env, tmp_path):
    launch = executors.Launch(root=str(tmp_path / "sweep"), config=f"{TINY}:resume",
                              overrides=(f"--config.data.data_dir={shapes_dir}",
                                         "--config.num_train_steps=300", "--config.checkpoint_every_steps=25"))
    (run,) = runs.plan([{"seed": 0}])
    workdir = launch.workdir(run)
    (job,) = slurm.submit(launch, [run], wait=False, cluster="local", echo=lambda s: None,
                          **{**OPTIONS, "time_min": 30})
    end = time.time() + 240
    while not runs.checkpoint_steps(workdir) and time.time() < end:
        time.sleep(0.05)
    assert runs.checkpoint_steps(workdir), runs.log_tail(workdir)
    # What SLURM does before a time limit or preemption: SIGUSR2 to every process of the step
    # (submitit's job process, and the training run it started, which ignores it).
    (task,) = _children(job._process.pid)
    for pid in [task, *_children(task)]:
        os.kill(pid, signal.SIGUSR2)
    result = job.result()  # requeued by submitit's local controller, then finished
    assert result["state"] == runs.FINISHED and result["final"]["step"] == 300
    log = open(os.path.join(workdir, "log.txt")).read()
    assert log.count("\n=== ") == 2, log[-3000:]
    # Saved on SIGTERM wherever it was (not only at a periodic save), resumed from there.
    stopped = int(log.split("stopped by SIGTERM at step ")[1].split(";")[0])
    assert 25 <= stopped < 300 and f"resuming from step {stopped}" in log
    assert runs.status(workdir).state == runs.FINISHED
