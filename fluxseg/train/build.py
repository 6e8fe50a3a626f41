"""From a config to the pieces a step needs: model, optimiser, task, StepSpec.

Shared by the training loop, `evaluate`, `restore` and `predict`, so a
checkpoint is always rebuilt exactly the way it was trained. Every key is
read directly: its default lives in ``config.base_config()`` only.
"""
from __future__ import annotations

import jax.numpy as jnp

from fluxseg import tasks
from fluxseg.data import device_augment
from fluxseg.train import optim
from fluxseg.train.step import StepSpec

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def model(config, axis_name: str | None = None):
    """The flax module of ``config.model`` with ``config.model_kwargs``.

    ``num_classes`` defaults to ``config.num_classes``; ``dtype`` comes from
    ``config.dtype`` ('bfloat16' = bf16 compute, float32 parameters);
    ``bn_axis_name`` is set to the data-parallel axis for models with
    BatchNorm (cross-replica statistics).
    """
    from fluxseg import models
    from fluxseg.models.encoders import fields as module_fields
    fields = module_fields(models.spec(config.model).build)
    kw = dict(config.model_kwargs)
    if "num_classes" in fields and config.num_classes is not None:
        kw.setdefault("num_classes", int(config.num_classes))
    if config.dtype not in DTYPES:
        raise ValueError(f"config.dtype={config.dtype!r}; expected one of {sorted(DTYPES)}")
    if config.dtype != "float32" and "dtype" in fields:
        kw["dtype"] = DTYPES[config.dtype]
    if axis_name is not None and "bn_axis_name" in fields:
        kw["bn_axis_name"] = axis_name
    for k, v in kw.items():
        if isinstance(v, list):  # JSON round trip turns tuples into lists
            kw[k] = tuple(v)
    return models.create(config.model, **kw)


def frozen_patterns(config, module) -> tuple[str, ...]:
    """config.optim.frozen if set (a list of regexes; [] = train all), else the model's default."""
    if config.optim.frozen is not None:
        return tuple(config.optim.frozen)
    from fluxseg import models
    return tuple(models.frozen_patterns(module))


def preprocess_fn(config):
    from fluxseg.weights import preprocess
    return preprocess.get(config.preprocess)


def task(config, class_names=None) -> tasks.Task:
    """The run's task, from a resolved config and the data's class names
    (fluxseg.data.DataInfo.class_names): the one place that reads data.task,
    num_classes, data.ignore_index and isbi_metrics. The training step, the
    training loop's eval and `fluxseg eval` all score through it."""
    options = {"isbi_metrics": True} if config.isbi_metrics else {}
    return tasks.create(config.data.task, num_classes=int(config.num_classes),
                        ignore_index=int(config.data.ignore_index), class_names=class_names,
                        **options)


def optimizer(config, module, total_steps: int | None = None):
    """(tx, lr_schedule) for ``module``; the loop logs this very schedule."""
    return optim.create(config.optim, total_steps or int(config.num_train_steps),
                        frozen_patterns(config, module))


def step_spec(config, *, class_names=None, axis_name=None, total_steps=None, with_optimizer=True,
              module=None, tx=None) -> StepSpec:
    """Everything static a step needs; ``module`` / ``tx`` reuse pieces already built;
    ``class_names`` name the task's classes in its scores."""
    if module is None:
        module = model(config, axis_name)
    if tx is None and with_optimizer:
        tx, _ = optimizer(config, module, total_steps)
    cw = config.class_weights
    the_task = task(config, class_names)
    return StepSpec(model=module, tx=tx, task=the_task, loss=config.loss,
                    class_weights=tuple(float(w) for w in cw) if cw is not None else None,
                    preprocess=preprocess_fn(config), axis_name=axis_name,
                    frozen=frozen_patterns(config, module),
                    augment=device_augment.make(config.data, the_task.dense))
