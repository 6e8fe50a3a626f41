"""The per-device step: bf16 compute, frozen subtrees, padded eval batches."""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from fluxseg.train import build, config as config_lib, optim
from fluxseg.train import step as S


def _cfg(model, kwargs, **kw):
    c = dict(model=model, model_kwargs=kwargs, num_classes=6,
             loss="softmax_ce", dtype="float32", preprocess="unit", num_train_steps=10,
             optim=dict(name="sgd", learning_rate=0.1, momentum=0.9, schedule="constant",
                        frozen=None))
    c.update(kw)
    return config_lib.from_values(c)


def _batch(n=4, size=16, seed=0):
    rng = np.random.RandomState(seed)
    return {"image": rng.randint(0, 256, (n, size, size, 3)).astype(np.uint8),
            "mask": rng.randint(0, 6, (n, size, size)).astype(np.int32)}


UNET = {"features": 4, "padding": "same"}


def test_bfloat16_compute_keeps_float32_parameters_and_loss():
    batch = _batch()
    losses = {}
    for dtype in ("float32", "bfloat16"):
        spec = build.step_spec(_cfg("unet", UNET, dtype=dtype))
        state = jax.jit(lambda s: S.init_state(spec.model, spec.tx, s, (16, 16, 3), "rbg"))(0)
        new, m = jax.jit(functools.partial(S.train_step, spec=spec))(state, batch)
        assert {x.dtype for x in jax.tree_util.tree_leaves(new.params)} == {jnp.dtype("float32")}
        assert m["loss"].dtype == jnp.float32
        losses[dtype] = float(m["loss"])
    assert abs(losses["bfloat16"] - losses["float32"]) < 0.02 * abs(losses["float32"])


def test_frozen_pattern_leaves_those_parameters_untouched():
    cfg = _cfg("resnet18", {"width": 4}, data=dict(task="classification"), num_classes=5)
    cfg.optim.frozen = (r"^layer1_", r"^bn1/")
    spec = build.step_spec(cfg)
    state = jax.jit(lambda s: S.init_state(spec.model, spec.tx, s, (32, 32, 3), "rbg"))(0)
    batch = {"image": _batch(size=32)["image"], "label": np.array([0, 1, 2, 3], np.int32)}
    new, _ = jax.jit(functools.partial(S.train_step, spec=spec))(state, batch)
    for name, old in state.params.items():
        diff = max(float(jnp.abs(a - b).max()) for a, b in zip(
            jax.tree_util.tree_leaves(old), jax.tree_util.tree_leaves(new.params[name])))
        if name.startswith("layer1_") or name == "bn1":
            assert diff == 0.0, name
        else:
            assert diff > 0.0, name


def test_hybrid_freezes_its_vgg16_by_default():
    cfg = _cfg("hybrid_vgg16_resnet50", {}, data=dict(task="classification"), num_classes=10)
    module = build.model(cfg)
    patterns = build.frozen_patterns(cfg, module)
    shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros((1, 64, 64, 3)),
                                                train=False))
    mask = optim.frozen_mask(shapes["params"], patterns)
    frozen = sum(int(np.prod(p.shape)) for p, f in zip(
        jax.tree_util.tree_leaves(shapes["params"]), jax.tree_util.tree_leaves(mask)) if f)
    assert frozen == 14_714_688  # VGG16 without top, as Keras counts it


def test_padding_rows_of_an_eval_batch_count_nothing():
    spec = build.step_spec(_cfg("unet", UNET), with_optimizer=False)
    model = spec.model
    variables = jax.jit(lambda k: model.init(k, jnp.zeros((1, 16, 16, 3)), train=False))(
        jax.random.key(0, impl="rbg"))
    batch = _batch(n=3, seed=1)
    padded = {"image": np.concatenate([batch["image"], _batch(n=2, seed=2)["image"]]),
              "mask": np.concatenate([batch["mask"], np.full((2, 16, 16), 255, np.int32)])}
    ev = jax.jit(functools.partial(S.eval_step, spec=spec))
    a, b = ev(variables, batch), ev(variables, padded)
    np.testing.assert_array_equal(a["confusion"], b["confusion"])
    np.testing.assert_allclose(a["loss_terms"], b["loss_terms"], rtol=1e-6)
    assert int(a["confusion"].sum()) == 3 * 16 * 16
