"""The launcher's flag parsing: a mistyped --config override is an error naming the valid keys."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _launch(*args, tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "launch.py", f"--workdir={tmp_path / 'run'}", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_unknown_override_names_the_valid_keys(tmp_path):
    proc = _launch("--config.optim.epz=1e-3", tmp_path=tmp_path)
    assert proc.returncode != 0
    line = [l for l in proc.stderr.splitlines() if "epz" in l][-1]
    assert "config.optim" in line
    for key in ("eps", "momentum", "learning_rate", "schedule"):
        assert key in line, line
    assert not (tmp_path / "run").exists()   # nothing was trained or written


def test_unknown_group_names_the_top_level_keys(tmp_path):
    proc = _launch("--config=experiments/s3_fcn_resnet18.py:shapes", "--config.optimizer.eps=1",
                   tmp_path=tmp_path)
    assert proc.returncode != 0
    line = [l for l in proc.stderr.splitlines() if "optimizer" in l][-1]
    assert "keys of config are" in line and "optim" in line and "batch_size" in line
