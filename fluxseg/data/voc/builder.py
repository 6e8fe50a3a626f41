"""`fluxseg_voc2012`: PASCAL VOC2012 semantic segmentation for tfds.

Source: the official `VOCtrainval_11-May-2012.tar` (1.9 GB). It is read from
`manual_dir` when present there; only otherwise does tfds try to download
it. Splits come from `ImageSets/Segmentation/{train,val}.txt` (1464 / 1449
images). Masks are the palette INDICES of `SegmentationClass/*.png`
(0..20, 255 = void border), not their RGB colours.
"""
from __future__ import annotations

import tarfile

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from fluxseg.data.voc import classes

TAR_NAME = "VOCtrainval_11-May-2012.tar"
URL = "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/" + TAR_NAME
_ROOT = "VOCdevkit/VOC2012/"
_SPLITS = {"train": "train", "validation": "val"}


def read_palette_indices(fobj) -> np.ndarray:
    """uint8 [H, W, 1] palette indices of a VOC SegmentationClass PNG."""
    png = Image.open(fobj)
    if png.mode != "P":
        # An RGB-converted mask would silently turn colours into wrong ids.
        raise ValueError(
            f"VOC mask must be a palette ('P' mode) PNG, got mode {png.mode!r}; "
            "use the original SegmentationClass PNGs from the official tar")
    return np.asarray(png, np.uint8)[..., None]


class FluxsegVoc2012(tfds.core.GeneratorBasedBuilder):
    """PASCAL VOC2012 segmentation: 21 classes, 255 = void."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Download {URL}
    and place the file, unextracted and named `{TAR_NAME}`, in the manual_dir
    (default: <data_dir>/downloads/manual/; fluxseg config: data.manual_dir).
    """

    SEGMENTATION_CLASS_NAMES = classes.CLASS_NAMES
    COLORMAP = classes.COLORMAP

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description="PASCAL VOC2012 semantic segmentation (train/val).",
            features=tfds.features.FeaturesDict({
                # JPEG bytes are stored as they are in the tar (no re-encoding).
                "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
                "segmentation_mask": tfds.features.Image(
                    shape=(None, None, 1), encoding_format="png"),
                "file_name": tfds.features.Text(),
            }),
            supervised_keys=("image", "segmentation_mask"),
            homepage="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
        )

    def _split_generators(self, dl_manager):
        tar_path = None
        try:
            candidate = dl_manager.manual_dir / TAR_NAME
            if candidate.exists():
                tar_path = candidate
        except AssertionError:
            pass  # manual_dir missing or empty: fall through to the download
        if tar_path is None:
            tar_path = dl_manager.download(URL)
        return {name: self._generate_examples(tar_path, voc_name)
                for name, voc_name in _SPLITS.items()}

    def _generate_examples(self, tar_path, voc_split: str):
        # The tar is uncompressed, so members can be read by seeking instead
        # of extracting 2 GB or streaming the whole archive per split.
        with tarfile.open(str(tar_path), "r:") as tar:
            list_name = f"{_ROOT}ImageSets/Segmentation/{voc_split}.txt"
            ids = tar.extractfile(list_name).read().decode().split()
            for image_id in ids:
                jpeg = tar.extractfile(f"{_ROOT}JPEGImages/{image_id}.jpg").read()
                mask = read_palette_indices(
                    tar.extractfile(f"{_ROOT}SegmentationClass/{image_id}.png"))
                yield image_id, {"image": jpeg, "segmentation_mask": mask,
                                 "file_name": image_id}
