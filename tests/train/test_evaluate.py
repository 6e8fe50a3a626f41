"""`fluxseg eval` and `fluxseg predict` on a tiny trained run.

Metric references are written here from the confusion-matrix definitions
(mmsegmentation's aAcc, mAcc, IoU with ignore index 255; fwIoU of Long et
al. 2015) and cross-checked with torchmetrics where it defines the same
quantity; predictions for the reference come from model.apply on whole
32x32 images (one tile: no tiling involved).
"""
import json
import math
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import fluxseg
from fluxseg.cli import eval as eval_cli, predict as predict_cli
from fluxseg.infer.evaluation import evaluate

K = 6  # fluxseg_shapes classes


def _hand_confusion(preds, targets, n, ignore=255):
    cm = np.zeros((n, n), np.int64)
    for p, t in zip(preds, targets):
        for tv, pv in zip(np.ravel(t), np.ravel(p)):
            if tv != ignore:
                cm[tv, pv] += 1
    return cm


def _hand_metrics(cm):
    n = len(cm)
    total = cm.sum()
    acc, iou = [], []
    for c in range(n):
        tp, gt, pr = cm[c, c], cm[c].sum(), cm[:, c].sum()
        acc.append(tp / gt if gt else math.nan)
        iou.append(tp / (gt + pr - tp) if gt + pr - tp else math.nan)
    defined = lambda xs: [x for x in xs if not math.isnan(x)]  # noqa: E731
    fw = sum(cm[c].sum() / total * iou[c] for c in range(n) if cm[c].sum())
    return {"pixel_acc": np.trace(cm) / total, "mean_acc": np.mean(defined(acc)),
            "mIoU": np.mean(defined(iou)), "fwIoU": fw, "iou": iou}


def _model_masks(r, images):
    x = r.preprocess(jnp.asarray(np.stack(images), jnp.float32))
    return np.argmax(np.asarray(r.model.apply(r.variables, x, train=False)), -1)


