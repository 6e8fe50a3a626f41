"""Datasets from a user's folders: `fluxseg_image_folder`, `fluxseg_segmentation_folder`.

Both are pointed at with data.manual_dir; their builder config is made per
folder (a fingerprint of its files), so fluxseg.data.load_builder builds them
through `make_config` rather than by a fixed config name.
"""
from fluxseg.data.folders import image_folder, scan, segmentation_folder  # noqa: F401
from fluxseg.data.folders.image_folder import FluxsegImageFolder  # noqa: F401  (registers)
from fluxseg.data.folders.segmentation_folder import FluxsegSegmentationFolder  # noqa: F401

MAKERS = {"fluxseg_image_folder": image_folder.make_config,
          "fluxseg_segmentation_folder": segmentation_folder.make_config}
MAKERS_LAYOUT = {"fluxseg_image_folder": image_folder.layout,
                 "fluxseg_segmentation_folder": segmentation_folder.layout}
