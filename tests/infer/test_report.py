"""The report of `fluxseg eval`: the headline row, per-class rows, NaN as n/a."""
import json
import math

from fluxseg.infer.report import markdown, write


def _result(**scores):
    return {"workdir": "w", "step": 3, "split": "val", "num_examples": 1, "tta": None,
            "scales": [1.0], "class_names": ["sky", "road"], "support": [2, 1], **scores}


def test_markdown_leads_with_the_headline_in_its_order_then_each_class():
    result = _result(headline=["mIoU", "pixel_acc"], mIoU=0.5, pixel_acc=2 / 3, mean_acc=0.75,
                     **{"IoU/sky": 0.5, "IoU/road": 0.5, "acc/sky": 0.5, "acc/road": 1.0})
    lines = markdown(result).splitlines()
    assert lines[2] == "| mIoU | pixel_acc |" and lines[4] == "| 50.00 | 66.67 |"  # mean_acc: not a headline
    assert "| sky | 50.00 | 50.00 | 2 |" in lines and "| road | 50.00 | 100.00 | 1 |" in lines


def test_undefined_scores_read_n_a_and_null(tmp_path):
    result = _result(headline=["top1", "mean_acc"], top1=0.0, mean_acc=math.nan,
                     **{"acc/sky": math.nan, "acc/road": 0.0})
    write(result, tmp_path / "m.json", tmp_path / "m.md")
    assert json.loads((tmp_path / "m.json").read_text())["mean_acc"] is None
    md = (tmp_path / "m.md").read_text()
    assert "| 0.00 | n/a |" in md and "| sky | n/a | 2 |" in md and "IoU" not in md
