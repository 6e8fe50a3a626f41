"""`fluxseg eval`'s scores (fluxseg.infer.evaluation) on tiny trained runs.

Metric references are written here from the confusion-matrix definitions
(mmsegmentation's aAcc, mAcc, IoU with ignore index 255; fwIoU of Long et
al. 2015, tests/_helpers.py) and cross-checked with torchmetrics where it
defines the same quantity.
"""
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import _reference
import fluxseg
from _helpers import hand_confusion, hand_metrics, shapes_examples, tiny_config
from fluxseg.infer.evaluation import evaluate
from fluxseg.train import loop

K = 6  # fluxseg_shapes classes


class _Examples:
    def __init__(self, items):
        self.items, self.num_examples = items, len(items)

    def __iter__(self):
        return iter(self.items)

    def __len__(self):
        return len(self.items)


def _same(a, b) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def test_loop_eval_and_fluxseg_eval_score_alike_with_a_sigmoid_head_and_ignore_index_5(
        small_shapes_dir, tmp_path):
    """One scoring path (fluxseg.tasks): a one-channel head trained on the six shape classes
    with class 5 (cross) unscored. Every other id > 0 is foreground and class 5 is skipped,
    in the training loop's eval, in its re-run on the checkpoint (`launch.py --mode eval`)
    and in `fluxseg eval` alike, to the last digit (32x32 images: one tile each)."""
    config = tiny_config(small_shapes_dir, num_classes=1, loss="sigmoid_bce", isbi_metrics=True,
                         num_train_steps=2, eval_every_steps=2, checkpoint_every_steps=2,
                         **{"data.ignore_index": 5})
    workdir = str(tmp_path / "run")
    in_loop = loop.train_and_evaluate(config, workdir)
    again = loop.evaluate(None, workdir)
    full = evaluate(workdir, progress=False, out_dir=str(tmp_path / "report"))
    assert full["headline"] == ["mIoU", "pixel_acc", "mean_acc", "fwIoU", "pixel_error", "rand_error"]
    assert full["class_names"] == ["background", "foreground"]
    scored = [*full["headline"], *(k for k in full if k.startswith(("IoU/", "acc/")))]
    assert len(scored) == 10
    for k in scored:
        assert _same(in_loop[k], full[k]) and _same(again[k], full[k]), (k, in_loop[k], again[k], full[k])
    # What was scored, from the stored masks alone: every pixel but class 5's, ids 1-4 foreground.
    masks = np.stack([e["segmentation_mask"][..., 0] for e in shapes_examples(small_shapes_dir, "validation")])
    assert full["support"] == [int((masks == 0).sum()), int(((masks >= 1) & (masks <= 4)).sum())]
    assert (masks == 5).any() and ((masks >= 2) & (masks <= 4)).any()  # both rules had work to do


def test_eval_at_own_sizes_with_ignored_pixels_matches_hand_and_torchmetrics(tiny_run, monkeypatch,
                                                                            tmp_path):
    from fluxseg import data

    if not _reference.installed("torch", "torchmetrics"):
        _reference.missing("torchmetrics")
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
    cm = hand_confusion(preds, [it["mask"] for it in items], K)
    assert cm.sum() == sum(int((it["mask"] != 255).sum()) for it in items)
    np.testing.assert_array_equal(np.array(got["confusion"]), cm)
    want = hand_metrics(cm)
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
                                   capture_output=True, text=True, timeout=300).stdout)
    assert got["pixel_acc"] == pytest.approx(tm["acc"], abs=1e-6)
    for c, name in enumerate(got["class_names"]):
        if not math.isnan(want["iou"][c]):
            assert got[f"IoU/{name}"] == pytest.approx(tm["iou"][c], abs=1e-6)


def test_classifier_eval_top1_top5_per_class_accuracy_and_confusion_picture(small_shapes_dir,
                                                                          monkeypatch, tmp_path):
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from fluxseg import data
    from fluxseg.train.checkpoint import Restored
    from fluxseg.weights import preprocess

    names = ("ant", "bee", "cat", "dog", "eel", "fox", "gnu")

    class Classifier(nn.Module):
        @nn.compact
        def __call__(self, x, train=False):
            x = nn.relu(nn.Conv(4, (3, 3))(x))
            return nn.Dense(len(names))(x.reshape(x.shape[0], -1)) * 5.0

    config = tiny_config(small_shapes_dir, num_classes=len(names),
                         **{"data.task": "classification", "data.channels": 3})
    model = Classifier()
    variables = model.init(jax.random.key(0, impl="rbg"), jnp.zeros((1, 32, 32, 3)), train=False)
    r = Restored(model=model, variables=variables, config=config, preprocess=preprocess.get("unit"),
                 step=7, workdir=str(tmp_path))
    rng = np.random.RandomState(2)
    labels = [0, 1, 2, 3, 4, 5, 6, -1, 6, 5, 4, 3, 2, 1, 0, 2, 3, 9]  # -1 unlabelled, 9 no class
    items = [{"image": rng.randint(0, 256, (int(rng.randint(20, 60)), int(rng.randint(20, 60)), 3)
                                   ).astype(np.uint8), "label": np.int32(lab)} for lab in labels]
    monkeypatch.setattr(data, "full_size_iterator", lambda cfg, split: _Examples(items))
    monkeypatch.setattr(data, "info", lambda cfg: data.DataInfo(
        name="seven", task="classification", num_classes=len(names), class_names=names,
        num_examples={"validation": len(items)}, image_shape=None))
    got = evaluate(str(tmp_path), "validation", out_dir=str(tmp_path / "rep"), progress=False,
                   restored=r)
    probs = [fluxseg.predict(r, it["image"], probs=True) for it in items]
    labelled = [(p, int(it["label"])) for p, it in zip(probs, items) if 0 <= it["label"] < len(names)]
    assert len(labelled) == 16  # the unlabelled example and the one of no class never count
    ranks = [int(np.sum(p > p[y])) for p, y in labelled]  # 0 = the top class
    assert got["top1"] == np.mean([k < 1 for k in ranks]) and got["top5"] == np.mean([k < 5 for k in ranks])
    assert 0 < got["top1"] < got["top5"] < 1  # these numbers can tell top-1 from top-5 from 1
    cm = np.zeros((len(names), len(names)), np.int64)
    for p, y in labelled:
        cm[y, np.argmax(p)] += 1
    np.testing.assert_array_equal(np.array(got["confusion"]), cm)
    for k, name in enumerate(names):
        assert _same(got[f"acc/{name}"], cm[k, k] / cm[k].sum() if cm[k].sum() else math.nan)
    w, h = Image.open(tmp_path / "rep" / "confusion.png").size
    assert w > 200 and h > 200
    md = open(tmp_path / "rep" / "metrics.md").read()
    assert "| top1 | top5 | mean_acc |" in md and "| gnu |" in md  # per-class accuracy, by name
