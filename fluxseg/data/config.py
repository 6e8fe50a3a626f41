"""The data config (an ml_collections.ConfigDict) and its checks."""
from __future__ import annotations

import re

import ml_collections
from ml_collections import config_dict

EVAL_MODES = ("pad", "resize")
AUGMENT_ON = ("host", "device")
# The datasets fluxseg builds itself (fluxseg/data/<name>/); data.name may also be any tfds dataset.
FLUXSEG_DATASETS = ("fluxseg_shapes", "fluxseg_voc2012", "fluxseg_isbi2012",
                    "fluxseg_image_folder", "fluxseg_segmentation_folder")
# tfds dataset names: lower-case snake case (tfds.core.naming), optionally /config and :version.
TFDS_NAME = re.compile(r"^[a-z][a-z0-9_]*(/[\w.-]+)?(:[\d.*]+)?$")


class ConfigError(ValueError):
    """A config value that cannot work: the message names the key, the value and what it accepts."""


def default_config() -> ml_collections.ConfigDict:
    """Defaults: segmentation of `fluxseg_shapes` (offline, 64x64 images).

    Fields:
      name: one of FLUXSEG_DATASETS, or any tfds dataset with `image` plus
        `segmentation_mask` (segmentation) or `label` (classification).
      builder_config: tfds config name ('' = the builder's default), e.g.
        'small' for the 32x32 test version of fluxseg_shapes.
      data_dir: tfds data_dir (None = ~/tensorflow_datasets).
      manual_dir: where manually downloaded archives are (None =
        <data_dir>/downloads/manual); VOC reads its tar from here.
      download: let tfds download/prepare datasets that fluxseg cannot build
        offline (and the VOC tar when it is not in manual_dir).
      task: a task of fluxseg.tasks: 'segmentation' (the data gives masks)
        or 'classification' (labels). The one task key of a run.
      train_split / eval_split: tfds split strings ('train', 'validation').
      crop_size: (H, W) of training images, pixels.
      scale_range: (lo, hi): each training image is rescaled by a factor
        drawn uniformly from [lo, hi] before cropping; (1, 1) = off.
      hflip: random horizontal flips in training.
      eval_mode: 'pad' (images keep their resolution and are padded
        bottom/right to eval_size; padded mask pixels are ignore_index, so
        metrics are exact) or 'resize' (image bilinear, mask nearest).
      eval_size: (H, W) of eval batches. None = crop_size with
        eval_mode='resize'; with 'pad', the larger of crop_size and the
        split's largest image (read from the prepared dataset's file headers
        once per process; splits over fluxseg.data.decode.SCAN_LIMIT
        examples fall back to crop_size), so mixed-size folders evaluate
        without a guess.
      ignore_index: the mask value of unlabelled pixels: losses and every
        score skip it, and padding is filled with it (255: what VOC, the
        folder datasets and ISBI's test slices store). The one ignore-index
        key of a run: training, its evals and `fluxseg eval` all read it.
        Another value (e.g. 0: background unscored) skips that class instead.
      binary: segmentation masks become 0 (background) / 1 (any other class
        id), a dataset of two classes; ignore_index stays ignore_index. (A
        one-channel model head, config.num_classes=1, reads masks the same
        way without it.)
      image_key / mask_key / label_key: feature names in the tfds dataset.
      shuffle_buffer: examples in the shuffle buffer (still encoded, unless
        data.cache keeps them decoded); a buffer >= the split size gives a
        full permutation each epoch, and the split's records are then read
        once and kept in memory across epochs (the buffer held them all at
        each epoch's start anyway).
      prefetch: batches prepared ahead.
      cache: keep this process's examples in memory after the first epoch
        (small datasets): decoded when the images have a fixed size and the
        decoded split fits in 1 GiB (pipeline.DECODED_CACHE_BYTES), else
        still encoded.
      num_parallel_calls: decode/augment parallelism (-1 = one call per CPU
        core; tf.data's autotuner is off, see _tf.pipeline_options).
      channels: image channels the pipeline delivers and the model takes:
        None = as stored (1 for grayscale datasets such as ISBI 2012), 1 =
        convert colour to luma, 3 = repeat grey into RGB. Decided once: the
        trainer sizes the model from it and the checkpoint records it.
    Training-recipe options (fluxseg/data/recipe.py; the U-Net paper's):
      mirror_margin: pixels of mirrored context around each training crop
        (overlap-tile training, Ronneberger et al. 2015: a 572 input whose
        388 output tile lies inside the image needs 92); 0 = off.
      elastic_sigma: std (pixels) of the random displacements on a coarse
        grid (the paper: 10); 0 = off.
      elastic_grid: points per side of that grid (the paper: 3).
      border_weight_w0 / border_weight_sigma: the paper's border weight map
        w = w_c + w0 exp(-(d1 + d2)^2 / 2 sigma^2) as per-pixel loss weight
        (the paper: 10 and 5 px); w0 = 0 = off (batches carry no 'weight').
      color_jitter: (brightness, contrast, saturation) maximum relative
        changes, on the image only; (0, 0, 0) = off.
      mask_map: (id of stored value 0, id of value 1, ...): stored mask values
        to class ids, e.g. oxford_iiit_pet trimaps (1 pet, 2 background,
        3 border) as (255, 1, 0, 2); None = the stored values are the ids.
      validation_fraction: folder datasets without a validation/ sub-folder
        hold out this fraction of the files (chosen by a hash of the name).
      random_resized_crop: classification's Inception crop (area 8%..100%,
        aspect 3/4..4/3) instead of scale + crop.
      augment_on: where scale, crop, flip and colour jitter run: 'host'
        (tf.data finishes each crop) or 'device' (the host decodes only the
        crop's window and sends it as uint8 with its draw; the train step
        finishes it on the accelerator, fluxseg/data/device_augment.py).
        None = by JAX's backend: 'device' on GPU and TPU, 'host' on CPU.
        Recipes with mirror_margin or elastic_sigma run on the host.
    """
    c = ml_collections.ConfigDict()
    c.name = "fluxseg_shapes"
    c.builder_config = ""
    c.data_dir = config_dict.placeholder(str)  # typed None: settable from the command line
    c.manual_dir = config_dict.placeholder(str)  # typed None: settable from the command line
    c.download = False
    c.task = "segmentation"
    c.train_split = "train"
    c.eval_split = "validation"
    c.crop_size = (64, 64)
    c.scale_range = (1.0, 1.0)
    c.hflip = True
    c.eval_mode = "pad"
    c.eval_size = config_dict.placeholder(tuple)  # typed None: settable from the command line
    c.ignore_index = 255
    c.binary = False
    c.image_key = "image"
    c.mask_key = "segmentation_mask"
    c.label_key = "label"
    c.shuffle_buffer = 10_000
    c.prefetch = 2
    c.cache = False
    c.num_parallel_calls = -1
    c.channels = config_dict.placeholder(int)  # None = as stored
    c.validation_fraction = 0.2
    c.mask_map = config_dict.placeholder(tuple)  # None = stored values are class ids
    c.mirror_margin = 0
    c.elastic_sigma = 0.0
    c.elastic_grid = 3
    c.border_weight_w0 = 0.0
    c.border_weight_sigma = 5.0
    c.color_jitter = (0.0, 0.0, 0.0)
    c.random_resized_crop = False
    c.augment_on = config_dict.placeholder(str)  # None = by backend (augment_on())
    return c


