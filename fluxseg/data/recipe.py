"""The training transform with the U-Net paper's recipe and the extra augmentations.

Ronneberger et al. 2015 train on large tiles with mirrored context
("overlap-tile": a 572x572 input whose 388x388 output tile lies inside the
image; the missing context at the borders is mirrored), random elastic
deformations, and a per-pixel border weight map in the loss. Each is a
data-config option (see fluxseg/data/config.py) and they combine with the
plain options (scale, crop, flip) and with colour jitter:

  weight map (of the undeformed mask) -> scale -> elastic -> mirror margin
  -> crop -> flip -> colour jitter (image only)

Image, mask and weight get the same geometric draws, so they stay aligned.
The pipeline takes this path when mirror_margin or elastic_sigma is set;
every other recipe takes the shorter one of fluxseg.data.train_crop.
"""
from __future__ import annotations

from fluxseg import tasks
from fluxseg.data import augment, elastic, weight_map
from fluxseg.data import transforms as T
from fluxseg.data._tf import tf


def weights(mask, cfg):
    """float32 [H, W, 1] border weight map of a uint8 mask [H, W, 1] (scipy, on the host)."""
    def compute(m):
        return weight_map.border_weights(
            m, w0=float(cfg.border_weight_w0), sigma=float(cfg.border_weight_sigma),
            ignore_index=int(cfg.ignore_index))[..., None]
    w = tf.numpy_function(compute, [mask], tf.float32, stateful=False)
    return tf.ensure_shape(w, mask.shape)


def with_weights(records, reader, cfg):
    """Adds each record's weight map (of its stored mask) when the recipe needs one.

    The pipeline maps this before caching records, so an epoch after the
    first reuses the maps instead of recomputing them (the costliest step).
    """
    if not (tasks.kind(cfg.task).dense and cfg.border_weight_w0 > 0):
        return records

    def add(ex):
        _, mask, _ = reader.decode(ex)
        return {**ex, "weight": weights(mask, cfg)}
    return records.map(add, num_parallel_calls=cfg.num_parallel_calls)


def _mirror(x, margin):
    return tf.pad(x, [[margin, margin], [margin, margin], [0, 0]], mode="REFLECT")


def _crop(image, mask, weight, seed, size, ignore_index):
    seeds = tf.random.experimental.stateless_split(seed, 2)
    pad_y, start_y = T._placement(tf.shape(image)[0], size[0], seeds[0])
    pad_x, start_x = T._placement(tf.shape(image)[1], size[1], seeds[1])

    def cut(x, fill):
        return T._pad_and_crop(x, pad_y, pad_x, start_y, start_x, size, fill)

    return (cut(image, 0), None if mask is None else cut(mask, ignore_index),
            None if weight is None else cut(weight, 0.0))


def _flip(tensors, seed):
    flip = tf.random.stateless_uniform([], seed) < 0.5
    return [None if x is None else tf.cond(flip, lambda x=x: tf.reverse(x, [1]), lambda x=x: x)
            for x in tensors]


def train_transform(image, mask, seed, cfg, weight=None):
    """-> (image uint8 [cH, cW, C], mask uint8 [cH, cW, 1] or None, weight f32 [cH, cW, 1] or None).

    mask None = classification (random-resized-crop or scale + crop). weight:
    the mask's weight map if already computed (with_weights), else computed here.
    """
    seeds = tf.random.experimental.stateless_split(seed, 6)
    size = tuple(int(v) for v in cfg.crop_size)
    if mask is None and cfg.random_resized_crop:
        image = augment.random_resized_crop(image, seeds[0], size)
        weight = None
    else:
        if weight is None and mask is not None and cfg.border_weight_w0 > 0:
            weight = weights(mask, cfg)
        image, mask = T.random_scale(image, mask, seeds[0], cfg.scale_range)
        if weight is not None:
            weight = tf.image.resize(weight, tf.shape(image)[:2], method="bilinear")
        if cfg.elastic_sigma > 0:
            field = elastic.displacement_field(seeds[1], tf.shape(image)[:2],
                                               grid=int(cfg.elastic_grid),
                                               sigma=float(cfg.elastic_sigma))
            image, mask, weight = elastic.elastic(image, mask, field, weight)
        margin = int(cfg.mirror_margin)
        if margin > 0:
            image = _mirror(image, margin)
            mask = None if mask is None else _mirror(mask, margin)
            weight = None if weight is None else _mirror(weight, margin)
        image, mask, weight = _crop(image, mask, weight, seeds[2], size, cfg.ignore_index)
    if cfg.hflip:
        image, mask, weight = _flip([image, mask, weight], seeds[3])
    if any(cfg.color_jitter):
        image = augment.color_jitter(image, seeds[4], cfg.color_jitter)
    return image, mask, weight
