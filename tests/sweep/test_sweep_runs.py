"""A real sweep of tiny runs: killed half-way, run again, reported.

One sweep (tests/sweep/tiny_experiment.py:resume) of four runs: two short
ones, one that fails as it starts, one long one. The sweep's process group is
SIGKILLed once the short runs have finished and the long one has saved a
checkpoint; the same command then skips the finished runs (their files are
untouched), resumes the long run from its checkpoint, reports the failure
with its log without stopping, and writes the report.
"""
import json
import os
import signal
import subprocess
import sys
import time

from _sweep_paths import REPO, TINY

from fluxseg.sweep import runs

SHORT = ["num_train_steps=6/seed=0", "num_train_steps=6/seed=1"]
FAILS = "name=nosuch/seed=0"
LONG = "num_train_steps=300,checkpoint_every_steps=25/seed=0"


def _files(workdir):
    """{relative path: mtime_ns} of everything in a run directory."""
    out = {}
    for dirpath, _, names in os.walk(workdir):
        for n in names:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, workdir)] = os.stat(p).st_mtime_ns
    return out


def _wait_for(condition, timeout, proc):
    end = time.time() + timeout
    while time.time() < end:
        if condition():
            return True
        if proc.poll() is not None:
            return condition()
        time.sleep(0.05)
    return False


def test_killed_sweep_resumes_skips_finished_runs_reports_failures(shapes_dir, sweep_env, tmp_path):
    root = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "fluxseg.cli", "sweep", "--config", f"{TINY}:resume",
           "--workdir", str(root), "--parallel", "2", f"--config.data.data_dir={shapes_dir}"]
    env = {**sweep_env, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    first = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             start_new_session=True)
    try:
        def killable():
            short_done = all(runs.status(str(root / p)).state == runs.FINISHED for p in SHORT)
            return short_done and max(runs.checkpoint_steps(str(root / LONG)), default=0) >= 25
        reached = _wait_for(killable, 240, first)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the sweep and every run it started
        out = first.communicate()[0].decode()
    assert reached, out[-3000:]
    killed_at = runs.checkpoint_steps(str(root / LONG))[-1]
    assert runs.status(str(root / LONG)).state == runs.PARTIAL and killed_at < 300
    before = {p: _files(root / p) for p in SHORT}

    second = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 1, second.stderr[-3000:]  # one run failed: the sweep says so
    assert "3 runs already finished" not in second.stdout  # the failed one is retried, not skipped
    assert "2 runs already finished; running 2" in second.stdout
    for p in SHORT:  # not rerun: every file as it was, one start in the log
        assert _files(root / p) == before[p]
        assert open(root / p / "log.txt").read().count("\n=== ") == 1

    long_log = open(root / LONG / "log.txt").read()
    assert long_log.count("\n=== ") == 2 and f"resuming from step {killed_at}" in long_log
    st = runs.status(str(root / LONG))
    assert st.state == runs.FINISHED and st.step == 300
    starts = [json.loads(line) for line in open(root / LONG / "environment.jsonl")]
    assert [s["step"] for s in starts] == [0, killed_at]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    assert starts[0]["git"]["commit"] == head and isinstance(starts[0]["git"]["dirty"], bool)
    assert starts[0]["packages"]["jax"] and starts[0]["devices"]["local"] == ["cpu:0 cpu"]
    assert starts[0]["env"]["XLA_FLAGS"] == env["XLA_FLAGS"]

    # The failure: reported with its log, on stderr, and as a missing run in the report.
    assert runs.status(str(root / FAILS)).describe() == "failed (exit status 2)"
    assert f"{FAILS}: failed (exit status 2); log {root / FAILS / 'log.txt'}" in second.stderr
    assert "config.optim.name='nosuch'; expected one of 'sgd'" in second.stderr

    res = json.load(open(root / "results.json"))
    short, failing, long_ = res["variants"]
    assert short["name"] == "num_train_steps=6" and short["seeds"] == [0, 1]
    for path, value in zip(short["metrics"]["mIoU"]["runs"], short["metrics"]["mIoU"]["values"]):
        assert runs.final_eval(str(root / path))["mIoU"] == value
    assert failing["metrics"] == {} and failing["missing"][0]["status"] == "failed (exit status 2)"
    assert long_["metrics"]["mIoU"]["n"] == 1 and long_["metrics"]["mIoU"]["ci95"] is None
    md = open(root / "results.md").read()
    assert f"name=nosuch seed 0: failed (exit status 2); log `{FAILS}/log.txt`" in md

    dry = subprocess.run([*cmd, "--dry-run"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0
    assert f"  {SHORT[0]:<44} finished" in dry.stdout and "failed (exit status 2)" in dry.stdout