def _pair(value, field: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"data.{field} must be a pair (H, W) of pixels, got {value!r}") from None
    if h <= 0 or w <= 0:
        raise ConfigError(f"data.{field} must be positive, got {value!r}")
    return h, w


def check(cfg) -> None:
    """Raises ConfigError naming the field, the value and what is expected."""
    from fluxseg import tasks  # here: the config itself stays free of JAX

    if not isinstance(cfg.name, str) or not (cfg.name in FLUXSEG_DATASETS or TFDS_NAME.match(cfg.name)):
        raise ConfigError(f"data.name={cfg.name!r}; expected one of fluxseg's datasets "
                          f"({', '.join(FLUXSEG_DATASETS)}) or a tfds dataset name (lower-case "
                          "snake case, e.g. 'oxford_iiit_pet')")
    try:
        tasks.kind(cfg.task)
    except ValueError as e:
        raise ConfigError(f"data.task: {e}") from None
    if cfg.eval_mode not in EVAL_MODES:
        raise ConfigError(f"data.eval_mode={cfg.eval_mode!r}; expected one of {EVAL_MODES}")
    crop_size(cfg)
    eval_size(cfg)
    lo, hi = (float(v) for v in cfg.scale_range)
    if not 0 < lo <= hi:
        raise ConfigError(
            f"data.scale_range={tuple(cfg.scale_range)} must be (lo, hi) with 0 < lo <= hi")
    if not 0 <= cfg.ignore_index <= 255:
        raise ConfigError(f"data.ignore_index={cfg.ignore_index} must fit in uint8 masks (0..255)")
    if cfg.channels not in (None, 1, 3):
        raise ConfigError(f"data.channels={cfg.channels!r}; expected None (as stored), 1 or 3")
    _check_recipe(cfg)