def test_eval_cli_equals_hand_metrics_on_the_split(tiny_run, small_shapes_dir, capsys):
    import tensorflow_datasets as tfds
    out_dir = os.path.join(tiny_run, "report")
    assert eval_cli.main(["--workdir", tiny_run, "--out", out_dir, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    with open(os.path.join(out_dir, "metrics.json")) as f:
        got = json.load(f)
    ds = tfds.as_numpy(tfds.load("fluxseg_shapes/small", split="validation", data_dir=small_shapes_dir))
    examples = list(ds)
    r = fluxseg.restore(tiny_run)
    preds = _model_masks(r, [e["image"] for e in examples])
    targets = [e["segmentation_mask"][..., 0].astype(np.int64) for e in examples]
    cm = _hand_confusion(preds, targets, K)
    want = _hand_metrics(cm)
    assert got["num_examples"] == len(examples) == 18
    np.testing.assert_array_equal(np.array(got["confusion"]), cm)
    for k in ("pixel_acc", "mean_acc", "mIoU", "fwIoU"):
        assert got[k] == pytest.approx(want[k], abs=1e-9), k
    for name, v in zip(got["class_names"], want["iou"]):
        assert (got[f"IoU/{name}"] is None) if math.isnan(v) else got[f"IoU/{name}"] == pytest.approx(v)
    assert "| background |" in printed and "| mIoU |" not in printed.split("\n")[0]
    with open(os.path.join(out_dir, "metrics.md")) as f:
        assert f"{100 * want['mIoU']:.2f}" in f.read()


class _Examples:
    def __init__(self, items):
        self.items, self.num_examples = items, len(items)

    def __iter__(self):
        return iter(self.items)

    def __len__(self):
        return len(self.items)


def test_eval_at_own_sizes_with_ignored_pixels_matches_hand_and_torchmetrics(tiny_run, monkeypatch,
                                                                            tmp_path):
    from fluxseg import data

    rng = np.random.RandomState(0)
    items = []
    for h, w in [(32, 32), (45, 29), (20, 50), (33, 33), (7, 64)]:
        mask = rng.randint(0, K, (h, w)).astype(np.int32)
        mask[: h // 4] = 255  # unlabelled band: never counts
        items.append({"image": rng.randint(0, 256, (h, w, 3)).astype(np.uint8), "mask": mask})
    monkeypatch.setattr(data, "full_size_iterator", lambda cfg, split: _Examples(items))
    got = evaluate(tiny_run, "validation", out_dir=str(tmp_path), progress=False)
    r = fluxseg.restore(tiny_run)
    preds = [fluxseg.predict(r, it["image"]) for it in items]
    assert [p.shape for p in preds] == [it["mask"].shape for it in items]
    cm = _hand_confusion(preds, [it["mask"] for it in items], K)
    assert cm.sum() == sum(int((it["mask"] != 255).sum()) for it in items)
    np.testing.assert_array_equal(np.array(got["confusion"]), cm)
    want = _hand_metrics(cm)
    for k in ("pixel_acc", "mean_acc", "mIoU", "fwIoU"):
        assert got[k] == pytest.approx(want[k], abs=1e-9), k
    # torch and TensorFlow crash when loaded in one process: torchmetrics runs in its own.
    np.save(tmp_path / "p.npy", np.concatenate([x.ravel() for x in preds]).astype(np.int64))
    np.save(tmp_path / "t.npy", np.concatenate([it["mask"].ravel() for it in items]).astype(np.int64))
    code = (
        "import json, sys, numpy as np, torch\n"
        "from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex\n"
        "p, t = (torch.from_numpy(np.load(sys.argv[1] + f)) for f in ('/p.npy', '/t.npy'))\n"
        f"iou = MulticlassJaccardIndex({K}, average=None, ignore_index=255)(p, t).tolist()\n"
        f"acc = MulticlassAccuracy({K}, average='micro', ignore_index=255)(p, t).item()\n"
        "print(json.dumps({'iou': iou, 'acc': acc}))\n")
    tm = json.loads(subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True,
                                   capture_output=True, text=True).stdout)
    assert got["pixel_acc"] == pytest.approx(tm["acc"], abs=1e-6)
    for c, name in enumerate(got["class_names"]):
        if not math.isnan(want["iou"][c]):
            assert got[f"IoU/{name}"] == pytest.approx(tm["iou"][c], abs=1e-6)


def test_predict_cli_writes_masks_overlays_probs_and_reports_bad_files(tiny_run, tmp_path, capsys):
    rng = np.random.RandomState(1)
    src = tmp_path / "in"
    (src / "more").mkdir(parents=True)
    Image.fromarray(rng.randint(0, 256, (45, 70, 3)).astype(np.uint8)).save(src / "odd.png")
    Image.fromarray(rng.randint(0, 256, (97, 31)).astype(np.uint8)).save(src / "more" / "gray.png")
    Image.fromarray(rng.randint(0, 256, (20, 20, 3)).astype(np.uint8)).save(src / "g1.jpg")
    (src / "notes.png").write_text("not an image")
    rgba = rng.randint(0, 256, (10, 12, 4)).astype(np.uint8)
    Image.fromarray(rgba).save(src / "clear.png")
    out = tmp_path / "out"
    rc = predict_cli.main([str(src / "odd.png"), str(src / "more"), str(src / "g*.jpg"),
                                 str(src / "notes.png"), str(src / "clear.png"), str(src / "none*.png"),
                                 "--workdir", tiny_run, "--out", str(out), "--probs"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "notes.png: not an image" in err and "clear.png: has transparent pixels" in err
    assert "none*.png: no file matches" in err and "3 input(s) failed, 3 predicted" in err
    for stem, (h, w) in [("odd", (45, 70)), ("gray", (97, 31)), ("g1", (20, 20))]:
        mask = Image.open(out / f"{stem}_mask.png")
        assert mask.mode == "P" and mask.size == (w, h)
        assert np.asarray(mask).max() < K
        probs = np.load(out / f"{stem}_probs.npy")
        assert probs.shape == (h, w, K)
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
        np.testing.assert_array_equal(np.argmax(probs, -1), np.asarray(mask))
        overlay = Image.open(out / f"{stem}_overlay.png")
        assert overlay.mode == "RGB" and overlay.size[0] >= w and overlay.size[1] > h  # + title, legend


def test_classifier_eval_top1_top5_and_confusion_picture(small_shapes_dir, monkeypatch, tmp_path):
    import flax.linen as nn
    import jax

    from _helpers import tiny_config
    from fluxseg import data
    from fluxseg.train.checkpoint import Restored
    from fluxseg.weights import preprocess

    class Classifier(nn.Module):
        @nn.compact
        def __call__(self, x, train=False):
            x = nn.relu(nn.Conv(4, (3, 3))(x))
            return nn.Dense(5)(x.reshape(x.shape[0], -1)) * 5.0

    config = tiny_config(small_shapes_dir, task="classification", num_classes=5,
                         **{"data.task": "classification"})
    model = Classifier()
    variables = model.init(jax.random.key(0, impl="rbg"), jnp.zeros((1, 32, 32, 3)), train=False)
    r = Restored(model=model, variables=variables, config=config, preprocess=preprocess.get("unit"),
                 step=7, workdir=str(tmp_path))
    rng = np.random.RandomState(2)
    items = [{"image": rng.randint(0, 256, (h, w, 3)).astype(np.uint8), "label": np.int32(lab)}
             for (h, w), lab in zip([(32, 32), (40, 28), (20, 50), (32, 32), (64, 64), (33, 31)] * 2,
                                    [0, 1, 2, 3, 4, -1, 4, 3, 2, 1, 0, 2])]
    monkeypatch.setattr(data, "full_size_iterator", lambda cfg, split: _Examples(items))
    got = evaluate(str(tmp_path), "validation", out_dir=str(tmp_path / "rep"), progress=False,
                   restored=r)
    probs = [fluxseg.predict(r, it["image"], probs=True) for it in items]
    labelled = [(p, int(it["label"])) for p, it in zip(probs, items) if it["label"] >= 0]
    assert len(labelled) == 11  # the unlabelled example (-1) never counts
    top1 = np.mean([np.argmax(p) == y for p, y in labelled])
    top5 = np.mean([y in np.argsort(-p)[:5] for p, y in labelled])
    top2 = np.mean([y in np.argsort(-p)[:2] for p, y in labelled])
    assert got["top1"] == pytest.approx(top1) and got["top5"] == pytest.approx(top5) == 1.0
    assert top2 > top1 or top1 == 1.0  # top-k is not just top-1 here
    cm = np.zeros((5, 5), np.int64)
    for p, y in labelled:
        cm[y, np.argmax(p)] += 1
    np.testing.assert_array_equal(np.array(got["confusion"]), cm)
    w, h = Image.open(tmp_path / "rep" / "confusion.png").size
    assert w > 200 and h > 200
    md = open(tmp_path / "rep" / "metrics.md").read()
    assert "| mean_acc | top1 | top5 |" in md and "| circle |" in md  # per-class accuracy, by name
