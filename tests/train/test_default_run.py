"""`python launch.py` (the default experiment) learns: mIoU well above chance.

Chance here: predicting background everywhere scores mIoU 0.133 on the
fluxseg_shapes validation split (background IoU 0.80, five classes at 0).
The full default run (1500 steps, ~3.6 min on 2 CPU cores) measured mIoU
0.712; CI runs the same command shortened to 600 steps (~1.5 min), which
measured 0.381 here; the threshold 0.30 is set from that run, well above
0.133. FLUXSEG_FULL_DEFAULT_RUN=1 also runs the full command (threshold 0.65).
"""
import json
import os

import pytest

from _helpers import run_python

CHANCE = 0.133


def _run(workdir, *overrides):
    proc = run_python(["launch.py", "--workdir", workdir, "--config.progress_bar=False",
                       *overrides], timeout=1800)
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    files = set(os.listdir(workdir))
    assert {"checkpoints", "metrics.jsonl", "tensorboard", "config.json"} <= files
    assert f"predictions_{summary['step']}.png" in files
    return summary


def test_default_run_shortened_beats_chance(tmp_path):
    summary = _run(str(tmp_path / "default"), "--config.num_train_steps=600")
    assert summary["step"] == 600
    assert summary["mIoU"] > 0.30 > 2 * CHANCE


@pytest.mark.skipif(not os.environ.get("FLUXSEG_FULL_DEFAULT_RUN"),
                    reason="the full default run takes ~4 min; set FLUXSEG_FULL_DEFAULT_RUN=1")
def test_full_default_run(tmp_path):
    summary = _run(str(tmp_path / "full"))
    assert summary["step"] == 1500 and summary["mIoU"] > 0.65
