"""A checkpoint written by an earlier fluxseg (tests/fixtures/checkpoint_v1) still restores and predicts the same."""
import os
import shutil

import numpy as np

from _helpers import REPO

FIXTURE = os.path.join(REPO, "tests", "fixtures", "checkpoint_v1")


def test_checkpoint_v1_restores_and_predicts_as_when_it_was_written(tmp_path):
    import fluxseg
    from fluxseg import infer

    workdir = str(tmp_path / "run")
    shutil.copytree(FIXTURE, workdir)  # restore must not need to write next to the fixture
    r = fluxseg.restore(workdir)
    assert r.step == 2 and r.config.model == "unet" and r.config.data.task == "segmentation"
    assert int(r.config.num_classes) == 6 and tuple(r.config.data.crop_size) == (32, 32)
    image = np.load(os.path.join(FIXTURE, "image.npy"))
    want = np.load(os.path.join(FIXTURE, "logits.npy"))
    got = infer.predict_logits(r, image)
    assert got.shape == want.shape == (20, 28, 6)
    # XLA's CPU code differs between instruction sets: equal up to float rounding.
    scale = np.max(np.abs(want))
    assert np.max(np.abs(got - want)) <= 1e-5 * scale
    top = np.sort(want, -1)
    untied = top[..., -1] - top[..., -2] > 1e-4 * scale
    np.testing.assert_array_equal(fluxseg.predict(r, image)[untied], want.argmax(-1)[untied])
