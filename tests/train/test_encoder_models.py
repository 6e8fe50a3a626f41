"""Any decoder on any encoder is a config line: a U-Net on VGG16, an FCN on ResNet-50.

Each builds from a config, keeps the input's size, and takes one training
step that moves every trainable leaf of the decoder and the encoder.
"""
import functools

import jax
import numpy as np
import pytest

from fluxseg.train import build, config as config_lib, step as S


def _batch(n=2, size=32, classes=3, seed=0):
    rng = np.random.RandomState(seed)
    return {"image": rng.randint(0, 256, (n, size, size, 3)).astype(np.uint8),
            "mask": rng.randint(0, classes, (n, size, size)).astype(np.int32)}


@pytest.mark.parametrize("model,kwargs", [
    ("encoder_unet", {"encoder": "vgg16", "decoder_channels": (32, 16, 16, 8, 8)}),
    ("encoder_fcn", {"encoder": "resnet50", "variant": "8s", "width": 8}),
])
def test_decoder_on_another_encoder_trains_one_step(model, kwargs):
    cfg = config_lib.from_values(dict(model=model, model_kwargs=kwargs, num_classes=3,
                                      optim=dict(name="sgd", learning_rate=0.1)))
    spec = build.step_spec(cfg)
    state = jax.jit(lambda s: S.init_state(spec.model, spec.tx, s, (32, 32, 3), "rbg"))(0)
    batch = _batch()
    logits = jax.jit(lambda v, x: spec.model.apply(v, x))(state.variables(),
                                                          batch["image"].astype(np.float32))
    assert logits.shape == (2, 32, 32, 3)
    new, m = jax.jit(functools.partial(S.train_step, spec=spec))(state, batch)
    assert np.isfinite(float(m["loss"])) and int(m["count"]) == 2 * 32 * 32
    moved = jax.tree_util.tree_map(lambda a, b: float(np.abs(np.asarray(a) - np.asarray(b)).max()),
                                   state.params, new.params)
    for top in moved:
        assert max(jax.tree_util.tree_leaves(moved[top])) > 0, top
