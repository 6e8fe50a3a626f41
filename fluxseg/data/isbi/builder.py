"""`fluxseg_isbi2012`: ISBI 2012 EM segmentation (the original U-Net's data).

Source (Arganda-Carreras et al. 2015, "Crowdsourcing the creation of image
segmentation algorithms for connectomics"): three multi-page TIFFs that the
challenge site hands out only after a login, so they are read from the tfds
manual_dir (fluxseg: data.manual_dir):
  train-volume.tif  30 slices 512x512, uint8 grey (serial-section TEM)
  train-labels.tif  30 slices, 0 = membrane, 255 = cell interior
  test-volume.tif   30 slices, no public labels
Masks become class ids 0 (membrane) / 1 (cell). Any other label value is an
error naming the file and slice: a resampled or JPEG-damaged label stack
would otherwise turn grey values into silent wrong labels.

Splits: the 30 labelled slices are cut into 'train' (the first 30 - k) and
'validation' (the last k; consecutive slices are nearly identical, so a
contiguous block keeps validation honest). k is the config: 'val5' (default),
'val3', 'val10', 'val15', or IsbiConfig(name=..., num_validation=k).
'test' holds test-volume.tif with every mask pixel 255 (= unlabelled).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

FILES = ("train-volume.tif", "train-labels.tif", "test-volume.tif")
CLASS_NAMES = ("membrane", "cell")
COLORMAP = np.array([[0, 0, 0], [255, 255, 255]], np.uint8)
NUM_SLICES = 30


def check_manual_dir(manual_dir) -> None:
    """Raises FileNotFoundError naming the missing files and the directory."""
    from etils import epath
    d = epath.Path(manual_dir)
    missing = [f for f in FILES if not (d / f).exists()]
    if missing:
        raise FileNotFoundError(
            f"ISBI 2012: {', '.join(missing)} not found in {d} (fluxseg_isbi2012 needs "
            f"{', '.join(FILES)} there). The challenge files need a login: download them "
            "from https://imagej.net/events/isbi-2012-segmentation-challenge (or its "
            "mirrors) and put the three .tif files, unrenamed, in that directory, or set "
            "--config.data.manual_dir=DIR to where they are.")


def read_stack(path) -> np.ndarray:
    """uint8 [N, H, W] from a multi-page grey TIFF; errors name the file."""
    with open(path, "rb") as f, Image.open(f) as tif:
        pages = []
        for i in range(getattr(tif, "n_frames", 1)):
            tif.seek(i)
            if tif.mode != "L":
                raise ValueError(
                    f"{path}, page {i}: expected 8-bit grey (PIL mode 'L'), got mode "
                    f"{tif.mode!r}; use the challenge's original uint8 TIFF files")
            pages.append(np.asarray(tif, np.uint8))
    shapes = {p.shape for p in pages}
    if len(shapes) != 1:
        raise ValueError(f"{path}: pages differ in size {sorted(shapes)}")
    return np.stack(pages)


def labels_to_classes(labels: np.ndarray, path) -> np.ndarray:
    """0 (membrane) -> 0, 255 (cell) -> 1; anything else is an error."""
    bad = ~np.isin(labels, (0, 255))
    if bad.any():
        z, y, x = np.argwhere(bad)[0]
        raise ValueError(
            f"{path}: slice {z} pixel ({y}, {x}) has label {labels[z, y, x]}; ISBI labels "
            f"are 0 (membrane) or 255 (cell) only ({int(bad.sum())} pixels differ). Use the "
            "original train-labels.tif, not a resampled or lossy copy.")
    return (labels == 255).astype(np.uint8)


@dataclasses.dataclass(eq=False)
class IsbiConfig(tfds.core.BuilderConfig):
    """num_validation: the last slices of train-volume.tif held out for validation."""

    num_validation: int = 5


class FluxsegIsbi2012(tfds.core.GeneratorBasedBuilder):
    """ISBI 2012 EM: 512x512 grey slices; 0 = membrane, 1 = cell."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = [IsbiConfig(name=f"val{k}", num_validation=k,
                                  description=f"{NUM_SLICES - k} train / {k} validation slices")
                       for k in (5, 3, 10, 15)]
    DEFAULT_CONFIG_NAME = "val5"
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        f"Put {', '.join(FILES)} (from the ISBI 2012 challenge, after a login) in the "
        "manual_dir (fluxseg: data.manual_dir).")

    SEGMENTATION_CLASS_NAMES = CLASS_NAMES
    COLORMAP = COLORMAP
    check_manual_dir = staticmethod(check_manual_dir)

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description="ISBI 2012 EM segmentation: membrane (0) vs cell (1).",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 1)),
                "segmentation_mask": tfds.features.Image(shape=(None, None, 1)),
                "slice": tfds.features.Scalar(dtype=np.int32),
            }),
            supervised_keys=("image", "segmentation_mask"),
            homepage="https://imagej.net/events/isbi-2012-segmentation-challenge",
        )

    def _split_generators(self, dl_manager):
        # The public property raises a generic AssertionError on an empty dir;
        # check_manual_dir names the three files instead.
        manual = dl_manager._manual_dir  # noqa: SLF001
        if manual is None:
            raise FileNotFoundError(f"fluxseg_isbi2012 needs a manual_dir holding {', '.join(FILES)}")
        check_manual_dir(manual)
        k = int(self.builder_config.num_validation)
        volume_path, labels_path, test_path = (manual / f for f in FILES)
        volume = read_stack(volume_path)
        labels = labels_to_classes(read_stack(labels_path), labels_path)
        if volume.shape != labels.shape:
            raise ValueError(f"{volume_path} is {volume.shape} but {labels_path} is "
                             f"{labels.shape}; they must hold the same slices")
        if not 0 < k < len(volume):
            raise ValueError(f"num_validation={k} must leave slices for both splits "
                             f"(the volume has {len(volume)})")
        test = read_stack(test_path)
        n = len(volume) - k
        return {"train": self._generate_examples(volume[:n], labels[:n], 0),
                "validation": self._generate_examples(volume[n:], labels[n:], n),
                "test": self._generate_examples(test, np.full_like(test, 255), 0)}

    def _generate_examples(self, images, masks, first: int):
        for i, (image, mask) in enumerate(zip(images, masks)):
            yield first + i, {"image": image[..., None], "segmentation_mask": mask[..., None],
                              "slice": first + i}
