"""`fluxseg predict` on tiny trained runs: masks, overlays, probabilities, TTA, classifiers, bad files."""
import json

import numpy as np
from PIL import Image

import fluxseg
from fluxseg.cli import predict as predict_cli

K = 6  # fluxseg_shapes classes


def _save(path, shape, seed):
    Image.fromarray(np.random.RandomState(seed).randint(0, 256, shape).astype(np.uint8)).save(path)
    return str(path)


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



def test_tta_flip_writes_the_flip_averaged_prediction(tiny_run, tmp_path):
    path = _save(tmp_path / "odd.png", (37, 51, 3), 3)
    out = tmp_path / "out"
    assert predict_cli.main([path, "--workdir", tiny_run, "--out", str(out), "--tta", "flip", "--probs"]) == 0
    r = fluxseg.restore(tiny_run)
    image = np.asarray(Image.open(path))
    want = fluxseg.predict(r, image, probs=True, tta="flip")
    np.testing.assert_allclose(np.load(out / "odd_probs.npy"), want, atol=1e-6)
    mask = np.asarray(Image.open(out / "odd_mask.png"))
    np.testing.assert_array_equal(mask, np.argmax(want, -1))
    assert not np.array_equal(mask, fluxseg.predict(r, image))  # the flip changed some pixels


def test_classifier_prints_and_saves_its_ranked_classes(tiny_classifier_run, tmp_path, capsys):
    paths = [_save(tmp_path / f"{k}.png", shape, k) for k, shape in enumerate([(32, 32, 3), (45, 70, 3), (20, 24)])]
    out = tmp_path / "out"
    assert predict_cli.main([*paths, "--workdir", tiny_classifier_run, "--out", str(out), "--tta", "flip"]) == 0
    printed = capsys.readouterr().out.splitlines()
    saved = json.loads((out / "classes.json").read_text())
    r = fluxseg.restore(tiny_classifier_run)
    names = ("circle", "square", "triangle", "ring", "cross")  # the five shapes, as the dataset names them
    for path, line in zip(paths, printed):
        probs = fluxseg.predict(r, np.asarray(Image.open(path)), probs=True, tta="flip")
        order = np.argsort(-probs)
        assert [n for n, _ in saved[path]] == [names[k] for k in order]
        np.testing.assert_allclose([p for _, p in saved[path]], probs[order], atol=1e-6)
        assert line.startswith(f"{path}: {names[order[0]]} ({probs[order[0]]:.3f}); top-5 ")
    assert not list(out.glob("*_mask.png"))  # a classifier draws no masks
