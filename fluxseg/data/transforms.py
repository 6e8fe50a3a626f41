"""Joint image + mask transforms for one example, as stateless tf ops: the
U-Net recipe's scale and crop (fluxseg.data.recipe) and evaluation's pad and
resize. (Training crops otherwise come from fluxseg.data.train_crop.)

Shapes: image uint8 [H, W, C]; mask uint8 [H, W, 1] of class ids, or None
(classification). Every random draw comes from an explicit `seed`, an int
tensor of shape [2] (tf "stateless" randomness): the same seed always gives
the same transform, whatever thread or order tf.data runs it in, which is
what makes the training stream reproducible and resumable. Image and mask
always get the SAME draw, so they stay aligned pixel for pixel.
"""
from __future__ import annotations

from fluxseg.data._tf import tf


def element_seed(base_seed: int, position) -> tf.Tensor:
    """int64 [2] seed of the element at `position` of a stream keyed by base_seed."""
    return tf.stack([tf.constant(base_seed, tf.int64), tf.cast(position, tf.int64)])


def to_channels(image, channels: int):
    """uint8 [H, W, c] -> [H, W, channels]: grey repeated into RGB, or RGB to luma.

    Colour to grey uses tf's ITU-R 601 luma weights, rounded back to uint8.
    """
    have = image.shape[-1]
    if have == channels:
        return image
    if have == 1 and channels == 3:
        return tf.image.grayscale_to_rgb(image)
    if have == 3 and channels == 1:
        grey = tf.image.rgb_to_grayscale(tf.cast(image, tf.float32))
        return tf.cast(tf.clip_by_value(tf.round(grey), 0.0, 255.0), tf.uint8)
    raise ValueError(f"cannot convert {have}-channel images to {channels} channels; "
                     "data.channels must be 1 or 3 and images grey or RGB")


def map_mask_values(mask, mask_map, dataset: str):
    """uint8 mask of stored values -> class ids: value v becomes mask_map[v].

    A stored value past the end of the table stops the pipeline with an
    error naming it (never a silent wrong label).
    """
    table = tf.constant([int(v) for v in mask_map], tf.uint8)
    top = tf.reduce_max(tf.cast(mask, tf.int32))
    check = tf.debugging.assert_less(
        top, len(mask_map), message=(f"{dataset}: a mask value is not in data.mask_map="
                                     f"{tuple(mask_map)} (values 0..{len(mask_map) - 1})"))
    with tf.control_dependencies([check]):
        return tf.gather(table, tf.cast(mask, tf.int32))


def _resize(image, mask, size):
    """Image bilinear (rounded back to uint8), mask nearest (ids never blend)."""
    out = tf.image.resize(image, size, method="bilinear")
    image = tf.cast(tf.clip_by_value(tf.round(out), 0.0, 255.0), tf.uint8)
    if mask is not None:
        mask = tf.image.resize(mask, size, method="nearest")
    return image, mask


def random_scale(image, mask, seed, scale_range):
    """Rescales both by one factor drawn uniformly from scale_range=(lo, hi)."""
    lo, hi = (float(v) for v in scale_range)
    if lo == hi == 1.0:
        return image, mask
    scale = tf.random.stateless_uniform([], seed, minval=lo, maxval=hi)
    hw = tf.cast(tf.shape(image)[:2], tf.float32)
    size = tf.maximum(tf.cast(tf.round(hw * scale), tf.int32), 1)
    return _resize(image, mask, size)


def _placement(extent, crop, seed):
    """(pad_before, crop_start) along one axis.

    A larger image is cropped at a uniform offset; a smaller one is padded
    and placed at a uniform offset inside the crop.
    """
    slack = tf.abs(extent - crop)
    offset = tf.random.stateless_uniform([], seed, minval=0, maxval=slack + 1, dtype=tf.int32)
    smaller = extent < crop
    return tf.where(smaller, offset, 0), tf.where(smaller, 0, offset)


def _pad_and_crop(x, pad_y, pad_x, start_y, start_x, size, fill):
    h, w = tf.shape(x)[0], tf.shape(x)[1]
    ch, cw = size
    x = tf.pad(x, [[pad_y, tf.maximum(ch - h - pad_y, 0)],
                   [pad_x, tf.maximum(cw - w - pad_x, 0)], [0, 0]],
               constant_values=tf.cast(fill, x.dtype))
    x = x[start_y:start_y + ch, start_x:start_x + cw]
    return tf.ensure_shape(x, [ch, cw, x.shape[-1]])


def pad_to(image, mask, size, ignore_index):
    """Pads bottom/right to size=(H, W) (image 0, mask ignore); no resampling.

    Fails with a message naming data.eval_size if the image is larger.
    """
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    tf.debugging.assert_less_equal(
        tf.stack([h, w]), tf.constant(size, tf.int32),
        message=(f"eval image larger than data.eval_size={tuple(size)} (eval_mode='pad'); "
                 "set data.eval_size to at least the largest image, e.g. (512, 512) "
                 "for VOC, or data.eval_mode='resize'"))
    image = _pad_and_crop(image, 0, 0, 0, 0, size, 0)
    if mask is not None:
        mask = _pad_and_crop(mask, 0, 0, 0, 0, size, ignore_index)
    return image, mask


def resize_to(image, mask, size):
    """Resizes both to size=(H, W): image bilinear, mask nearest."""
    image, mask = _resize(image, mask, size)
    image = tf.ensure_shape(image, [size[0], size[1], image.shape[-1]])
    if mask is not None:
        mask = tf.ensure_shape(mask, [size[0], size[1], 1])
    return image, mask
