"""Finding, preparing and describing the dataset a data config names."""
from __future__ import annotations

import dataclasses
import difflib
from typing import Optional

import numpy as np
from fluxseg.data import _tf  # noqa: F401  (first: hides the accelerators from TF)
import tensorflow_datasets as tfds
from etils import epath

from fluxseg import tasks
from fluxseg.data import config as config_lib


@dataclasses.dataclass(frozen=True)
class DataInfo:
    """What a model and its metrics need to know about the data.

    num_classes: classes of the targets; None where the dataset does not say
        (a tfds dataset without class names: config.num_classes then gives it).
    class_names: tuple of num_classes names, or None with num_classes.
    num_examples: {split name: count} for the full splits.
    image_shape: (H, W, C) as stored; None for sizes that vary per image.
    colormap: uint8 [num_classes, 3] colours for drawing masks, or None.
    channels: image channels of the batches (data.channels, else as stored).
    """
    name: str
    task: str
    num_classes: Optional[int]
    class_names: Optional[tuple]
    num_examples: dict
    image_shape: tuple
    colormap: Optional[np.ndarray] = None
    channels: int = 3


def _builder_name(cfg) -> str:
    return f"{cfg.name}/{cfg.builder_config}" if cfg.builder_config else cfg.name


def _manual_dir(cfg, builder) -> epath.Path:
    if cfg.manual_dir:
        return epath.Path(cfg.manual_dir)
    return builder.data_dir_root / "downloads" / "manual"


def register_builders() -> None:
    """Registers fluxseg's tfds datasets (shapes, VOC, ISBI, the folders).

    tfds registers a builder when its class is defined, so this imports the
    builder modules; it runs when a dataset is first loaded rather than when
    fluxseg.data is imported, which keeps configs free of TensorFlow.
    """
    from fluxseg.data import folders, isbi, shapes, voc  # noqa: F401  (defines the builders)


