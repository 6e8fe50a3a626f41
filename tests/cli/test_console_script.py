"""`fluxseg train`, `fluxseg eval` and `fluxseg predict` end to end, as the installed console script."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

FLUXSEG = str(Path(sys.executable).parent / "fluxseg")


def _fluxseg(*args):
    proc = subprocess.run([FLUXSEG, *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def test_train_eval_predict_from_the_console_script(small_shapes_dir, tmp_path):
    work = tmp_path / "run"
    small = ["--config.data.builder_config=small", f"--config.data.data_dir={small_shapes_dir}",
             "--config.data.crop_size=(32, 32)", "--config.model_kwargs.features=4"]
    steps = ["--config.num_train_steps=2", "--config.eval_every_steps=2", "--config.checkpoint_every_steps=2",
             "--config.progress_bar=False", "--config.init_rng_impl=rbg"]
    _fluxseg("train", f"--workdir={work}", *small, *steps)
    assert (work / "checkpoints").is_dir() and (work / "metrics.jsonl").is_file()

    ev = _fluxseg("eval", f"--workdir={work}", "--no-progress")
    scores = json.loads(ev.stdout[ev.stdout.rindex("\n{") + 1:])
    assert scores["step"] == 2 and scores["num_examples"] == 18
    assert "| background |" in ev.stdout  # the per-class table, with the dataset's class names
    saved = json.loads((work / "eval_validation_step2" / "metrics.json").read_text())
    assert saved["mIoU"] == scores["mIoU"]
    assert sum(saved["support"]) == 18 * 32 * 32  # every validation pixel scored once

    # An image of a size the model never saw: the mask comes back at that size, in the dataset's colours.
    img = tmp_path / "odd.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (45, 70, 3), dtype=np.uint8)).save(img)
    _fluxseg("predict", f"--workdir={work}", str(img), "--out", str(tmp_path / "out"))
    mask = Image.open(tmp_path / "out" / "odd_mask.png")
    assert mask.mode == "P" and mask.size == (70, 45)
    assert int(np.asarray(mask).max()) < 6  # fluxseg_shapes has 6 classes
    assert Image.open(tmp_path / "out" / "odd_overlay.png").mode == "RGB"
