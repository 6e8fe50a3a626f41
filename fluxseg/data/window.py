"""A training crop as a draw and a source window: where it comes from, and cutting it out (tf, host).

An element's draw (scale, placement, flip, colour factors, or the
random-resized-crop box) is a pure function of its uniforms (from the
stateless seed (seed, position), position = step * batch + index) and its
image's size (H, W), which the host reads from the file header. So before
decoding anything the host knows which rows and columns of the image the
crop covers (the window), decodes only those (fluxseg.data.decode), and
either finishes the crop (data.augment_on='host', `resize` here) or ships
the window with its draw for fluxseg.data.device_augment to finish on the
accelerator ('device'). Both apply the rule below, so given the same draw
they give the same pixels (rounding aside) and exactly the same mask. The
draw functions take n rows of uniforms and n sizes (n = 1 in the pipeline).

The rule, one axis (the other is alike): the crop's pixels [lo, hi) lie on
the image, the others are padding (image and weight 0, mask ignore_index;
colour jitter leaves the padding at 0 and takes its means over the image part).
The window's h rows are resized onto [lo, hi) with tf.image.resize's
half-pixel rule: output pixel i reads window coordinate
  v = (i - lo + 0.5) k - 0.5,  k = h / (hi - lo),
bilinear from rows floor(v), floor(v) + 1 clamped to the window (image,
weight) or the nearest row floor((2 (i - lo) + 1) h / (2 (hi - lo))) in
integer arithmetic (mask: host and device pick the same row, never a blend).

Scale + crop: scale s ~ U(scale_range); the scaled image has e = max(round(n s), 1)
pixels (n the image's); the crop's origin o in it is a uniform offset when
e >= c (c the crop), minus a uniform padding when e < c; [lo, hi) = [-o, e - o)
within [0, c), and the window is the image rows that span covers,
[floor((lo + o) n / e), ceil((hi + o) n / e)): the same crop as rescaling the
whole image and cutting, to within a pixel, without the whole-image resize.
Random-resized-crop (the Inception crop: 10 tries of an area of 8-100% and
an aspect ratio of 3/4-4/3, else the whole image): the window is the box,
[lo, hi) the whole crop.

The draw of one element, as tensors:
  ints   int32 [9]:    lo_y, hi_y, lo_x, hi_x, r0, c0, win_h, win_w, flip
  floats float32 [3]:  brightness, contrast, saturation factors
"""
from __future__ import annotations

from fluxseg.data._tf import tf

INTS, FLOATS = 9, 3
# tf.image.rgb_to_grayscale's weights: saturation blends towards this grey.
GREY = (0.2989, 0.587, 0.114)
RRC_AREA, RRC_RATIO, RRC_TRIES = (0.08, 1.0), (3 / 4, 4 / 3), 10


def _floor_div(a, n, e):
    """floor(a n / e) for int32 tensors without overflowing a n (valid for e < 23000)."""
    return a * (n // e) + (a * (n % e)) // e


def _jitter(u, strength):
    """float32 [b, 3] factors in [1 - s, 1 + s] from uniforms u [b, 3]; 1 where s = 0."""
    s = tf.constant([float(v) for v in strength], tf.float32)
    return 1.0 - s + 2.0 * s * u


def _flip(u, hflip: bool):
    return tf.cast(u < 0.5, tf.int32) if hflip else tf.zeros_like(u, tf.int32)


SCALE_CROP_DRAWS, RRC_DRAWS = 7, 4  # uniforms per element (the box has its own sampler)


def uniforms(seed, count: int):
    """float32 [1, count] uniforms of one element from its stateless seed (int64 [2])."""
    return tf.random.stateless_uniform([1, count], seed)


def scale_crop(u, hw, crop, scale_range, hflip: bool, jitter):
    """(ints [n, 9], floats [n, 3]): scale + crop + flip + jitter draws.

    u: float32 [n, SCALE_CROP_DRAWS] uniforms; hw: int32 [n, 2] image sizes.
    """
    lo_s, hi_s = (float(v) for v in scale_range)
    s = lo_s + (hi_s - lo_s) * u[:, 0]
    hw = tf.cast(hw, tf.int32)
    e = tf.maximum(tf.cast(tf.round(tf.cast(hw, tf.float32) * s[:, None]), tf.int32), 1)
    tf.debugging.assert_less(tf.reduce_max(e), 23000, message=(
        "an image rescaled past 23000 pixels a side (data.scale_range x its size): "
        "fluxseg's crop arithmetic is int32; shrink the images"))
    c = tf.constant([int(crop[0]), int(crop[1])], tf.int32)
    slack = tf.abs(e - c)
    offset = tf.minimum(tf.cast(u[:, 1:3] * tf.cast(slack + 1, tf.float32), tf.int32), slack)
    o = tf.where(e < c, -offset, offset)    # the crop's origin in the scaled image
    lo, hi = tf.clip_by_value(-o, 0, c), tf.clip_by_value(e - o, 0, c)
    r0 = _floor_div(lo + o, hw, e)
    r1 = -_floor_div(-(hi + o), hw, e)      # ceil
    ints = tf.stack([lo[:, 0], hi[:, 0], lo[:, 1], hi[:, 1], r0[:, 0], r0[:, 1],
                     r1[:, 0] - r0[:, 0], r1[:, 1] - r0[:, 1], _flip(u[:, 3], hflip)], axis=1)
    return ints, _jitter(u[:, 4:7], jitter)


def whole(u, crop, hflip: bool, jitter):
    """The draws when every image is the crop (scale 1, known while tracing): flips and
    jitter only, from the same uniforms as scale_crop's."""
    n = tf.shape(u)[0]
    ch, cw = int(crop[0]), int(crop[1])
    fixed = tf.tile(tf.constant([[0, ch, 0, cw, 0, 0, ch, cw]], tf.int32), tf.stack([n, 1]))
    ints = tf.concat([fixed, _flip(u[:, 3], hflip)[:, None]], axis=1)
    return ints, _jitter(u[:, 4:7], jitter)


def resized_crop(seed, hw, crop, hflip: bool, jitter):
    """(ints [1, 9], floats [1, 3]): a random-resized-crop box (the Inception crop, TF's
    sampler: area 8-100%, aspect 3/4-4/3, 10 tries, else the whole image) + flip + jitter
    for one image of size hw (int32 [2]), from its stateless seed."""
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.concat([tf.cast(hw, tf.int32), [3]], 0), bounding_boxes=tf.zeros([1, 0, 4]),
        seed=seed, min_object_covered=0.0, aspect_ratio_range=RRC_RATIO, area_range=RRC_AREA,
        max_attempts=RRC_TRIES, use_image_if_no_bounding_boxes=True)
    u = uniforms(tf.random.experimental.stateless_fold_in(seed, 1), RRC_DRAWS)
    ch, cw = int(crop[0]), int(crop[1])
    ints = tf.stack([0, ch, 0, cw, begin[0], begin[1], size[0], size[1], _flip(u[0, 0], hflip)])
    return ints[None], _jitter(u[:, 1:4], jitter)


