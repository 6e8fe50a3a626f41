"""The per-device train and eval steps.

Pure functions of (state, batch): they know nothing of devices, files or
logging. With ``spec.axis_name`` set they run inside ``jax.pmap`` or
``shard_map`` (see fluxseg/train/parallel.py) and combine their shard of the
batch with the other devices' through collectives over that axis:
loss denominators and gradients are summed, BatchNorm statistics averaged
(the model does it inside its forward pass when built with ``bn_axis_name``).
The result equals one step on the whole batch on one device.

Frozen parameters (``spec.frozen``) are constants of the train step: it
differentiates only the trainable ones, so JAX builds no backward pass for a
frozen part of the model (a frozen backbone costs its forward pass only), and
only trainable gradients cross devices. The model's forward function knows
nothing of freezing, so gradients through frozen parts stay available to
everything else (Grad-CAM, filter ascent).

A batch is a dict of host arrays: 'image' uint8 [b,H,W,3] and either 'mask'
int32 [b,H,W] (segmentation, 255 = ignore) or 'label' int32 [b]
(classification, -1 = padding). Preprocessing happens here, on device.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import optax
from jax import lax

from fluxseg import tasks
from fluxseg.models import layers
from fluxseg.tasks import losses
from fluxseg.train import optim


@flax.struct.dataclass
class TrainState:
    step: jax.Array          # int32 scalar: batches consumed so far
    params: Any
    batch_stats: Any         # {} for models without BatchNorm
    opt_state: Any
    rng: jax.Array           # uint32[2] base key; each step folds in its number

    def variables(self) -> dict:
        v = {"params": self.params}
        if self.batch_stats:
            v["batch_stats"] = self.batch_stats
        return v


@dataclasses.dataclass(frozen=True)
class StepSpec:
    """Everything static a step needs."""
    model: Any                       # flax.linen.Module
    tx: optax.GradientTransformation | None
    task: tasks.Task                 # targets, class ids, metric sums
    loss: str = "softmax_ce"         # losses registry spec, e.g. 'softmax_ce+dice'
    class_weights: tuple | None = None
    preprocess: Callable = lambda x: x / 255.0
    axis_name: str | None = None
    frozen: tuple[str, ...] = ()     # regexes of parameter paths the optimiser keeps fixed
    augment: Callable | None = None  # data.augment_on='device': fluxseg.data.device_augment


def init_state(model, tx: optax.GradientTransformation, seed, image_shape,
               rng_impl: str | None = None) -> TrainState:
    """Fresh state of ``model`` and optimiser ``tx`` from an integer seed.

    image_shape is one example's (H, W, C).

    rng_impl picks the PRNG of the parameter initialisers (None = JAX's
    default threefry, identical on every platform; 'rbg' compiles several
    times faster on CPU, where threefry-heavy inits take tens of seconds).
    The state's own key (dropout) is the classic threefry PRNGKey(seed).
    """
    init_key = jax.random.key(seed, impl=rng_impl) if rng_impl else jax.random.key(seed)
    x = jnp.zeros((1, *image_shape), jnp.float32)
    variables = model.init({"params": init_key, "dropout": init_key}, x, train=False)
    params = variables["params"]
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      batch_stats=variables.get("batch_stats", {}),
                      opt_state=tx.init(params), rng=jax.random.PRNGKey(seed))


def _psum(x, axis_name):
    return x if axis_name is None else lax.psum(x, axis_name)


def train_step(state: TrainState, batch, spec: StepSpec):
    """One optimiser step on this device's shard. Returns (new_state, metrics).

    metrics: device arrays, already summed over devices: 'loss' (the batch
    loss), 'nonfinite' (1 if the loss is NaN/Inf), 'correct'/'count' (pixel or
    top-1 accuracy numerator and denominator).
    """
    axis = spec.axis_name
    if spec.augment is not None:  # the host sent uint8 windows and their draws
        batch = spec.augment(batch)
    x = spec.preprocess(batch["image"].astype(jnp.float32))
    rng = jax.random.fold_in(state.rng, state.step)
    if axis is not None:
        rng = jax.random.fold_in(rng, lax.axis_index(axis))
    task = spec.task
    loss_kw = dict(ignore_index=task.ignore_index, class_weights=spec.class_weights)
    trainable, frozen, merge = optim.partition(state.params, spec.frozen)

    def loss_fn(trainable):
        variables = {"params": merge(trainable, frozen)}
        if state.batch_stats:
            variables["batch_stats"] = state.batch_stats
        logits, updates = spec.model.apply(variables, x, train=True, mutable=["batch_stats"],
                                           rngs={"dropout": rng})
        logits = logits.astype(jnp.float32)
        target = task.target(batch, logits)
        if "weight" in batch:  # per-pixel loss weights (U-Net border weight map)
            loss_kw["pixel_weights"] = layers.center_crop(batch["weight"], logits.shape[1:3])
        loss = 0.0
        for total, weight in losses.terms(spec.loss, logits, target, **loss_kw):
            # The denominator does not depend on the parameters; summing it
            # over devices makes this device's value its share of the global mean.
            weight = _psum(lax.stop_gradient(weight), axis)
            loss = loss + total / jnp.maximum(weight, 1e-12)
        return loss, (logits, target, updates.get("batch_stats", {}))

    (loss, (logits, target, batch_stats)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(trainable)
    if axis is not None:
        grads = lax.psum(grads, axis)
        loss = lax.psum(loss, axis)
        # Already global with cross-replica BN; this keeps replicas identical
        # for models built without bn_axis_name.
        batch_stats = lax.pmean(batch_stats, axis)
    # The optimiser takes whole trees; it drops the frozen zeros (set_to_zero),
    # and so does XLA.
    grads = merge(grads, [jnp.zeros_like(p) for p in frozen])
    updates, opt_state = spec.tx.update(grads, state.opt_state, state.params)
    # Frozen leaves are taken back as they were: adding their zero update
    # would already change bits (-0.0 + 0.0 = +0.0).
    params = merge(optax.apply_updates(trainable, optim.partition(updates, spec.frozen)[0]), frozen)
    new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                              opt_state=opt_state)
    correct, count = task.correct(logits, target)
    out = {"loss": loss, "nonfinite": (~jnp.isfinite(loss)).astype(jnp.int32),
           "correct": _psum(correct.astype(jnp.int32), axis),
           "count": _psum(count.astype(jnp.int32), axis)}
    return new_state, out


def _logits(variables, batch, spec: StepSpec):
    x = spec.preprocess(batch["image"].astype(jnp.float32))
    return spec.model.apply(variables, x, train=False).astype(jnp.float32)


def eval_step(variables, batch, spec: StepSpec):
    """Metric sums for one batch (padding rows carry ignore targets), summed over devices.

    Returns the task's ``eval_sums`` (a confusion matrix; top-k counts for
    classifiers) and 'loss_terms': [K,2] (total, weight) per loss term.
    """
    logits = _logits(variables, batch, spec)
    target = spec.task.target(batch, logits)
    terms = losses.terms(spec.loss, logits, target, ignore_index=spec.task.ignore_index,
                         class_weights=spec.class_weights)
    out = {**spec.task.eval_sums(logits, target), "loss_terms": jnp.asarray(terms, jnp.float32)}
    return jax.tree_util.tree_map(lambda v: _psum(v, spec.axis_name), out)


def predict_step(variables, batch, spec: StepSpec):
    """(class ids, logits) for a batch, for pictures in the logs."""
    logits = _logits(variables, batch, spec)
    return tasks.class_ids(logits), logits
