"""Per-pixel loss weights (the U-Net border weight map) in the losses and the train step."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fluxseg import models, tasks
from fluxseg.tasks import losses
from fluxseg.train.step import StepSpec, init_state, train_step


def test_weighted_ce_multiplies_pixels_and_keeps_the_valid_count():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 5, 6, 3)).astype(np.float32)
    target = rng.integers(0, 3, (2, 5, 6)).astype(np.int32)
    target[0, 0] = 255
    weights = rng.uniform(0.5, 12, (2, 5, 6)).astype(np.float32)
    total, count = losses.softmax_cross_entropy(logits, target, pixel_weights=weights, ignore_index=255)
    logp = jax.nn.log_softmax(logits)
    valid = target != 255
    ce = -np.take_along_axis(np.asarray(logp), np.where(valid, target, 0)[..., None], -1)[..., 0]
    np.testing.assert_allclose(total, np.sum(ce * weights * valid), rtol=1e-5)
    assert float(count) == valid.sum()  # normalised by valid pixels, not by the weights
    t1, c1 = losses.softmax_cross_entropy(logits, target, pixel_weights=np.ones_like(weights), ignore_index=255)
    t0, c0 = losses.softmax_cross_entropy(logits, target, ignore_index=255)
    np.testing.assert_allclose([t1, c1], [t0, c0], rtol=1e-6)


def test_train_step_uses_the_batch_weight_on_the_output_tile():
    model = models.create("unet", num_classes=2, features=2, padding="valid")
    spec = StepSpec(model=model, tx=optax.sgd(0.0), task=tasks.create("segmentation", num_classes=2,
                                                                     ignore_index=255))
    state = init_state(model, spec.tx, 0, (188, 188, 1), rng_impl="rbg")
    rng = np.random.default_rng(1)
    batch = {"image": rng.integers(0, 256, (2, 188, 188, 1), dtype=np.uint8),
             "mask": rng.integers(0, 2, (2, 188, 188)).astype(np.int32)}
    step = jax.jit(lambda s, b: train_step(s, b, spec))
    _, plain = step(state, batch)
    _, ones = step(state, {**batch, "weight": np.ones((2, 188, 188), np.float32)})
    np.testing.assert_allclose(ones["loss"], plain["loss"], rtol=1e-6)
    # Weight 3 on the output tile only (the valid U-Net's logits are its centre): loss x3.
    x = jnp.zeros((1, 188, 188, 1))
    oh = jax.eval_shape(lambda: model.apply(state.variables(), x, train=False)).shape[1]
    m = (188 - oh) // 2
    w = np.full((2, 188, 188), 100.0, np.float32)
    w[:, m:m + oh, m:m + oh] = 3.0
    _, tripled = step(state, {**batch, "weight": w})
    np.testing.assert_allclose(tripled["loss"], 3 * plain["loss"], rtol=1e-5)
