"""fluxseg.data: tfds datasets and the tf.data input pipeline.

Public functions (see each docstring for shapes and dtypes):

  default_config() -> ml_collections.ConfigDict
      The data config: dataset name, task, crop/scale/flip, eval size, ...
  info(data_cfg) -> DataInfo
      num_classes, class_names, ignore_index, num_examples per split,
      image_shape, colormap (prepares the dataset if it is an offline one).
  train_iterator(data_cfg, *, global_batch_size, seed, start_step=0,
                 process_index=None, process_count=None) -> Iterator[dict]
      Infinite, exactly resumable host-local training batches:
      image uint8 [b, H, W, C] and mask int32 [b, H, W] or label int32 [b]
      (+ weight float32 [b, H, W] with data.border_weight_w0 > 0); with
      data.augment_on='device', uint8 windows (masks uint8) and their draws
      that fluxseg.data.device_augment finishes in the train step.
  eval_iterator(data_cfg, split, *, global_batch_size, process_index=None,
                process_count=None) -> Iterator[dict]
      Finite; every example once over all processes, padded last batch,
      `valid` bool [b]; the same number of batches on every process.
  full_size_iterator(data_cfg, split, ...) -> Iterator[dict]
      Finite; this process's examples one by one at their own size (no
      crop/resize/pad): image uint8 [H, W, 3], mask int32 [H, W] or label.
  load_builder(data_cfg) -> tfds.core.DatasetBuilder (prepared)
  register_builders() -> None
      Registers fluxseg's datasets with tfds (load_builder calls it; call it
      before using tfds.builder / tfds.load on them directly).

fluxseg's datasets: `fluxseg_shapes` (procedural, offline; configs 'default'
64x64 and 'small' 32x32), `fluxseg_voc2012` (PASCAL VOC2012 segmentation
from the official tar), `fluxseg_isbi2012` (ISBI 2012 EM TIFF stacks from
manual_dir), and the folder datasets `fluxseg_image_folder` /
`fluxseg_segmentation_folder` (data.manual_dir). The U-Net training recipe
and the extra augmentations are in `fluxseg.data.recipe`. Joint image+mask
transforms live in `fluxseg.data.transforms`.

Only `default_config` is imported eagerly: the data config is plain
ml_collections, so building a training config (fluxseg.train.config) does not
import TensorFlow. The other names import their module on first use
(PEP 562 module __getattr__); that module imports TensorFlow through
`fluxseg.data._tf`, which hides every GPU/TPU from it so that JAX keeps the
accelerators.
"""
from __future__ import annotations

import importlib

from fluxseg.data.config import default_config

# name -> the fluxseg.data module that defines it (imported on first access)
_LAZY = {"info": "sources", "DataInfo": "sources", "load_builder": "sources",
         "register_builders": "sources", "train_iterator": "pipeline",
         "eval_iterator": "pipeline", "full_size_iterator": "pipeline",
         "tf": "_tf"}  # TensorFlow itself, kept off the accelerators


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"fluxseg.data.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'fluxseg.data' has no attribute {name!r}")


__all__ = ["default_config", *(k for k in _LAZY if k != "tf")]