def _inside(lo, hi, n: int):
    i = tf.range(n)
    return (i >= lo) & (i < hi)


def nearest(i, lo, hi, size):
    """Window row of output row i (int32): floor((2 (i - lo) + 1) size / (2 (hi - lo))), clamped."""
    row = _floor_div(2 * (i - lo) + 1, size, 2 * (hi - lo))
    return tf.clip_by_value(row, 0, size - 1)


def resize(window, ints):
    """float32 [hi_y - lo_y, hi_x - lo_x, C]: a window [h, w, C] (any real dtype) resized,
    bilinear, onto the crop's image part (`pad` adds the rest)."""
    return tf.image.resize(window, tf.stack([ints[1] - ints[0], ints[3] - ints[2]]))


def resize_mask(window, ints):
    """The nearest-pixel resize of a mask window [h, w, 1] onto the crop's image part."""
    rows = nearest(tf.range(ints[1] - ints[0]), 0, ints[1] - ints[0], ints[6])
    cols = nearest(tf.range(ints[3] - ints[2]), 0, ints[3] - ints[2], ints[7])
    # Columns are gathered as rows of the transpose: a gather along axis 1 copies
    # one byte per call, 2.8x the time of the two transposes at 320x480.
    picked = tf.gather(window[..., 0], rows, axis=0)
    return tf.transpose(tf.gather(tf.transpose(picked), cols, axis=0))[..., None]


def pad(x, ints, crop, fill):
    """The crop's image part x [hi_y - lo_y, hi_x - lo_x, C] placed at (lo_y, lo_x) in the
    crop [cH, cW, C]; `fill` around it (image and weight 0, mask ignore_index)."""
    ch, cw = int(crop[0]), int(crop[1])
    x = tf.pad(x, [[ints[0], ch - ints[1]], [ints[2], cw - ints[3]], [0, 0]],
               constant_values=tf.cast(fill, x.dtype))
    return tf.ensure_shape(x, [ch, cw, x.shape[-1]])


def flip(x, ints):
    """Mirrors x [H, W, C] left-right when the draw says so (a branch: a column gather
    costs 3-4x tf.reverse at 320x480)."""
    return tf.cond(ints[8] > 0, lambda: tf.reverse(x, [1]), lambda: x)


def jitter_to_uint8(x, floats):
    """Colour jitter of the crop's image part x float32 [h, w, C], rounded to uint8.

    The three steps of fluxseg.data.augment.color_jitter (x*b; contrast about
    the channel means m of the image part; blend with the grey g) compose into
      s c b x + (1 - s) c b g(x) + (1 - c) b (s m + (1 - s) g(m)),
    one matrix product instead of six passes. Saturation touches RGB only;
    padding stays 0.
    """
    b, c, s = floats[0], floats[1], floats[2]
    channels = x.shape[-1]
    h, w = tf.shape(x)[0], tf.shape(x)[1]
    # Per-channel sums and the offset's add work on rows [h, w*C]: reduced or
    # broadcast along a 3-wide last axis, Eigen took 2.4x (mean) and 3x (add) as long.
    rows = tf.reshape(x, [h, w * channels])
    column_sums = tf.reduce_sum(rows, axis=0)
    m = tf.reduce_sum(tf.reshape(column_sums, [w, channels]), axis=0) / tf.cast(h * w, tf.float32)
    if channels == 3:
        g = tf.constant(GREY, tf.float32)
        matrix = (s * c * b) * tf.eye(3) + ((1.0 - s) * c * b) * g[:, None]
        offset = (1.0 - c) * b * (s * m + (1.0 - s) * tf.reduce_sum(m * g))
    else:
        matrix = c * b * tf.eye(channels)
        offset = (1.0 - c) * b * m
    mixed = tf.reshape(tf.reshape(x, [-1, channels]) @ matrix, [h, w * channels])
    out = mixed + tf.tile(offset + 0.5, [w])
    return tf.reshape(tf.saturate_cast(out, tf.uint8), tf.shape(x))


def to_uint8(x):
    """float32 -> uint8, rounding half up (as fluxseg.data.device_augment does).

    x must lie in [0, 255], as a bilinear resize of uint8 pixels does (each
    output is a convex combination of inputs): no clipping pass, which cost as
    much as the cast (2% of a random-resized-crop element's CPU).
    """
    return tf.cast(x + 0.5, tf.uint8)
