"""`fluxseg_shapes`: an offline segmentation/classification dataset for tfds.

Nothing is downloaded: `_generate_examples` draws every example from a seed
(see `draw.py`), and tfds writes them to `data_dir` like any other dataset:

    builder = tfds.builder('fluxseg_shapes', data_dir=...)          # 'default'
    builder = tfds.builder('fluxseg_shapes/small', data_dir=...)    # for tests
    builder.download_and_prepare()

Custom sizes: `tfds.builder('fluxseg_shapes', config=ShapesConfig(name=..., ...))`.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from fluxseg.data.shapes import draw


@dataclasses.dataclass(eq=False)
class ShapesConfig(tfds.core.BuilderConfig):
    """Image side in pixels, examples per split, and the generator seed."""

    image_size: int = 64
    num_train: int = 2000
    num_validation: int = 300
    num_test: int = 300
    seed: int = 0


class FluxsegShapes(tfds.core.GeneratorBasedBuilder):
    """Procedural shapes on textured backgrounds, with per-pixel class masks."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = [
        ShapesConfig(name="default", description="64x64, 2000/300/300 examples."),
        ShapesConfig(name="small", description="32x32, 48/18/10 examples (tests).",
                     image_size=32, num_train=48, num_validation=18, num_test=10),
    ]
    DEFAULT_CONFIG_NAME = "default"

    # Read by fluxseg.data.info(): names and colours of the MASK class ids.
    SEGMENTATION_CLASS_NAMES = draw.CLASS_NAMES
    COLORMAP = draw.COLORMAP

    def _info(self) -> tfds.core.DatasetInfo:
        s = self.builder_config.image_size
        return self.dataset_info_from_configs(
            description=(
                "Filled circles, squares, triangles, rings and crosses with "
                "random colours, sizes, rotations and occlusion on textured, "
                "noisy backgrounds. Mask ids: " + ", ".join(
                    f"{i}={n}" for i, n in enumerate(draw.CLASS_NAMES))
                + ". `label` is the largest visible object's class (0=circle)."),
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(s, s, 3)),
                "segmentation_mask": tfds.features.Image(shape=(s, s, 1)),
                "label": tfds.features.ClassLabel(names=draw.OBJECT_CLASS_NAMES),
                "objects_present": tfds.features.Tensor(
                    shape=(len(draw.OBJECT_CLASS_NAMES),), dtype=np.bool_),
            }),
            supervised_keys=("image", "segmentation_mask"),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        cfg = self.builder_config
        return {
            "train": self._generate_examples("train", cfg.num_train),
            "validation": self._generate_examples("validation", cfg.num_validation),
            "test": self._generate_examples("test", cfg.num_test),
        }

    def _generate_examples(self, split: str, num_examples: int):
        cfg = self.builder_config
        for i in range(num_examples):
            yield i, draw.draw_example(cfg.seed, split, i, cfg.image_size)
