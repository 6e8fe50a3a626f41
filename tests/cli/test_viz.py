"""`fluxseg viz`: the files it writes hold exactly what the library computes."""
import jax
import numpy as np
from PIL import Image

from fluxseg import cli, models, viz
from fluxseg.weights import preprocess


def test_gradcam_command_writes_the_library_overlay(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (150, 150, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    rc = cli.main(["viz", "gradcam", "--model", "cnn_small", "--weights", "random", str(tmp_path / "a.png"), "--out", str(tmp_path / "out")])
    assert rc == 0
    written = np.asarray(Image.open(tmp_path / "out" / "a_gradcam_conv2d_3.png").convert("RGB"))
    # What `--weights random` means: model.init with key 0, pixels / 255 as in DLwP.
    model = models.create("cnn_small")
    v = jax.jit(lambda x: model.init(jax.random.key(0), x, train=False))(np.zeros((1, 150, 150, 3), np.float32))
    x = np.asarray(preprocess.unit(img[None].astype(np.float32)), np.float32)
    cam = viz.gradcam(model, v, x, "conv2d_3", size=(150, 150))
    expect = viz.overlay(img, np.asarray(cam[0]))
    assert written.shape[0] > 150  # a caption band above the image
    np.testing.assert_array_equal(written[-150:, :150], expect)


def test_errors_name_the_fix(tmp_path, capsys):
    rc = cli.main(["viz", "gradcam", "--model", "no_such_model", "x.png", "--out", str(tmp_path)])
    assert rc == 2 and "registered models" in capsys.readouterr().err
    rc = cli.main(["viz", "filters", "--model", "vgg16", "--weights", str(tmp_path / "missing.h5"), "--layer", "block1_conv1", "--out", str(tmp_path)])
    assert rc == 2 and "no such file" in capsys.readouterr().err


def _run_inputs(tiny_run, tmp_path):
    import fluxseg

    img = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    r = fluxseg.restore(tiny_run)
    return img, r, np.asarray(r.preprocess(img[None].astype(np.float32)), np.float32)


def test_activations_of_a_segmentation_run_are_its_own(tiny_run, tmp_path):
    img, r, x = _run_inputs(tiny_run, tmp_path)
    out = tmp_path / "out"
    assert cli.main(["viz", "activations", "--workdir", tiny_run, str(tmp_path / "a.png"), "--out", str(out)]) == 0
    acts = viz.activations(r.model, r.variables, x)
    written = {p.name for p in out.iterdir()}
    assert written == {f"a_activations_{name.replace('/', '_')}.png" for name in acts}
    name, fmap = next(iter(acts.items()))
    grid = viz.colorize(viz.activation_grid(np.asarray(fmap[0]), per_row=16, margin=1))
    k = -(-64 // fmap.shape[1])  # small maps are enlarged to tiles of >= 64 px, below a caption
    png = np.asarray(Image.open(out / f"a_activations_{name.replace('/', '_')}.png").convert("RGB"))
    np.testing.assert_array_equal(png[-grid.shape[0] * k::k, :grid.shape[1] * k:k], grid)


def test_gradcam_of_a_segmentation_run_explains_the_pixels_of_its_class(tiny_run, tmp_path):
    img, r, x = _run_inputs(tiny_run, tmp_path)
    out = tmp_path / "out"
    argv = ["viz", "gradcam", "--workdir", tiny_run, "--class-id", "1", str(tmp_path / "a.png"), "--out", str(out)]
    assert cli.main(argv) == 0
    cam = viz.gradcam(r.model, r.variables, x, "bottom", viz.segmentation_target(1), size=(32, 32))
    written = np.asarray(Image.open(out / "a_gradcam_bottom.png").convert("RGB"))
    np.testing.assert_array_equal(written[-32:, :32], viz.overlay(img, np.asarray(cam[0])))
    # Without a class the command says what a segmentation model needs.
    assert cli.main(argv[:3] + argv[5:]) == 2


def test_pooling_of_a_run_pools_its_own_features(tiny_run, tmp_path, monkeypatch):
    from fluxseg.viz import figures, pooling

    img, r, x = _run_inputs(tiny_run, tmp_path)
    drawn = []
    real = figures.gap_figure
    monkeypatch.setattr(figures, "gap_figure", lambda *a, **k: drawn.append(real(*a, **k)) or drawn[-1])
    out = tmp_path / "out"
    assert cli.main(["viz", "pooling", "--workdir", tiny_run, str(tmp_path / "a.png"), "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"pooling_shift.png", "pooling_gap_features.png", "a_bilinear_x2.png"}
    np.testing.assert_allclose(drawn[0], np.asarray(pooling.gap_features(r.model, r.variables, x)), rtol=1e-6)
