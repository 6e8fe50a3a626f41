"""The per-device step: bf16 compute, frozen subtrees, padded eval batches."""
import functools

import flax.linen as nn
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


def _resnet_cfg(frozen, **optim_kw):
    cfg = _cfg("resnet18", {"width": 4}, data=dict(task="classification"), num_classes=5)
    cfg.optim.frozen = frozen
    cfg.optim.update(optim_kw)
    return cfg


def _cls_batch(seed=0):
    return {"image": _batch(size=32, seed=seed)["image"], "label": np.array([0, 1, 2, 3], np.int32)}


def _bits(tree):
    return [np.asarray(x).tobytes() for x in jax.tree_util.tree_leaves(tree)]


# A frozen part in the middle: trainable parameters below it need the gradient
# through it, and the part above has its own.
MIDDLE = (r"^layer2_", r"^bn1/")


def test_frozen_parameters_stay_bit_identical_and_carry_no_optimiser_state():
    spec = build.step_spec(_resnet_cfg(MIDDLE, weight_decay=1e-3, momentum=0.9))
    assert spec.frozen == MIDDLE  # config.optim.frozen overrides the model's own (none here)
    state = jax.jit(lambda s: S.init_state(spec.model, spec.tx, s, (32, 32, 3), "rbg"))(0)
    step = jax.jit(functools.partial(S.train_step, spec=spec))
    new = state
    for i in range(3):
        new, _ = step(new, _cls_batch(i))
    for name, old in state.params.items():
        if name.startswith("layer2_") or name == "bn1":
            assert _bits(new.params[name]) == _bits(old), name
        else:
            diff = max(float(jnp.abs(a - b).max()) for a, b in zip(
                jax.tree_util.tree_leaves(old), jax.tree_util.tree_leaves(new.params[name])))
            assert diff > 0.0, name
    # SGD momentum keeps one trace element per trainable weight, none for the frozen ones.
    mask = optim.frozen_mask(state.params, MIDDLE)
    trainable = sum(x.size for x, f in zip(jax.tree_util.tree_leaves(state.params),
                                           jax.tree_util.tree_leaves(mask)) if not f)
    frozen = sum(x.size for x, f in zip(jax.tree_util.tree_leaves(state.params),
                                        jax.tree_util.tree_leaves(mask)) if f)
    assert frozen > 0
    assert sum(x.size for x in jax.tree_util.tree_leaves(new.opt_state) if x.ndim > 0) == trainable


class _TwoDense(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
        x = nn.relu(nn.Dense(4, name="body")(x.reshape(x.shape[0], -1)))
        return nn.Dense(5, name="head")(x)


def test_frozen_leaves_keep_their_bits_op_by_op():
    """Under jit XLA folds a zero update away; run op by op, p + 0.0 would turn -0.0 into +0.0."""
    cfg = _resnet_cfg(("^body/",), weight_decay=1e-3, momentum=0.9)
    tx, _ = build.optimizer(cfg, None)
    spec = S.StepSpec(model=_TwoDense(), tx=tx, task=build.task(cfg), frozen=("^body/",))
    state = S.init_state(spec.model, tx, 0, (4, 4, 3))
    body = {k: -jnp.zeros_like(v) if k == "bias" else v for k, v in state.params["body"].items()}
    state = state.replace(params=dict(state.params, body=body))
    batch = {"image": _batch(size=4)["image"], "label": np.array([0, 1, 2, 3], np.int32)}
    with jax.disable_jit():
        new, _ = S.train_step(state, batch, spec)
    assert _bits(new.params["body"]) == _bits(body)
    assert np.signbit(np.asarray(new.params["body"]["bias"])).all()
    assert float(jnp.abs(new.params["head"]["kernel"] - state.params["head"]["kernel"]).max()) > 0


def test_trainable_parameters_take_the_step_they_take_without_freezing():
    """Closing over the frozen part changes no gradient of the trainable ones."""
    batch = _cls_batch()
    news = {}
    for frozen in (MIDDLE, ()):
        spec = build.step_spec(_resnet_cfg(frozen))
        state = jax.jit(lambda s: S.init_state(spec.model, spec.tx, s, (32, 32, 3), "rbg"))(0)
        news[frozen], _ = jax.jit(functools.partial(S.train_step, spec=spec))(state, batch)
    moved = 0.0
    for name, leaves in news[()].params.items():
        if name.startswith("layer2_") or name == "bn1":
            continue
        for a, b, c in zip(jax.tree_util.tree_leaves(leaves), jax.tree_util.tree_leaves(news[MIDDLE].params[name]),
                           jax.tree_util.tree_leaves(state.params[name])):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, err_msg=name)
            moved = max(moved, float(jnp.abs(a - c).max()))
    assert moved > 1e-3


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
