"""`fluxseg train`, `fluxseg eval` and `fluxseg predict` end to end on a tiny run."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

FLUXSEG = str(Path(sys.executable).parent / "fluxseg")


def test_train_eval_predict_from_the_console_script(tmp_path):
    work = tmp_path / "run"
    steps = ["--config.num_train_steps=4", "--config.eval_every_steps=4", "--config.checkpoint_every_steps=4",
             "--config.progress_bar=False", "--config.init_rng_impl=rbg"]
    train = subprocess.run([FLUXSEG, "train", f"--workdir={work}", *steps], capture_output=True, text=True)
    assert train.returncode == 0, train.stderr[-2000:]
    assert (work / "checkpoints").is_dir() and (work / "metrics.jsonl").is_file()

    ev = subprocess.run([FLUXSEG, "eval", f"--workdir={work}"], capture_output=True, text=True)
    assert ev.returncode == 0, ev.stderr[-2000:]
    scores = json.loads(ev.stdout[ev.stdout.index("{"):])
    assert scores["step"] == 4
    assert "| background |" in ev.stdout  # the per-class table, with the dataset's class names
    saved = json.loads((work / "eval_validation_step4" / "metrics.json").read_text())
    assert saved["mIoU"] == scores["mIoU"] and saved["num_examples"] == scores["num_examples"] > 0
    # mIoU is the mean of the six per-class IoUs (classes absent from both truth and prediction skipped).
    ious = [v for k, v in saved.items() if k.startswith("IoU/")]
    assert len(ious) == 6 and abs(saved["mIoU"] - np.nanmean(ious)) < 1e-9

    # An image of a size the model never saw: the mask comes back at that size, in the dataset's colours.
    img = tmp_path / "odd.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (45, 70, 3), dtype=np.uint8)).save(img)
    pr = subprocess.run([FLUXSEG, "predict", f"--workdir={work}", str(img), "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert pr.returncode == 0, pr.stderr[-2000:]
    mask = Image.open(tmp_path / "out" / "odd_mask.png")
    assert mask.mode == "P" and mask.size == (70, 45)
    assert int(np.asarray(mask).max()) < 6  # fluxseg_shapes has 6 classes
    assert Image.open(tmp_path / "out" / "odd_overlay.png").mode == "RGB"
