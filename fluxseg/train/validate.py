"""The value checks behind ``fluxseg.train.config.check``: each key the trainer reads,
against what it accepts, so that a bad value stops a run before anything starts
with one message naming the key (ConfigError) instead of a traceback from deep
inside. The accepted values are read from where they are defined (the model
registry, the loss registry, the optimisers, ...), never listed twice.
"""
from __future__ import annotations

from fluxseg.data import config as data_config
from fluxseg.data.config import ConfigError
from fluxseg.train.damage import RESUME_DAMAGED

BEST_MODES = ("max", "min")
PRETRAINED = ("keras", "torchvision")


def _int(config, key: str, low: int, what: str, group: str = "config") -> None:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{group}.{key}={value!r}; expected {what}")


def _one_of(value, allowed, key: str) -> None:
    if value not in allowed:
        raise ConfigError(f"config.{key}={value!r}; expected one of {', '.join(map(repr, allowed))}")


def values(config) -> None:
    """Raises ConfigError on the first value ``config`` cannot run with."""
    for key in ("batch_size", "num_train_steps", "log_every_steps", "keep_last"):
        _int(config, key, 1, "a positive integer")
    for key in ("eval_every_steps", "checkpoint_every_steps", "keep_best", "num_eval_images",
                "max_steps_per_run"):
        _int(config, key, 0, "an integer >= 0 (0 = off)")
    if config.eval_batch_size is not None:
        _int(config, "eval_batch_size", 1, "a positive integer, or None (= batch_size)")
    if config.num_epochs is not None and not float(config.num_epochs) > 0:
        raise ConfigError(f"config.num_epochs={config.num_epochs!r}; expected a number > 0, "
                          "or None (num_train_steps counts)")
    _one_of(config.best_mode, BEST_MODES, "best_mode")
    _one_of(config.resume_damaged, RESUME_DAMAGED, "resume_damaged")
    if config.pretrained is not None:
        _one_of(config.pretrained, PRETRAINED, "pretrained")
    _model(config)
    _head(config)
    _optim(config.optim)
    _runtime(config)
    data_config.check(config.data)
    if config.isbi_metrics and config.data.task != "segmentation":
        raise ConfigError(f"config.isbi_metrics=True scores segmentation masks; data.task is "
                          f"{config.data.task!r}")


def _model(config) -> None:
    from fluxseg import models
    from fluxseg.models.encoders import fields

    if config.model not in models.names():
        raise ConfigError(f"config.model={config.model!r}; expected a registered model: "
                          f"{', '.join(models.names())}")
    allowed = fields(models.spec(config.model).build)
    given = set(config.model_kwargs.keys())
    if "num_classes" in given:
        raise ConfigError("config.model_kwargs.num_classes: the model's outputs are "
                          "config.num_classes; set --config.num_classes instead")
    unknown = sorted(given - allowed)
    if unknown:
        raise ConfigError(f"config.model_kwargs: {config.model} has no option(s) {unknown}; its "
                          f"options are: {', '.join(sorted(allowed - {'num_classes'}))}")


def _head(config) -> None:
    """The loss, the class count and the binary rule agree (fluxseg.tasks.base)."""
    from fluxseg.tasks import losses

    try:
        terms = losses.parse(config.loss)
    except ValueError as e:
        raise ConfigError(f"config.loss: {e}") from None
    n = config.num_classes
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ConfigError(f"config.num_classes={n!r}; expected a positive integer (1 = a binary "
                          "sigmoid head), or None (one output per class of the data)")
    if "sigmoid_bce" in terms and n != 1:
        raise ConfigError(f"config.loss={config.loss!r} is a binary head's loss but "
                          f"config.num_classes={n!r}; set --config.num_classes=1")
    if "softmax_ce" in terms and n == 1:
        raise ConfigError(f"config.loss={config.loss!r} on one output is always 0; a binary "
                          "(one-channel) head takes loss='sigmoid_bce'")
    if config.class_weights is not None:
        weights = tuple(config.class_weights)
        width = 2 if n == 1 else n
        if not all(isinstance(w, (int, float)) and w >= 0 for w in weights) or (
                width is not None and len(weights) != width):
            raise ConfigError(f"config.class_weights={weights!r}; expected one weight >= 0 per class"
                              + (f" ({width})" if width is not None else ""))


def _optim(optim_cfg) -> None:
    from fluxseg.train import optim

    if optim_cfg.name not in optim.NAMES:
        raise ConfigError(f"config.optim.name={optim_cfg.name!r}; expected one of "
                          f"{', '.join(map(repr, optim.NAMES))}")
    if optim_cfg.schedule not in optim.SCHEDULES:
        raise ConfigError(f"config.optim.schedule={optim_cfg.schedule!r}; expected one of "
                          f"{', '.join(map(repr, optim.SCHEDULES))}")
    if not float(optim_cfg.learning_rate) >= 0:
        raise ConfigError(f"config.optim.learning_rate={optim_cfg.learning_rate!r}; expected a "
                          "number >= 0 (0: no update)")
    _int(optim_cfg, "warmup_steps", 0, "an integer >= 0", "config.optim")
    _int(optim_cfg, "accum_steps", 1, "a positive integer (batches per optimiser update)", "config.optim")


def _runtime(config) -> None:
    import jax

    from fluxseg.train import build, parallel
    from fluxseg.weights import preprocess

    _one_of(config.parallel, tuple(parallel.AXIS), "parallel")
    _one_of(config.dtype, tuple(build.DTYPES), "dtype")
    _one_of(config.preprocess, tuple(sorted(preprocess.PREPROCESSORS)), "preprocess")
    if config.init_rng_impl is not None:
        try:
            jax.random.key(0, impl=config.init_rng_impl)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"config.init_rng_impl={config.init_rng_impl!r}: {e}; expected None "
                              "(threefry) or a jax PRNG name such as 'rbg'") from None
