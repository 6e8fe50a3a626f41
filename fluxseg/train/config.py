"""The training config: every key the trainer reads, with its default.

Experiment files (experiments/*.py) start from ``base_config()`` and change
what they need. ``check`` validates a config once it is loaded and
overridden, before anything starts; ``resolve`` fills in what comes from the
data (``num_classes``, the steps of ``num_epochs``, ``eval_batch_size``);
``saved_config`` reads the config a checkpoint carries, migrating the keys of
earlier versions (``MOVED``).

Each concept is one key: the task, the ignore index and the data's classes
are the data's (``data.task``, ``data.ignore_index``, read from the dataset);
``num_classes`` is the model's outputs (None: one per class of the data; 1: a
binary sigmoid head, see fluxseg.tasks.base).
"""
from __future__ import annotations

import ml_collections
from ml_collections import config_dict

from fluxseg.data.config import ConfigError  # noqa: F401  (re-exported: the trainer's config errors)

# Keys of earlier versions -> the key that holds the concept now. A saved config
# is migrated (saved_config); setting an old key is an error naming the new one.
MOVED = {"task": "data.task", "ignore_index": "data.ignore_index",
         "data.num_classes": "num_classes"}
# Groups whose keys are the user's own (passed through to the model): never checked against base_config.
FREE_GROUPS = ("model_kwargs",)


def base_config() -> ml_collections.ConfigDict:
    from fluxseg import data

    c = ml_collections.ConfigDict()
    # Model: fluxseg.models.create(model, num_classes=..., **model_kwargs).
    c.model = "unet"
    c.model_kwargs = ml_collections.ConfigDict()
    # Model outputs: None = one per class of the data; 1 = a binary sigmoid head (loss
    # 'sigmoid_bce'; class 0 background, every other class id foreground).
    c.num_classes = config_dict.placeholder(int)
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
    """A copy with what comes from the data filled in: num_classes (None: the data's
    class count), num_train_steps (from num_epochs) and eval_batch_size (None:
    batch_size). ``data_info`` (fluxseg.data.DataInfo) may be left out where
    num_classes is set and num_epochs is not. Raises ConfigError where the config
    and the data disagree."""
    c = ml_collections.ConfigDict(config.to_dict())
    known = data_info.num_classes if data_info is not None else None
    with c.ignore_type():
        if c.num_classes is None:
            if known is None:
                raise ConfigError(
                    f"config.num_classes: {c.data.name} does not say how many classes it has; "
                    "set --config.num_classes=K (K classes, or 1 for a binary sigmoid head)")
            c.num_classes = int(known)
        elif c.num_classes != 1 and known is not None and c.num_classes != known:
            raise ConfigError(
                f"config.num_classes={c.num_classes} but {c.data.name} has {known} classes "
                f"{tuple(data_info.class_names)}; leave it unset (one output per class) or set 1 "
                "(a binary sigmoid head)")
        if c.num_epochs:
            if data_info is None:
                raise ConfigError("config.num_epochs needs the data's size: resolve with its DataInfo")
            n = int(data_info.num_examples[c.data.train_split.split("[")[0]])
            c.num_train_steps = max(1, int(round(c.num_epochs * n / c.batch_size)))
        if c.eval_batch_size is None:
            c.eval_batch_size = c.batch_size
    return c


def with_preprocess(config, name: str) -> ml_collections.ConfigDict:
    """A copy of ``config`` whose ``preprocess`` is ``name``: what a run saves, so
    that ``restore`` and ``evaluate`` feed the model as it was trained."""
    c = ml_collections.ConfigDict(config.to_dict())
    c.preprocess = name
    return c


def from_values(values: dict, data_info=None) -> ml_collections.ConfigDict:
    """``base_config()`` with ``values`` merged in (a nested dict updates the nested
    keys it names), checked and resolved: for scripts and tests that build a step directly."""
    c = base_config()
    c.update(values)
    check(c)  # a key base_config lacks (one that moved, say) is an error naming it
    return resolve(c, data_info)


def migrate(saved: dict) -> dict:
    """A saved config (the JSON a checkpoint carries) with the keys of earlier
    versions moved to today's (``MOVED``); the argument is left as it is.

    Before one key per concept, a run saved its resolved task, num_classes and
    ignore_index at the top level (the values the loss and the in-loop eval
    used) beside data.task, data.ignore_index and data.num_classes: the
    top-level values win, being what the model was trained with.
    """
    import copy

    out = copy.deepcopy(dict(saved))
    data = out.setdefault("data", {})
    for key in ("task", "ignore_index"):
        value = out.pop(key, None)
        if value is not None:
            data[key] = value
    count = data.pop("num_classes", None)
    if out.get("num_classes") is None and count is not None:
        out["num_classes"] = count
    return out


def saved_config(saved: dict, image_shape=None) -> ml_collections.ConfigDict:
    """A run's saved config laid over ``base_config()``: what a checkpoint restores.

    Keys added since the run was saved take today's defaults, so code that
    reads a restored config can read every key directly; where a new default
    would change what an old run did, the old behaviour is written here.
    image_shape: the (H, W, C) the checkpoint's model was built for (its meta),
    which gives data.channels to runs saved before the config recorded it.
    """
    saved = migrate(saved)
    c = base_config()
    c.update(saved)
    if "eval_mode" not in saved["data"]:
        c.data.eval_mode = "resize"  # classifiers were evaluated by resizing before the key existed
    if c.data.channels is None and image_shape is not None:
        c.data.channels = int(image_shape[-1])
    return c


def unknown_key_message(config, path: str) -> str | None:
    """None if ``config`` has the key ``path`` ('optim.eps'); else what is wrong: the
    key that replaced it (MOVED), or the keys the config does have there."""
    if path in MOVED:
        return f"config.{path} is config.{MOVED[path]} now: set --config.{MOVED[path]}"
    node, seen = config, []
    for part in path.split("."):
        if not hasattr(node, "keys") or part not in node:
            where = ".".join(["config", *seen])
            keys = ", ".join(sorted(node.keys())) if hasattr(node, "keys") else "none (not a group)"
            message = f"config.{path}: the config has no such key; the keys of {where} are: {keys or 'none'}"
            if seen and seen[0] in FREE_GROUPS:
                # Any key the model takes may go there, but ml_collections' flags can only
                # change a key the experiment already sets.
                message += f" (a new {where} key goes in the experiment's get_config())"
            return message
        node, seen = node[part], seen + [part]
    return None


def _paths(config, prefix: str = ""):
    """Dotted paths of every key of ``config``, groups included (not inside FREE_GROUPS)."""
    for key in config.keys():
        path = f"{prefix}{key}"
        yield path
        if hasattr(config[key], "keys") and key not in FREE_GROUPS:
            yield from _paths(config[key], path + ".")


def check(config) -> None:
    """Raises ConfigError on the first key whose value cannot work, naming the key, the
    value and what it accepts; ``launch.py`` prints it as one line. Run it once a
    config is loaded and overridden, before anything starts (train_and_evaluate does)."""
    reference = base_config()
    for path in _paths(config):
        message = unknown_key_message(reference, path)
        if message:
            raise ConfigError(message)
    from fluxseg.train import validate  # here: building a config stays free of JAX
    validate.values(config)


def load_config_file(path: str):
    """Imports an experiment config file by path (configs build on each other: ablations on s3)."""
    import importlib.util
    import os

    name = "fluxseg_experiment_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
