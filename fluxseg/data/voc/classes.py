"""PASCAL VOC2012 segmentation class names and the standard VOC colormap."""
from __future__ import annotations

import numpy as np

CLASS_NAMES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus",
    "car", "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike",
    "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")
NUM_CLASSES = len(CLASS_NAMES)  # 21
# Object borders and difficult regions are index 255 in the PNGs: never scored.
IGNORE_INDEX = 255


def voc_colormap(n: int = 256) -> np.ndarray:
    """uint8 [n, 3]: the palette of the official SegmentationClass PNGs.

    Class id i spreads its bits over the three channels, most significant
    first: bit 3k of i -> red bit 7-k, bit 3k+1 -> green, bit 3k+2 -> blue.
    Index 0 is black, 1 is (128, 0, 0), 255 ('void') is (224, 224, 192).
    """
    ids = np.arange(n)
    cmap = np.zeros((n, 3), np.int64)
    for k in range(8):
        for channel in range(3):
            bit = (ids >> (3 * k + channel)) & 1
            cmap[:, channel] |= bit << (7 - k)
    return cmap.astype(np.uint8)


# The first 21 rows are the class colours; use voc_colormap()[255] for void.
COLORMAP = voc_colormap()[:NUM_CLASSES]
