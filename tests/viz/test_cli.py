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
