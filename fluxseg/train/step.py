"""The per-device train and eval steps.

Pure functions of (state, batch): they know nothing of devices, files or
logging. With ``spec.axis_name`` set they run inside ``jax.pmap`` or
``shard_map`` (see fluxseg/train/parallel.py) and combine their shard of the
batch with the other devices' through collectives over that axis:
loss denominators and gradients are summed, BatchNorm statistics averaged
(the model does it inside its forward pass when built with ``bn_axis_name``).
The result equals one step on the whole batch on one device.

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

from fluxseg.models import layers
from fluxseg.train import losses, metrics


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
    task: str = "segmentation"       # 'segmentation' | 'classification'
    num_classes: int = 2             # model output channels (1 = binary sigmoid)
    loss: str = "softmax_ce"         # losses registry spec, e.g. 'softmax_ce+dice'
    ignore_index: int = 255
    class_weights: tuple | None = None
    preprocess: Callable = lambda x: x / 255.0
    axis_name: str | None = None

    @property
    def metric_classes(self) -> int:
        return 2 if self.num_classes == 1 else self.num_classes


def init_state(spec: StepSpec, seed, image_shape, rng_impl: str | None = None) -> TrainState:
    """Fresh state from an integer seed; image_shape is one example's (H, W, C).

    rng_impl picks the PRNG of the parameter initialisers (None = JAX's
    default threefry, identical on every platform; 'rbg' compiles several
    times faster on CPU, where threefry-heavy inits take tens of seconds).
    The state's own key (dropout) is the classic threefry PRNGKey(seed).
    """
    init_key = jax.random.key(seed, impl=rng_impl) if rng_impl else jax.random.key(seed)
    x = jnp.zeros((1, *image_shape), jnp.float32)
    variables = spec.model.init({"params": init_key, "dropout": init_key}, x, train=False)
    params = variables["params"]
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      batch_stats=variables.get("batch_stats", {}),
                      opt_state=spec.tx.init(params), rng=jax.random.PRNGKey(seed))


def target_for(batch, logits, spec: StepSpec):
    if spec.task == "classification":
        return batch["label"]
    # The valid U-Net's logits are smaller than its input: score the centre.
    return layers.center_crop(batch["mask"], logits.shape[1:3])


def predictions(logits, spec: StepSpec):
    if spec.num_classes == 1:
        return (logits[..., 0] > 0).astype(jnp.int32)
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)


def _psum(x, axis_name):
    return x if axis_name is None else lax.psum(x, axis_name)


def _binary_target(target, spec):
    # For a one-channel sigmoid head any class id > 0 is foreground.
    if spec.num_classes != 1:
        return target
    return jnp.where(losses.valid_mask(target, spec.ignore_index),
                     (target > 0).astype(target.dtype), target)


def train_step(state: TrainState, batch, spec: StepSpec):
    """One optimiser step on this device's shard. Returns (new_state, metrics).

    metrics: device arrays, already summed over devices: 'loss' (the batch
    loss), 'nonfinite' (1 if the loss is NaN/Inf), 'correct'/'count' (pixel or
    top-1 accuracy numerator and denominator).
    """
    axis = spec.axis_name
    x = spec.preprocess(batch["image"].astype(jnp.float32))
    rng = jax.random.fold_in(state.rng, state.step)
    if axis is not None:
        rng = jax.random.fold_in(rng, lax.axis_index(axis))
    loss_kw = dict(ignore_index=spec.ignore_index, class_weights=spec.class_weights)

    def loss_fn(params):
        variables = {"params": params}
        if state.batch_stats:
            variables["batch_stats"] = state.batch_stats
        logits, updates = spec.model.apply(variables, x, train=True, mutable=["batch_stats"],
                                           rngs={"dropout": rng})
        logits = logits.astype(jnp.float32)
        target = target_for(batch, logits, spec)
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
        loss_fn, has_aux=True)(state.params)
    if axis is not None:
        grads = lax.psum(grads, axis)
        loss = lax.psum(loss, axis)
        # Already global with cross-replica BN; this keeps replicas identical
        # for models built without bn_axis_name.
        batch_stats = lax.pmean(batch_stats, axis)
    updates, opt_state = spec.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                              opt_state=opt_state)
    target = _binary_target(target, spec)
    valid = losses.valid_mask(target, spec.ignore_index)
    correct = jnp.sum((predictions(logits, spec) == target) & valid)
    out = {"loss": loss, "nonfinite": (~jnp.isfinite(loss)).astype(jnp.int32),
           "correct": _psum(correct.astype(jnp.int32), axis),
           "count": _psum(jnp.sum(valid).astype(jnp.int32), axis)}
    return new_state, out


def eval_step(variables, batch, spec: StepSpec):
    """Metric sums for one batch (padding rows carry ignore targets).

    Returns {'confusion': int32 [C,C], 'loss_terms': [K,2] (total, weight) per
    loss term} and for
    classifiers also top-1/top-5 counts; summed over devices.
    """
    x = spec.preprocess(batch["image"].astype(jnp.float32))
    logits = spec.model.apply(variables, x, train=False).astype(jnp.float32)
    target = target_for(batch, logits, spec)
    terms = losses.terms(spec.loss, logits, target, ignore_index=spec.ignore_index,
                         class_weights=spec.class_weights)
    bin_target = _binary_target(target, spec)
    out = {"confusion": metrics.confusion_matrix(predictions(logits, spec), bin_target,
                                                 spec.metric_classes, spec.ignore_index),
           "loss_terms": jnp.asarray(terms, jnp.float32)}
    if spec.task == "classification" and spec.num_classes > 1:
        out.update(metrics.topk_correct(logits, target, (1, 5), spec.ignore_index))
    return jax.tree_util.tree_map(lambda v: _psum(v, spec.axis_name), out)


def predict_step(variables, batch, spec: StepSpec):
    """(class-id predictions, logits) for a batch, for pictures in the logs."""
    x = spec.preprocess(batch["image"].astype(jnp.float32))
    logits = spec.model.apply(variables, x, train=False).astype(jnp.float32)
    return predictions(logits, spec), logits
