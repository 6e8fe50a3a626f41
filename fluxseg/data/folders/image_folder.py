"""`fluxseg_image_folder`: classification from one folder per class.

Layouts (data.manual_dir = ROOT):
  ROOT/train/<class>/*.jpg and ROOT/validation/<class>/*.jpg  (also valid/ or
      val/; "Car or Truck": train/Car, valid/Truck ...)
  ROOT/<class>/*.jpg  (the PetImages Cat/ Dog/ layout of Kaggle cats-vs-dogs):
      a deterministic `validation_fraction` of each class, by file-name hash.
Class ids follow the sorted class folder names. The builder config's name is
a fingerprint of the files (names, sizes, times): any change in the folder
gives a new config and a freshly prepared dataset, never a stale cache.
"""
from __future__ import annotations

import dataclasses
import os

import tensorflow_datasets as tfds

from fluxseg.data.folders import scan


@dataclasses.dataclass(eq=False)
class FolderConfig(tfds.core.BuilderConfig):
    root: str = ""
    validation_fraction: float = 0.2
    channels: int = 3


def layout(root: str, fraction: float) -> dict:
    """{'train': [(path, class_name)], 'validation': [...]}; errors say what was found."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"data.manual_dir={root!r} is not a directory; point it at the "
                                "folder holding one sub-folder per class (or train/ and validation/)")
    subdirs = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))
                     and not d.startswith("."))
    val = next((d for d in scan.VALIDATION_NAMES if d in subdirs), None)

    def classes_in(d):
        return {c: scan.list_images(os.path.join(d, c)) for c in sorted(os.listdir(d))
                if os.path.isdir(os.path.join(d, c)) and not c.startswith(".")}

    if "train" in subdirs and val:
        splits = {"train": classes_in(os.path.join(root, "train")),
                  "validation": classes_in(os.path.join(root, val))}
        if set(splits["train"]) != set(splits["validation"]):
            raise ValueError(f"{root}: train/ has classes {sorted(splits['train'])} but {val}/ "
                             f"has {sorted(splits['validation'])}; they must match")
    else:
        per_class = classes_in(root)
        splits = {"train": {}, "validation": {}}
        for c, paths in per_class.items():
            splits["validation"][c] = [p for p in paths if scan.in_validation(p, fraction)]
            splits["train"][c] = [p for p in paths if not scan.in_validation(p, fraction)]
    out = {s: [(p, c) for c, paths in classes.items() for p in paths]
           for s, classes in splits.items()}
    names = sorted(splits["train"])
    if len(names) < 2 or not out["train"]:
        raise ValueError(f"{root}: found classes {names} with {len(out['train'])} training images; "
                         "expected at least two class folders of images (ROOT/<class>/*.jpg or "
                         "ROOT/train/<class>/ + ROOT/validation/<class>/)")
    return out


def make_config(root: str, fraction: float = 0.2, channels: int = 3) -> FolderConfig:
    files = layout(root, fraction)
    paths = [p for split in files.values() for p, _ in split]
    name = "f" + scan.fingerprint(paths, os.path.abspath(root), fraction, channels)
    return FolderConfig(name=name, root=os.path.abspath(root), validation_fraction=fraction,
                        channels=channels, description=f"class folders of {root}")


class FluxsegImageFolder(tfds.core.GeneratorBasedBuilder):
    """Images in one folder per class."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = []  # made per folder by make_config (fluxseg.data.load_builder)

    def _info(self) -> tfds.core.DatasetInfo:
        cfg = self.builder_config
        files = layout(cfg.root, cfg.validation_fraction)
        names = sorted({c for _, c in files["train"]})
        return self.dataset_info_from_configs(
            description=f"Class folders of {cfg.root}.",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, cfg.channels)),
                "label": tfds.features.ClassLabel(names=names),
                "file_name": tfds.features.Text(),
            }),
            supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
        del dl_manager
        cfg = self.builder_config
        files = layout(cfg.root, cfg.validation_fraction)
        return {split: self._generate_examples(items) for split, items in files.items() if items}

    def _generate_examples(self, items):
        for path, label in items:
            image, _ = scan.read_image(path, self.builder_config.channels)
            rel = os.path.relpath(path, self.builder_config.root)
            yield rel, {"image": image, "label": label, "file_name": rel}
