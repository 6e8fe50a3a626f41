"""`fluxseg eval` on a tiny trained run: the report's numbers, and what each flag changes."""
import json
import math
import os

import jax.numpy as jnp
import numpy as np
import pytest

import fluxseg
from _helpers import hand_confusion, hand_metrics, shapes_examples
from fluxseg.cli import eval as eval_cli

K = 6  # fluxseg_shapes classes


def _targets(examples):
    return [e["segmentation_mask"][..., 0].astype(np.int64) for e in examples]


def test_report_equals_hand_metrics_on_the_split(tiny_run, small_shapes_dir, tmp_path, capsys):
    out_dir = str(tmp_path / "report")
    assert eval_cli.main(["--workdir", tiny_run, "--out", out_dir, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    with open(os.path.join(out_dir, "metrics.json")) as f:
        got = json.load(f)
    examples = shapes_examples(small_shapes_dir, "validation")
    r = fluxseg.restore(tiny_run)
    # One 32x32 tile per image: the model applied to the whole batch, argmax by numpy.
    x = r.preprocess(jnp.asarray(np.stack([e["image"] for e in examples]), jnp.float32))
    preds = np.argmax(np.asarray(r.model.apply(r.variables, x, train=False)), -1)
    cm = hand_confusion(preds, _targets(examples), K)
    want = hand_metrics(cm)
    assert got["num_examples"] == len(examples) == 18 and got["split"] == "validation"
    np.testing.assert_array_equal(np.array(got["confusion"]), cm)
    for k in ("pixel_acc", "mean_acc", "mIoU", "fwIoU"):
        assert got[k] == pytest.approx(want[k], abs=1e-9), k
    for name, v in zip(got["class_names"], want["iou"]):
        assert (got[f"IoU/{name}"] is None) if math.isnan(v) else got[f"IoU/{name}"] == pytest.approx(v)
    assert "| background |" in printed
    summary = json.loads(printed[printed.rindex("\n{") + 1:])
    assert list(summary) == ["step", "split", "num_examples", "mIoU", "pixel_acc", "mean_acc", "fwIoU",
                             "images_per_s"]
    with open(os.path.join(out_dir, "metrics.md")) as f:
        assert f"| {100 * want['mIoU']:.2f} | {100 * want['pixel_acc']:.2f} |" in f.read()


def test_split_step_tta_and_scales_reach_the_predictions(tiny_run, small_shapes_dir, capsys):
    argv = ["--workdir", tiny_run, "--split", "test", "--step", "2", "--tta", "flip",
            "--scales", "0.5,1", "--no-progress"]
    assert eval_cli.main(argv) == 0
    out = os.path.join(tiny_run, "eval_test_step2_flip_ms0.5-1")  # the default report folder
    with open(os.path.join(out, "metrics.json")) as f:
        got = json.load(f)
    assert (got["split"], got["step"], got["tta"], got["scales"]) == ("test", 2, "flip", [0.5, 1.0])
    examples = shapes_examples(small_shapes_dir, "test")
    r = fluxseg.restore(tiny_run, 2)
    augmented = [fluxseg.predict(r, e["image"], tta="flip", scales=(0.5, 1.0)) for e in examples]
    plain = [fluxseg.predict(r, e["image"]) for e in examples]
    cm = hand_confusion(augmented, _targets(examples), K)
    assert got["num_examples"] == len(examples) == 10
    np.testing.assert_array_equal(np.array(got["confusion"]), cm)
    assert not np.array_equal(cm, hand_confusion(plain, _targets(examples), K))  # the flags mattered
    assert got["mIoU"] == pytest.approx(hand_metrics(cm)["mIoU"], abs=1e-12)


def test_a_missing_step_is_an_error_naming_the_steps_there(tiny_run, capsys):
    assert eval_cli.main(["--workdir", tiny_run, "--step", "99", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no checkpoint for step 99" in err and "available steps: [2]" in err
