"""`fluxseg_segmentation_folder`: images/ and masks/ matched by file stem.

Layouts (data.manual_dir = ROOT):
  ROOT/images/*.jpg + ROOT/masks/*.png  (a deterministic validation_fraction
      by file-name hash), or
  ROOT/train/{images,masks}/ + ROOT/validation/{images,masks}/ (or valid/, val/).
Masks: palette PNGs (their palette INDICES are the class ids, as in VOC) or
8-bit grey PNGs (their values are the ids); 255 = unlabelled. RGB masks are
refused: colours would need a colour table to become ids.
Classes: ROOT/classes.txt, optional, one class a line, either `name` (the
line number is the mask value) or `VALUE name` (e.g. `255 cell` for 0/255
masks: mapped to the line's class id). Without it the class count is the
largest mask value + 1 (255 excluded). Mask values outside the classes, an
image without a mask (or the reverse), a mask whose size differs from its
image: each is an error naming the files, at prepare time.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from fluxseg.data.folders import scan

CLASSES_FILE = "classes.txt"
IGNORE = 255


@dataclasses.dataclass(eq=False)
class SegFolderConfig(tfds.core.BuilderConfig):
    root: str = ""
    validation_fraction: float = 0.2
    channels: int = 3


def read_classes(root: str):
    """(names, {mask value: class id}) from classes.txt, or (None, None)."""
    path = os.path.join(root, CLASSES_FILE)
    if not os.path.exists(path):
        return None, None
    names, values = [], {}
    for n, line in enumerate(open(path).read().splitlines(), start=1):
        parts = line.split(maxsplit=1)
        if not parts:
            continue
        if len(parts) == 2 and parts[0].isdigit():
            value, name = int(parts[0]), parts[1].strip()
        else:
            value, name = len(names), line.strip()
        if not 0 <= value <= 255 or value in values:
            raise ValueError(f"{path}, line {n}: mask value {value} is out of 0..255 or repeated")
        values[value] = len(names)
        names.append(name)
    return tuple(names), values


def _pairs(directory: str):
    images, masks = os.path.join(directory, "images"), os.path.join(directory, "masks")
    for d in (images, masks):
        if not os.path.isdir(d):
            raise FileNotFoundError(f"{d} is missing; expected ROOT/images/ and ROOT/masks/ (or "
                                    "ROOT/train/{images,masks}/ and ROOT/validation/...)")
    by_stem = lambda paths: {os.path.splitext(os.path.basename(p))[0]: p for p in paths}  # noqa: E731
    im, ms = by_stem(scan.list_images(images)), by_stem(scan.list_images(masks))
    lonely = sorted(set(im) ^ set(ms))
    if lonely:
        which = [f"{im.get(s) or ms.get(s)} has no {'mask' if s in im else 'image'}" for s in lonely]
        raise ValueError(f"{len(lonely)} unmatched file(s): " + "; ".join(which[:5]))
    return [(im[s], ms[s]) for s in sorted(im)]


def layout(root: str, fraction: float) -> dict:
    if not os.path.isdir(root):
        raise FileNotFoundError(f"data.manual_dir={root!r} is not a directory")
    val = next((d for d in scan.VALIDATION_NAMES if os.path.isdir(os.path.join(root, d))), None)
    if os.path.isdir(os.path.join(root, "train")) and val:
        return {"train": _pairs(os.path.join(root, "train")),
                "validation": _pairs(os.path.join(root, val))}
    pairs = _pairs(root)
    return {"train": [p for p in pairs if not scan.in_validation(p[0], fraction)],
            "validation": [p for p in pairs if scan.in_validation(p[0], fraction)]}


def read_mask(path) -> np.ndarray:
    """uint8 [H, W] raw mask values (palette indices or grey levels)."""
    try:
        im = Image.open(path)
        im.load()
    except Exception as e:
        raise ValueError(f"{path}: cannot decode the mask ({e})") from None
    if im.mode not in ("P", "L"):
        raise ValueError(f"{path}: mask mode {im.mode!r}; expected a palette ('P') or 8-bit grey "
                         "('L') PNG whose values are class ids (RGB colours are ambiguous)")
    return np.asarray(im, np.uint8)


def to_class_ids(raw: np.ndarray, values, num_classes: int, path) -> np.ndarray:
    if values is not None:
        lut = np.full(256, -1, np.int32)
        lut[IGNORE] = IGNORE
        for v, c in values.items():
            lut[v] = c
        ids = lut[raw]
    else:
        ids = raw.astype(np.int32)
    bad = (ids < 0) | ((ids >= num_classes) & (ids != IGNORE))
    if bad.any():
        found = sorted(set(np.unique(raw[bad]).tolist()))
        raise ValueError(f"{path}: mask values {found} are not classes of this dataset "
                         f"({num_classes} classes; 255 = unlabelled). Fix the mask or list the "
                         f"values in {CLASSES_FILE} ('VALUE name' lines).")
    return ids.astype(np.uint8)


def class_names(root: str, fraction: float) -> tuple:
    names, _ = read_classes(root)
    if names is not None:
        return names
    top = 0
    for split in layout(root, fraction).values():
        for _, m in split:
            raw = read_mask(m)
            raw = raw[raw != IGNORE]
            top = max(top, int(raw.max()) if raw.size else 0)
    return tuple(str(i) for i in range(top + 1))


def make_config(root: str, fraction: float = 0.2, channels: int = 3) -> SegFolderConfig:
    files = layout(root, fraction)
    paths = [p for split in files.values() for pair in split for p in pair]
    classes = os.path.join(root, CLASSES_FILE)
    paths += [classes] if os.path.exists(classes) else []
    name = "f" + scan.fingerprint(paths, os.path.abspath(root), fraction, channels)
    return SegFolderConfig(name=name, root=os.path.abspath(root), validation_fraction=fraction,
                           channels=channels, description=f"images/ + masks/ of {root}")


class FluxsegSegmentationFolder(tfds.core.GeneratorBasedBuilder):
    """Images and class-id masks matched by file stem."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = []  # made per folder by make_config (fluxseg.data.load_builder)

    @property
    def SEGMENTATION_CLASS_NAMES(self):  # noqa: N802  (read by fluxseg.data.info)
        cfg = self.builder_config
        return class_names(cfg.root, cfg.validation_fraction)

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=f"Segmentation folder {self.builder_config.root}.",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, self.builder_config.channels)),
                "segmentation_mask": tfds.features.Image(shape=(None, None, 1)),
                "file_name": tfds.features.Text(),
            }),
            supervised_keys=("image", "segmentation_mask"))

    def _split_generators(self, dl_manager):
        del dl_manager
        cfg = self.builder_config
        files = layout(cfg.root, cfg.validation_fraction)
        names, values = read_classes(cfg.root)
        k = len(names) if names is not None else len(class_names(cfg.root, cfg.validation_fraction))
        return {split: self._generate_examples(pairs, values, k)
                for split, pairs in files.items() if pairs}

    def _generate_examples(self, pairs, values, num_classes):
        root = self.builder_config.root
        for image_path, mask_path in pairs:
            image, _ = scan.read_image(image_path, self.builder_config.channels)
            mask = to_class_ids(read_mask(mask_path), values, num_classes, mask_path)
            h, w = scan.header_size(image_path)
            if mask.shape != (h, w):
                raise ValueError(f"{mask_path} is {mask.shape[0]}x{mask.shape[1]} but its image "
                                 f"{image_path} is {h}x{w}; a mask must cover its image exactly")
            rel = os.path.relpath(image_path, root)
            yield rel, {"image": image, "segmentation_mask": mask[..., None], "file_name": rel}
