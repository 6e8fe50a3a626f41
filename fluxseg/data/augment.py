"""Image-only and classification augmentations, as stateless tf ops.

Colour jitter changes pixel values only, never geometry, so a mask needs no
counterpart: it is applied to the image alone. Random-resized-crop is the
classification crop of Szegedy et al. 2015 (Inception; area 8%..100% of the
image, aspect ratio 3/4..4/3, resized to the training size).
"""
from __future__ import annotations

from fluxseg.data._tf import tf


def color_jitter(image, seed, strength):
    """uint8 [H, W, C] -> uint8: brightness, contrast, saturation factors in [1-s, 1+s].

    strength = (brightness, contrast, saturation), each a maximum relative
    change; saturation only touches 3-channel images. Each factor has its
    own split of `seed`; a strength of 0 leaves that property unchanged.
    """
    b, c, s = (float(v) for v in strength)
    seeds = tf.random.experimental.stateless_split(seed, 3)
    x = tf.cast(image, tf.float32)

    def factor(k, amount):
        return tf.random.stateless_uniform([], seeds[k], 1.0 - amount, 1.0 + amount)

    if b > 0:
        x = x * factor(0, b)
    if c > 0:
        mean = tf.reduce_mean(x, axis=[0, 1], keepdims=True)
        x = (x - mean) * factor(1, c) + mean
    if s > 0 and image.shape[-1] == 3:
        grey = tf.image.rgb_to_grayscale(x)
        x = (x - grey) * factor(2, s) + grey
    return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)


def random_resized_crop(image, seed, size, area=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """uint8 [H, W, C] -> uint8 [size[0], size[1], C]: a random box, resized bilinear."""
    begin, box_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=tf.zeros([1, 0, 4], tf.float32), seed=seed,
        min_object_covered=0.0, aspect_ratio_range=ratio, area_range=area,
        max_attempts=10, use_image_if_no_bounding_boxes=True)
    crop = tf.slice(image, begin, box_size)
    out = tf.image.resize(crop, size, method="bilinear")
    out = tf.cast(tf.clip_by_value(tf.round(out), 0.0, 255.0), tf.uint8)
    return tf.ensure_shape(out, [size[0], size[1], image.shape[-1]])
