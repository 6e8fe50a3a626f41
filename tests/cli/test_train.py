"""The launcher (`python launch.py`, `fluxseg train`): flags, bad config values, the default
workdir and --mode eval. A mistake in the config ends the run in one line naming the key
and what it accepts, before anything is written."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from _helpers import REPO

LAUNCH = os.path.join(REPO, "launch.py")


def _launch(*args, cwd=REPO):
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, LAUNCH, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def _one_line(proc) -> str:
    """fluxseg's one line on stderr (TensorFlow's start-up notes aside), and no traceback."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    ours = [line for line in proc.stderr.splitlines() if line.startswith("fluxseg")]
    assert len(ours) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return ours[0]


def test_unknown_override_names_the_valid_keys(tmp_path):
    line = _one_line(_launch(f"--workdir={tmp_path / 'run'}", "--config.optim.epz=1e-3"))
    assert "epz" in line and "config.optim" in line
    for key in ("eps", "momentum", "learning_rate", "schedule"):
        assert key in line, line
    assert not (tmp_path / "run").exists()   # nothing was trained or written


def test_unknown_group_names_the_top_level_keys(tmp_path):
    line = _one_line(_launch(f"--workdir={tmp_path / 'run'}", "--config=experiments/s3_fcn_resnet18.py:shapes",
                             "--config.optimizer.eps=1"))
    assert "optimizer" in line and "keys of config are" in line and "optim" in line and "batch_size" in line


@pytest.mark.parametrize("override,says", [
    ("--config.batch_size=-4", ["config.batch_size=-4", "positive integer"]),
    ("--config.model=unet3", ["config.model='unet3'", "unet_resnet50", "fcn_resnet18", "cnn_small"]),
    ("--config.data.name=no_such_ds", ["data.name='no_such_ds'", "fluxseg_shapes", "fluxseg_voc2012",
                                       "fluxseg_isbi2012", "fluxseg_image_folder", "fluxseg_segmentation_folder"]),
    ("--config.ignore_index=0", ["--config.data.ignore_index"]),
    ("--config.num_classes=3", ["config.num_classes=3", "6 classes", "leave it unset"]),
])
def test_a_bad_value_ends_in_one_line_naming_the_key_and_what_it_accepts(override, says, small_shapes_dir,
                                                                        tmp_path):
    line = _one_line(_launch(f"--workdir={tmp_path / 'run'}", override, "--config.data.builder_config=small",
                             f"--config.data.data_dir={small_shapes_dir}"))
    for text in says:
        assert text in line, line
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_mode_eval_in_the_default_workdir_scores_the_checkpoint_as_the_run_did(tiny_run, tmp_path):
    # `python launch.py` without --workdir works in runs/<experiment> of the current folder.
    shutil.copytree(tiny_run, tmp_path / "runs" / "default")
    proc = _launch("--mode", "eval", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    workdir = str(tmp_path / "runs" / "default")
    assert f"fluxseg: done; workdir {workdir}" in proc.stdout
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    with open(os.path.join(tiny_run, "metrics.jsonl")) as f:
        trained = [json.loads(line) for line in f if '"validation"' in line][-1]
    assert summary["step"] == trained["step"] == 2
    for key in ("mIoU", "pixel_acc", "mean_acc", "fwIoU", "loss"):
        assert summary[key] == trained[key], key
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        assert json.loads(f.readlines()[-1])["split"] == "eval_validation"