def load_builder(cfg) -> tfds.core.DatasetBuilder:
    """The tfds builder named by `cfg`, prepared (written to data_dir).

    fluxseg_shapes is generated on first use. VOC needs its tar in
    manual_dir (or cfg.download=True). Other tfds datasets are only
    downloaded when cfg.download=True.
    """
    register_builders()
    from fluxseg.data import folders, voc

    try:
        if cfg.name in folders.MAKERS:
            builder = _folder_builder(cfg)
        else:
            builder = tfds.builder(_builder_name(cfg), data_dir=cfg.data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        close = difflib.get_close_matches(cfg.name, tfds.list_builders(), n=3)
        raise config_lib.ConfigError(
            f"data.name={cfg.name!r}: neither a fluxseg dataset "
            f"({', '.join(config_lib.FLUXSEG_DATASETS)}) nor a registered tfds dataset"
            + (f"; did you mean {close}?" if close else "")) from None
    except ValueError as e:  # tfds: unknown builder config
        raise config_lib.ConfigError(
            f"data.builder_config={cfg.builder_config!r} is not a config of "
            f"{cfg.name!r}: {e}") from None
    if builder.is_prepared():
        return builder
    manual_dir = _manual_dir(cfg, builder)
    if cfg.name == "fluxseg_voc2012" and not cfg.download and not (
            manual_dir / voc.TAR_NAME).exists():
        raise FileNotFoundError(
            f"PASCAL VOC2012 is not prepared in {builder.data_dir_root} and its "
            f"archive is missing: put {voc.TAR_NAME} (unextracted) at "
            f"{manual_dir / voc.TAR_NAME}\n(download it from {voc.URL}; or set "
            "data.manual_dir to the folder that holds it, or data.download=True "
            "to let tfds fetch it).")
    # Builders that read a manual_dir say themselves what they miss (ISBI: three files).
    manual_check = getattr(type(builder), "check_manual_dir", None)
    if manual_check is not None:
        manual_check(manual_dir)
    elif cfg.name not in ("fluxseg_shapes", *folders.MAKERS, "fluxseg_voc2012") and not cfg.download:
        # fluxseg's own datasets prepare themselves (VOC from its tar, checked above); others need download.
        raise FileNotFoundError(
            f"tfds dataset {_builder_name(cfg)!r} is not prepared in "
            f"{builder.data_dir_root}; run `tfds build {_builder_name(cfg)} "
            f"--data_dir={builder.data_dir_root}` or set data.download=True. tfds "
            f"writes the prepared files to {builder.data_dir} and keeps downloads in "
            f"{builder.data_dir_root}/downloads; archives that need a manual download "
            f"go in {manual_dir}.")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
    return builder


def _folder_builder(cfg) -> tfds.core.DatasetBuilder:
    """A folder dataset's builder, its config named by a fingerprint of the files."""
    from fluxseg.data import folders

    if not cfg.manual_dir:
        raise config_lib.ConfigError(f"data.name={cfg.name!r} reads a folder: set "
                         "--config.data.manual_dir=FOLDER")
    config = folders.MAKERS[cfg.name](cfg.manual_dir, float(cfg.validation_fraction),
                                      int(cfg.channels or 3))
    builder = tfds.builder(cfg.name, config=config, data_dir=cfg.data_dir)
    # The Inception crop (classification only) takes any image size.
    inception_crop = cfg.random_resized_crop and not tasks.kind(cfg.task).dense
    if not builder.is_prepared() and not inception_crop:
        # Reported before a long prepare, with the file names: images the crop would mostly pad.
        train = folders.MAKERS_LAYOUT[cfg.name](config.root, config.validation_fraction)["train"]
        paths = [item[0] for item in train]
        folders.scan.check_min_size(paths, config_lib.crop_size(cfg), float(cfg.scale_range[1]))
    return builder


def class_meta(cfg, builder) -> tuple[Optional[tuple], Optional[np.ndarray]]:
    """(class_names or None where the dataset does not name them, colormap or None)
    for cfg.task on this builder."""
    features = builder.info.features
    if not tasks.kind(cfg.task).dense:
        feature = features[cfg.label_key]
        return (tuple(feature.names) if hasattr(feature, "names") else None), None
    if cfg.binary:
        return ("background", "foreground"), np.array([[0, 0, 0], [255, 255, 255]], np.uint8)
    names = getattr(builder, "SEGMENTATION_CLASS_NAMES", None)  # per folder for folder datasets
    return (tuple(names) if names is not None else None), getattr(type(builder), "COLORMAP", None)


def check_features(cfg, builder) -> None:
    """Raises if the dataset lacks the features the task reads."""
    features = builder.info.features
    keys = [cfg.image_key, cfg.mask_key if tasks.kind(cfg.task).dense else cfg.label_key]
    missing = [k for k in keys if k not in features]
    if missing:
        raise config_lib.ConfigError(
            f"dataset {cfg.name!r} has features {sorted(features)}, but the "
            f"{cfg.task} task reads {missing}; set data.image_key / data.mask_key "
            "/ data.label_key, or data.task")


def channels(cfg, builder) -> int:
    """Channels the pipeline delivers: data.channels, else the stored count."""
    if cfg.channels is not None:
        return int(cfg.channels)
    stored = builder.info.features[cfg.image_key].shape[-1]
    if stored not in (1, 3):
        raise config_lib.ConfigError(
            f"{cfg.name!r} stores images with {stored} channels; fluxseg trains on 1 "
            "(grayscale) or 3 (RGB): set data.channels=1 or 3 to convert")
    return int(stored)


def info(cfg) -> DataInfo:
    """Describes the dataset of a data config (prepares it if needed)."""
    config_lib.check(cfg)
    builder = load_builder(cfg)
    check_features(cfg, builder)
    names, colormap = class_meta(cfg, builder)
    image_shape = builder.info.features[cfg.image_key].shape
    return DataInfo(
        name=cfg.name, task=cfg.task, num_classes=None if names is None else len(names),
        class_names=names, num_examples={k: v.num_examples for k, v in builder.info.splits.items()},
        image_shape=None if None in image_shape else tuple(image_shape),
        colormap=colormap, channels=channels(cfg, builder))
