"""A transfer-learning run (the seed's "Car or Truck" recipe): frozen backbone, global average
pooling, a dense head trained on top. The backbone ends the run as it began, and Grad-CAM on
the run, the way a user asks for it, looks through the frozen backbone."""
import jax
import numpy as np
from PIL import Image

import fluxseg
from fluxseg import cli, viz
from fluxseg.train import build, loop
from fluxseg.train.step import init_state


def test_frozen_backbone_stays_as_initialised_and_gradcam_on_the_run_is_not_blank(tiny, tmp_path):
    workdir = str(tmp_path / "frozen")
    config = tiny(model="gap_classifier", model_kwargs={"backbone": "resnet18", "freeze_backbone": True},
                  loss="softmax_ce", num_train_steps=4, checkpoint_every_steps=2,
                  num_eval_images=0, best_metric="top1", **{"data.task": "classification",
                                                            "data.crop_size": (64, 64),
                                                            "data.scale_range": (2.0, 2.0)})
    loop.train_and_evaluate(config, workdir)
    run = fluxseg.restore(workdir)
    assert run.step == 4
    module = build.model(run.config)
    tx, _ = build.optimizer(run.config, module)
    fresh = jax.jit(lambda s: init_state(module, tx, s, (64, 64, 3), run.config.init_rng_impl))(
        np.int32(run.config.seed))
    bits = lambda tree: [np.asarray(x).tobytes() for x in jax.tree_util.tree_leaves(tree)]  # noqa: E731
    assert bits(run.variables["params"]["backbone"]) == bits(fresh.params["backbone"])
    assert bits(run.variables["batch_stats"]["backbone"]) == bits(fresh.batch_stats["backbone"])
    assert np.abs(run.variables["params"]["dense"]["kernel"] - fresh.params["dense"]["kernel"]).max() > 0

    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    out = tmp_path / "figs"
    assert cli.main(["viz", "gradcam", "--workdir", workdir, str(tmp_path / "a.png"), "--out", str(out)]) == 0
    written = np.asarray(Image.open(out / "a_gradcam_backbone_layer4.png").convert("RGB"))
    x = np.asarray(run.preprocess(img[None].astype(np.float32)), np.float32)
    raw = np.asarray(viz.gradcam(run.model, run.variables, x, "backbone/layer4", relu=False, normalize=False))
    assert raw.shape == (1, 2, 2) and np.abs(raw).min() > 0  # layer4 of a 64x64 image: 2x2, none flat
    cam = viz.gradcam(run.model, run.variables, x, "backbone/layer4", size=(64, 64))
    np.testing.assert_array_equal(written[-64:, :64], viz.overlay(img, np.asarray(cam[0])))
