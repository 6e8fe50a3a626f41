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
      (+ weight float32 [b, H, W] with data.border_weight_w0 > 0).
  eval_iterator(data_cfg, split, *, global_batch_size, process_index=None,
                process_count=None) -> Iterator[dict]
      Finite; every example once over all processes, padded last batch,
      `valid` bool [b]; the same number of batches on every process.
  full_size_iterator(data_cfg, split, ...) -> Iterator[dict]
      Finite; this process's examples one by one at their own size (no
      crop/resize/pad): image uint8 [H, W, 3], mask int32 [H, W] or label.
  load_builder(data_cfg) -> tfds.core.DatasetBuilder (prepared)

Datasets registered with tfds on import: `fluxseg_shapes` (procedural,
offline; configs 'default' 64x64 and 'small' 32x32), `fluxseg_voc2012`
(PASCAL VOC2012 segmentation from the official tar), `fluxseg_isbi2012`
(ISBI 2012 EM TIFF stacks from manual_dir), and the folder datasets
`fluxseg_image_folder` / `fluxseg_segmentation_folder` (data.manual_dir).
The U-Net training recipe and the extra augmentations are in
`fluxseg.data.recipe`. Joint image+mask
transforms live in `fluxseg.data.transforms`.

Importing this package hides every GPU/TPU from TensorFlow so that JAX keeps
the accelerators.
"""
from fluxseg.data._tf import tf  # noqa: F401  (before any TF op: hides devices)
from fluxseg.data import isbi, shapes, voc  # noqa: F401  (registers the builders)
from fluxseg.data.config import default_config
from fluxseg.data.sources import DataInfo, info, load_builder
from fluxseg.data.pipeline import eval_iterator, full_size_iterator, train_iterator

__all__ = ["default_config", "info", "DataInfo", "load_builder",
           "train_iterator", "eval_iterator", "full_size_iterator"]
