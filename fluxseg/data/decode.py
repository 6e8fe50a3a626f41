"""Decoding no more of an image than a crop needs, and image sizes read from file headers.

tfds keeps an `Image` feature as its encoded file (JPEG or PNG). A JPEG's
size is in its header (`tf.image.extract_jpeg_shape`, no pixel decoded) and
`tf.image.decode_and_crop_jpeg` decodes only a window of it; a PNG's size is
in its IHDR chunk, but a PNG decodes whole. Decode errors are never caught:
an undecodable record stops the pipeline (fluxseg.data.pipeline names the
dataset), it is never skipped.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from fluxseg.data._tf import pipeline_options, tf

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Scanning a split for its largest image reads every record once; past this
# many examples the scan is skipped (a large dataset, where the read costs more
# than it saves) and callers fall back on what the config implies.
SCAN_LIMIT = 20_000


def _png_size(encoded):
    """int32 [2] (H, W) from a PNG's IHDR chunk (bytes 16-23, big-endian width then height)."""
    b = tf.cast(tf.io.decode_raw(tf.strings.substr(encoded, 16, 8), tf.uint8), tf.int32)
    word = lambda i: b[i] * 16777216 + b[i + 1] * 65536 + b[i + 2] * 256 + b[i + 3]  # noqa: E731
    return tf.stack([word(4), word(0)])


def is_png(encoded):
    return tf.equal(tf.strings.substr(encoded, 0, 8), PNG_SIGNATURE)


def header_size(encoded, feature) -> tf.Tensor:
    """int32 [2] (H, W) of an encoded image: from the header for JPEG and PNG, else by decoding."""
    return tf.case([(tf.io.is_jpeg(encoded), lambda: tf.image.extract_jpeg_shape(encoded)[:2]),
                    (is_png(encoded), lambda: _png_size(encoded))],
                   default=lambda: tf.shape(feature.decode_example(encoded))[:2])


def can_crop_decode(feature) -> bool:
    """Whether `window` may take the JPEG path: 8-bit images with a known channel count."""
    return np.dtype(getattr(feature, "np_dtype", np.uint8)) == np.uint8 and feature.shape[-1] in (1, 3)


def window(encoded, feature, draw: Callable):
    """(pixels [h, w, C], ints, floats): the window of an encoded image that its draw reads.

    draw(hw) -> (ints, floats) as in fluxseg.data.window (ints[4:8] = the
    window's row, column, height and width). A JPEG's size comes from its
    header and only the window is decoded; anything else is decoded whole and
    cut. One branch per element (each branch draws), nothing else branches.
    """
    def whole():
        image = feature.decode_example(encoded)
        ints, floats = draw(tf.shape(image)[:2])
        return image[ints[4]:ints[4] + ints[6], ints[5]:ints[5] + ints[7]], ints, floats

    def jpeg():
        ints, floats = draw(tf.image.extract_jpeg_shape(encoded)[:2])
        pixels = tf.image.decode_and_crop_jpeg(encoded, ints[4:8], channels=int(feature.shape[-1]))
        return pixels, ints, floats

    if not can_crop_decode(feature):
        return whole()
    return tf.cond(tf.io.is_jpeg(encoded), jpeg, whole)


_LARGEST: dict = {}  # (data_dir, split, key) -> (H, W) or None: scanned once per process


def _scan(builder, split: str, key: str) -> Optional[tuple[int, int]]:
    import tensorflow_datasets as tfds

    n = builder.info.splits[split].num_examples
    if n == 0 or n > SCAN_LIMIT:
        return None
    feature = builder.info.features[key]
    ds = builder.as_dataset(split=split, decoders={key: tfds.decode.SkipDecoding()},
                            read_config=tfds.ReadConfig(try_autocache=False))
    sizes = ds.map(lambda ex: header_size(ex[key], feature), num_parallel_calls=-1)
    top = sizes.with_options(pipeline_options()).reduce(tf.zeros([2], tf.int32), tf.maximum)
    return int(top[0]), int(top[1])


def largest(builder, split: str, key: str) -> Optional[tuple[int, int]]:
    """(H, W): the largest height and largest width of `split`'s images, or None if unknown.

    Fixed-shape features say it; otherwise the split's file headers are read
    once per process (splits of up to SCAN_LIMIT examples; None above).
    """
    shape = builder.info.features[key].shape
    if None not in shape[:2]:
        return int(shape[0]), int(shape[1])
    cache_key = (str(builder.data_dir), str(split), key)
    if cache_key not in _LARGEST:
        _LARGEST[cache_key] = _scan(builder, split, key)
    return _LARGEST[cache_key]
