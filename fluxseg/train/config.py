"""The training config: every key the trainer reads, with its default.

Experiment files (experiments/*.py) start from ``base_config()`` and change
what they need. Keys set to a placeholder (None) are filled by the trainer:
``task``, ``num_classes`` and ``ignore_index`` from the data.
"""
from __future__ import annotations

import ml_collections
from ml_collections import config_dict


def base_config() -> ml_collections.ConfigDict:
    from fluxseg import data

    c = ml_collections.ConfigDict()
    # Model: fluxseg.models.create(model, num_classes=..., **model_kwargs).
    c.model = "unet"
    c.model_kwargs = ml_collections.ConfigDict()
    c.num_classes = config_dict.placeholder(int)   # None: from the data
    c.task = config_dict.placeholder(str)          # None: data.task
    c.dtype = "float32"                            # compute dtype; 'bfloat16' keeps params f32
    c.pretrained = config_dict.placeholder(str)    # 'keras' | 'torchvision' | None
    c.pretrained_path = config_dict.placeholder(str)
    c.pretrained_dont_load = ()                    # regexes of leaves kept at their init
    c.preprocess = "unit"                          # replaced by the pretrained weights' own

    # Data: fluxseg.data.default_config() fields (name, crop_size, ...).
    c.data = data.default_config()

    # Loss: a fluxseg.tasks.losses spec, e.g. 'softmax_ce', 'sigmoid_bce', 'softmax_ce+dice'.
    c.loss = "softmax_ce"
    c.class_weights = config_dict.placeholder(tuple)
    c.ignore_index = config_dict.placeholder(int)

    # Optimiser (fluxseg/train/optim.py).
    c.optim = ml_collections.ConfigDict()
    c.optim.name = "sgd"               # 'sgd' | 'adam' | 'adamw' | 'rmsprop'
    c.optim.learning_rate = 0.01
    c.optim.momentum = 0.9             # sgd; 0 = plain SGD
    c.optim.nesterov = False
    c.optim.b1 = 0.9
    c.optim.b2 = 0.999
    c.optim.eps = 1e-8
    c.optim.rho = 0.9                  # rmsprop
    c.optim.weight_decay = 0.0         # coupled (sgd, adam) or decoupled (adamw)
    c.optim.schedule = "constant"      # 'constant' | 'cosine' | 'poly'
    c.optim.power = 0.9                # poly exponent
    c.optim.warmup_steps = 0
    c.optim.end_lr_factor = 0.0
    c.optim.grad_clip_norm = 0.0       # 0 = no clipping
    c.optim.accum_steps = 1            # batches per optimiser update
    c.optim.frozen = config_dict.placeholder(tuple)  # regexes; None = model default

    # Schedule of the run, in steps (one step = one global batch).
    c.batch_size = 16                  # global, over all devices and hosts
    c.eval_batch_size = config_dict.placeholder(int)  # None = batch_size
    c.num_train_steps = 1000
    c.num_epochs = config_dict.placeholder(float)     # if set, overrides num_train_steps
    c.log_every_steps = 50
    c.eval_every_steps = 0             # 0 = evaluate at the end only
    c.checkpoint_every_steps = 500
    c.keep_last = 2                    # newest checkpoints kept
    c.keep_best = 1                    # best checkpoints kept, by best_metric
    c.best_metric = "mIoU"             # a key of the eval metrics
    c.best_mode = "max"
    c.async_checkpoints = True
    # A newest checkpoint that cannot be read back, on resume: 'fallback' resumes from the
    # newest intact one and moves the damaged ones to <workdir>/damaged_checkpoints/ (with a
    # warning; nothing deleted); 'error' stops with the message `restore` gives.
    c.resume_damaged = "fallback"
    c.num_eval_images = 4              # predictions drawn at each eval
    c.isbi_metrics = False             # eval adds ISBI pixel and Rand errors (segmentation)

    c.max_steps_per_run = 0            # >0: save and stop after this many steps (job time limits)

    c.parallel = "jit"                 # 'jit' (mesh, multi-host) | 'pmap'
    c.seed = 0
    c.init_rng_impl = config_dict.placeholder(str)  # None = threefry; 'rbg': fast CPU compile
    c.progress_bar = True
    return c


def resolve(config, data_info=None) -> ml_collections.ConfigDict:
    """A copy with task / num_classes / ignore_index / num_train_steps filled in."""
    c = ml_collections.ConfigDict(config.to_dict())
    with c.ignore_type():
        if c.task is None:
            c.task = c.data.task
        if data_info is not None:
            if c.num_classes is None:
                c.num_classes = 1 if c.loss.startswith("sigmoid") else int(data_info.num_classes)
            if c.ignore_index is None:
                c.ignore_index = int(data_info.ignore_index)
            if c.num_epochs:
                n = int(data_info.num_examples[c.data.train_split.split("[")[0]])
                c.num_train_steps = max(1, int(round(c.num_epochs * n / c.batch_size)))
        if c.ignore_index is None:
            c.ignore_index = int(c.data.ignore_index)
        if c.eval_batch_size is None:
            c.eval_batch_size = c.batch_size
    if c.num_classes is None:
        raise ValueError("config.num_classes is unset and no data info was given to fill it")
    return c


def with_preprocess(config, name: str) -> ml_collections.ConfigDict:
    """A copy of ``config`` whose ``preprocess`` is ``name``: what a run saves, so
    that ``restore`` and ``evaluate`` feed the model as it was trained."""
    c = ml_collections.ConfigDict(config.to_dict())
    c.preprocess = name
    return c


def from_values(values: dict, data_info=None) -> ml_collections.ConfigDict:
    """``base_config()`` with ``values`` merged in (a nested dict updates the nested
    keys it names), resolved: for scripts and tests that build a step directly."""
    c = base_config()
    c.update(values)
    return resolve(c, data_info)


def saved_config(saved: dict) -> ml_collections.ConfigDict:
    """A run's saved config laid over ``base_config()``: what a checkpoint restores.

    Keys added since the run was saved take today's defaults, so code that
    reads a restored config can read every key directly; where a new default
    would change what an old run did, the old behaviour is written here.
    """
    c = base_config()
    c.update(saved)
    if "eval_mode" not in saved.get("data", {}):
        c.data.eval_mode = "resize"  # classifiers were evaluated by resizing before the key existed
    return c


def load_config_file(path: str):
    """Imports an experiment config file by path (configs build on each other: ablations on s3)."""
    import importlib.util
    import os

    name = "fluxseg_experiment_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