def _check_recipe(cfg) -> None:
    """The recipe and folder options: each bad value named with what is expected."""
    if int(cfg.mirror_margin) < 0 or float(cfg.elastic_sigma) < 0:
        raise ConfigError(f"data.mirror_margin={cfg.mirror_margin} and data.elastic_sigma="
                         f"{cfg.elastic_sigma} must be >= 0 (0 = off)")
    if int(cfg.elastic_grid) < 2:
        raise ConfigError(f"data.elastic_grid={cfg.elastic_grid} must be >= 2 points a side "
                         "(the U-Net paper: 3)")
    if float(cfg.border_weight_sigma) <= 0 or float(cfg.border_weight_w0) < 0:
        raise ConfigError(f"data.border_weight_sigma={cfg.border_weight_sigma} must be > 0 and "
                         f"data.border_weight_w0={cfg.border_weight_w0} >= 0 (0 = off)")
    if any(float(v) < 0 or float(v) >= 1 for v in cfg.color_jitter):
        raise ConfigError(f"data.color_jitter={tuple(cfg.color_jitter)}: each of (brightness, "
                         "contrast, saturation) must be in [0, 1)")
    if not 0 <= float(cfg.validation_fraction) < 1:
        raise ConfigError(f"data.validation_fraction={cfg.validation_fraction} must be in [0, 1)")
    if cfg.mask_map is not None and not all(0 <= int(v) <= 255 for v in cfg.mask_map):
        raise ConfigError(f"data.mask_map={tuple(cfg.mask_map)}: class ids must be 0..255")
    if cfg.augment_on not in (None, *AUGMENT_ON):
        raise ConfigError(f"data.augment_on={cfg.augment_on!r}; expected one of {AUGMENT_ON} "
                         "or None (by backend)")
    if cfg.augment_on == "device" and (int(cfg.mirror_margin) or float(cfg.elastic_sigma)):
        raise ConfigError("data.augment_on='device' cannot do data.mirror_margin or "
                         "data.elastic_sigma (the U-Net recipe runs on the host): set "
                         "data.augment_on='host' or leave it None")


def augment_on(cfg) -> str:
    """'host' or 'device': data.augment_on, else 'device' on a GPU or TPU backend whose
    recipe the device can do, 'host' otherwise (on a CPU the host's tf.data threads
    overlap the step; measured in benchmarks/README.md)."""
    if cfg.augment_on is not None:
        return cfg.augment_on
    if int(cfg.mirror_margin) or float(cfg.elastic_sigma):
        return "host"
    import jax
    return "device" if jax.default_backend() in ("gpu", "tpu") else "host"


def crop_kind(cfg, dense: bool) -> str:
    """How a training crop is made (fluxseg.data.train_crop): 'resized' (classification's
    random-resized-crop), 'cut' (scale_range (1, 1): a pure cut) or 'resample' (scale + crop)."""
    if not dense and cfg.random_resized_crop:
        return "resized"
    return "cut" if tuple(float(v) for v in cfg.scale_range) == (1.0, 1.0) else "resample"


def crop_size(cfg) -> tuple[int, int]:
    return _pair(cfg.crop_size, "crop_size")


def eval_size(cfg) -> tuple[int, int]:
    return crop_size(cfg) if cfg.eval_size is None else _pair(cfg.eval_size, "eval_size")
