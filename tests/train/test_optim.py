"""Optimiser from config: schedules, frozen subtrees, accumulation, clipping."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fluxseg.train import optim
from fluxseg.train.config import base_config


def _cfg(**kw):
    c = base_config().optim
    c.update(dict(name="sgd", learning_rate=0.1, momentum=0.0, weight_decay=0.0,
                  schedule="constant", warmup_steps=0, end_lr_factor=0.0, power=0.9,
                  grad_clip_norm=0.0, accum_steps=1))
    c.update(kw)
    return c


def test_poly_schedule_is_the_deeplab_formula_after_warmup():
    lr = optim.schedule(_cfg(schedule="poly", warmup_steps=10), 110)
    assert float(lr(0)) == 0.0
    np.testing.assert_allclose(float(lr(5)), 0.05, rtol=1e-6)            # linear warmup
    for t in (10, 40, 109):
        np.testing.assert_allclose(float(lr(t)), 0.1 * (1 - (t - 10) / 100) ** 0.9, rtol=1e-5)


def test_cosine_schedule_ends_at_end_factor():
    lr = optim.schedule(_cfg(schedule="cosine", end_lr_factor=0.1), 100)
    np.testing.assert_allclose(float(lr(0)), 0.1, rtol=1e-6)
    np.testing.assert_allclose(float(lr(50)), 0.1 * (0.1 + 0.9 * 0.5), rtol=1e-5)
    np.testing.assert_allclose(float(lr(100)), 0.01, rtol=1e-5)


def _params():
    return {"vgg16": {"block1_conv1": {"kernel": jnp.ones((3,)), "bias": jnp.ones((2,))}},
            "head": {"kernel": jnp.full((3,), 2.0)}}


def test_frozen_patterns_get_no_update_and_no_state():
    tx, _ = optim.create(_cfg(name="adam", weight_decay=0.1), 10, frozen_patterns=(r"^vgg16/",))
    params = _params()
    state = tx.init(params)
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    updates, _ = tx.update(grads, state, params)
    new = optax.apply_updates(params, updates)
    np.testing.assert_array_equal(new["vgg16"]["block1_conv1"]["kernel"], 1.0)
    assert float(jnp.abs(new["head"]["kernel"] - 2.0).min()) > 0
    # The frozen subtree carries no Adam moments.
    moments = sum(x.size for x in jax.tree_util.tree_leaves(state) if x.ndim > 0)
    assert moments == 2 * 3  # mu and nu of the 3 head weights only


def test_coupled_weight_decay_is_pytorch_sgd():
    tx, _ = optim.create(_cfg(weight_decay=1e-3), 10)
    p = {"w": jnp.array([2.0])}
    u, _ = tx.update({"w": jnp.array([0.5])}, tx.init(p), p)
    np.testing.assert_allclose(u["w"], -0.1 * (0.5 + 1e-3 * 2.0), rtol=1e-6)


def test_clipping_by_global_norm():
    tx, _ = optim.create(_cfg(grad_clip_norm=1.0), 10)
    p = {"a": jnp.zeros(2), "b": jnp.zeros(2)}
    g = {"a": jnp.array([3.0, 0.0]), "b": jnp.array([0.0, 4.0])}
    u, _ = tx.update(g, tx.init(p), p)
    np.testing.assert_allclose(u["a"], [-0.1 * 0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(u["b"], [0.0, -0.1 * 0.8], rtol=1e-6)


def test_accumulation_equals_one_step_on_the_mean_gradient():
    x = np.random.RandomState(0).randn(8, 3).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5], np.float32)
    loss = lambda w, xb, yb: jnp.mean((xb @ w - yb) ** 2)  # noqa: E731
    w0 = jnp.zeros(3)
    big, _ = optim.create(_cfg(momentum=0.9), 4)
    s = big.init(w0)
    u, s = big.update(jax.grad(loss)(w0, x, y), s, w0)
    want = optax.apply_updates(w0, u)
    acc, _ = optim.create(_cfg(momentum=0.9, accum_steps=2), 8)
    s, w = acc.init(w0), w0
    for half in (slice(0, 4), slice(4, 8)):
        u, s = acc.update(jax.grad(loss)(w, x[half], y[half]), s, w)
        w = optax.apply_updates(w, u)
    np.testing.assert_allclose(w, want, rtol=1e-6)


def test_accumulation_keeps_no_accumulator_for_frozen_parameters():
    tx, _ = optim.create(_cfg(name="adam", accum_steps=2), 10, frozen_patterns=(r"^vgg16/",))
    params = _params()
    state = tx.init(params)
    # Adam's mu and nu plus the accumulated gradient, of the 3 head weights only.
    assert sum(x.size for x in jax.tree_util.tree_leaves(state) if x.ndim > 0) == 3 * 3
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    for _ in range(2):
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    np.testing.assert_array_equal(params["vgg16"]["block1_conv1"]["kernel"], 1.0)
    assert float(jnp.abs(params["head"]["kernel"] - 2.0).min()) > 0  # one update after two batches


def test_partition_splits_by_path_and_merges_back():
    params = _params()
    trainable, frozen, merge = optim.partition(params, (r"^vgg16/",))
    assert [x.shape for x in trainable] == [(3,)] and sorted(x.shape for x in frozen) == [(2,), (3,)]
    back = merge(trainable, frozen)
    assert jax.tree_util.tree_structure(back) == jax.tree_util.tree_structure(params)
    for a, b in zip(jax.tree_util.tree_leaves(back), jax.tree_util.tree_leaves(params)):
        assert a is b


def test_unknown_names_raise_with_choices():
    with pytest.raises(ValueError, match="sgd"):
        optim.create(_cfg(name="lamb"), 10)
    with pytest.raises(ValueError, match="poly"):
        optim.schedule(_cfg(schedule="step"), 10)


def test_logged_rate_is_the_rate_the_update_applied():
    # Plain SGD on a gradient of 1: each update moves the parameter by -lr.
    # With accumulation over 2 batches, batches 1-2 make update 0, 3-4 update 1.
    cfg = _cfg(schedule="poly", warmup_steps=3, accum_steps=2)
    tx, lr = optim.create(cfg, 20)
    p = jnp.zeros(())
    state = tx.init(p)
    for step in range(1, 9):
        u, state = tx.update(jnp.ones(()), state, p)
        new = optax.apply_updates(p, u)
        if step % 2 == 0:
            np.testing.assert_allclose(float(p - new), optim.learning_rate_at(cfg, lr, step),
                                       rtol=1e-6)
        p = new
    assert optim.learning_rate_at(cfg, lr, 4) > optim.learning_rate_at(cfg, lr, 2) == 0.0  # warmup


def test_a_missing_key_fails_loudly_instead_of_taking_a_second_default():
    cfg = _cfg(name="rmsprop")
    del cfg["eps"]
    with pytest.raises((AttributeError, KeyError), match="eps"):
        optim.create(cfg, 10)


def _two_updates(cfg, p0, grads):
    """The parameter after two updates of optim.create(cfg) with the gradients ``grads``."""
    tx, _ = optim.create(cfg, 10)
    p = jnp.asarray(p0)
    state = tx.init(p)
    for g in grads:
        u, state = tx.update(jnp.asarray(g), state, p)
        p = optax.apply_updates(p, u)
    return np.asarray(p, np.float64)


P0, G1, G2 = np.array([1.0, -2.0, 0.5]), np.array([0.3, -0.1, 2.0]), np.array([-0.2, 0.4, 1.0])


def test_adamw_decays_decoupled_from_the_gradient_as_loshchilov_and_hutter():
    lr, b1, b2, eps, wd = 0.1, 0.9, 0.99, 1e-8, 0.05
    got = _two_updates(_cfg(name="adamw", learning_rate=lr, b1=b1, b2=b2, eps=eps, weight_decay=wd),
                       P0, [G1, G2])
    p, m, v = P0.copy(), 0.0, 0.0
    for t, g in enumerate([G1, G2], start=1):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        p = p - lr * ((m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps) + wd * p)
    np.testing.assert_allclose(got, p, rtol=1e-5)
    coupled = _two_updates(_cfg(name="adam", learning_rate=lr, b1=b1, b2=b2, eps=eps, weight_decay=wd),
                           P0, [G1, G2])
    assert np.abs(coupled - got).max() > 1e-3  # not Adam with L2 in the gradient


def test_rmsprop_divides_by_the_running_root_mean_square():
    lr, rho, eps = 0.01, 0.9, 1e-7
    got = _two_updates(_cfg(name="rmsprop", learning_rate=lr, rho=rho, eps=eps), P0, [G1, G2])
    p, v = P0.copy(), 0.0
    for g in (G1, G2):
        v = rho * v + (1 - rho) * g * g
        p = p - lr * g / np.sqrt(v + eps)  # optax's form: eps inside the root (Keras adds it outside)
    np.testing.assert_allclose(got, p, rtol=1e-5)


def test_nesterov_momentum_is_pytorch_sgd_nesterov():
    lr, mu = 0.1, 0.9
    got = _two_updates(_cfg(momentum=mu, nesterov=True, learning_rate=lr), P0, [G1, G2])
    p, b = P0.copy(), 0.0
    for g in (G1, G2):
        b = mu * b + g
        p = p - lr * (g + mu * b)  # torch.optim.SGD(nesterov=True)
    np.testing.assert_allclose(got, p, rtol=1e-6)
    plain = _two_updates(_cfg(momentum=mu, learning_rate=lr), P0, [G1, G2])
    assert np.abs(plain - got).max() > 1e-3  # the look-ahead changed the second step
