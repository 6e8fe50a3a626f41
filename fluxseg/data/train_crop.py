"""Training elements the short way: read the size, draw, decode the window, finish or ship.

Serves every training recipe without mirrored context or elastic
deformation (those stay in fluxseg.data.recipe): scale + crop + flip,
random-resized-crop, colour jitter, the border weight map. One tf.data map
per element (`Element.apply`, parallel over the host's cores):

  1. the image's size, from its header (no pixels decoded), and its draw
     (fluxseg.data.window) from the stateless seed (seed, position),
     position = step * batch + index;
  2. the window its crop covers, decoded alone (fluxseg.data.decode), the
     mask decoded whole (PNG) and cut to the same window, the weight map
     too; then
     data.augment_on='host': the crop finished (resize, jitter, pad, flip):
       uint8 image [cH, cW, C], int32 mask, float32 weight;
     data.augment_on='device': for scale + crop, the window padded into a
       fixed bucket [bH, bW] (uint8 image, uint8 mask padded with
       ignore_index, float32 weight) plus the draw (`aug_ints` int32 [9],
       `aug_floats` float32 [3]); fluxseg.data.device_augment finishes it in
       the train step. Random-resized-crop boxes are resized to the crop
       here in both modes (a box may be the whole image: shipping boxes would
       send several times the bytes of the crops) and flip and jitter are
       left to the device; with scale_range (1, 1) the crop is a pure cut,
       made here.
"""
from __future__ import annotations

import math

from fluxseg.data import config as config_lib, decode, window as W
from fluxseg.data._tf import tf


def applies(cfg) -> bool:
    """True when this path serves cfg (no mirrored context, no elastic deformation)."""
    return not (int(cfg.mirror_margin) or float(cfg.elastic_sigma))


def bucket(cfg, largest) -> tuple[int, int]:
    """(bH, bW) holding any scale + crop window: the crop (plus a pixel) over the smallest
    scale plus rounding, or the largest image where that is smaller."""
    lo = float(cfg.scale_range[0])
    out = []
    for i, c in enumerate(cfg.crop_size):
        side = math.ceil((int(c) + 1) / lo) + 2
        out.append(min(side, int(largest[i])) if largest is not None else side)
    return tuple(out)


class Element:
    """The steps of the module docstring for one data config and one process."""

    def __init__(self, cfg, reader, mode: str, bucket_size, aug_seed: int):
        if mode not in config_lib.AUGMENT_ON:
            raise ValueError(f"data.augment_on={mode!r}; expected one of {config_lib.AUGMENT_ON}")
        self.cfg, self.reader, self.mode, self.bucket = cfg, reader, mode, bucket_size
        self.aug_seed = int(aug_seed)
        self.dense = reader.task.dense
        self.kind = config_lib.crop_kind(cfg, self.dense)
        self.crop = config_lib.crop_size(cfg)
        self.jitter = tuple(float(v) for v in cfg.color_jitter)
        self.hflip = bool(cfg.hflip)
        key = cfg.image_key
        self.encoded = key in reader.decoders
        self.feature = reader.builder.info.features[key]
        # A decoded image of the crop's own size (known while tracing; scale 1): the crop
        # is the identity, skipped (its ~20 ops were a third of the default run's pipeline).
        self.whole = self.kind == "cut" and tuple(self.feature.shape[:2]) == self.crop

    def apply(self, ds, num_parallel_calls: int):
        """(position, record) elements -> finished elements."""
        return ds.map(self.element, num_parallel_calls=num_parallel_calls)

    def drawer(self, position):
        """hw (int32 [2]) -> (ints [9], floats [3]): the element's draw, from the stateless
        seed (aug_seed, position) and its image's size."""
        seed = tf.stack([tf.constant(self.aug_seed, tf.int64), tf.cast(position, tf.int64)])

        def draw(hw):
            if self.whole:
                ints, floats = W.whole(W.uniforms(seed, W.SCALE_CROP_DRAWS), self.crop, self.hflip,
                                       self.jitter)
            elif self.kind == "resized":
                ints, floats = W.resized_crop(seed, hw, self.crop, self.hflip, self.jitter)
            else:
                ints, floats = W.scale_crop(W.uniforms(seed, W.SCALE_CROP_DRAWS), hw[None], self.crop,
                                            self.cfg.scale_range, self.hflip, self.jitter)
            return ints[0], floats[0]
        return draw

    def element(self, position, ex) -> dict:
        """Size, draw and window (one branch for JPEGs, one for the rest), then finish."""
        parts, key = self.reader.decoded_parts(ex), self.cfg.image_key
        draw = self.drawer(position)
        if parts is None and self.encoded:
            if self.whole:
                pixels = self.feature.decode_example(ex[key])
                ints, floats = draw(tf.shape(pixels)[:2])
            else:
                pixels, ints, floats = decode.window(ex[key], self.feature, draw)
        else:
            image = parts["image"] if parts is not None else ex[key]
            ints, floats = draw(tf.shape(image)[:2])
            pixels = image if self.whole else _cut(image, ints)
        return self.finish(ex, self.reader.to_channels(pixels), ints, floats)

    def finish(self, ex, pixels, ints, floats) -> dict:
        """The crop finished (host) or packed (device) from the decoded window `pixels`."""
        mask = weight = None
        if self.dense:
            mask, weight = self.reader.mask_and_weight(ex)
            if not self.whole:
                mask = _cut(mask, ints)
                weight = None if weight is None else _cut(weight, ints)
        if self.mode == "device" and self.kind == "resample":
            out = self._packed(pixels, mask, weight)
        else:
            out = self._crop(pixels, mask, weight, ints, floats)
        if not self.dense:
            out["label"] = self.reader.label(ex)
        if self.mode == "device":
            out.update(aug_ints=ints, aug_floats=floats)
        return out

    def _crop(self, pixels, mask, weight, ints, floats) -> dict:
        """The crop made here: finished (host mode), or without flip and jitter (device).

        The image part is resized (float) and jittered before the padding is
        added in uint8: no float pass over the padding.
        """
        ignore, host = self.cfg.ignore_index, self.mode == "host"
        if self.kind in ("resample", "resized"):
            image = W.resize(pixels, ints)
            mask = None if mask is None else W.resize_mask(mask, ints)
            weight = None if weight is None else W.resize(weight, ints)
        else:
            image = pixels
        if host and any(self.jitter):
            image = W.jitter_to_uint8(tf.cast(image, tf.float32), floats)
        elif image.dtype != tf.uint8:
            image = W.to_uint8(image)
        if self.kind != "resized" and not self.whole:
            image = W.pad(image, ints, self.crop, 0)
            mask = None if mask is None else W.pad(mask, ints, self.crop, ignore)
            weight = None if weight is None else W.pad(weight, ints, self.crop, 0.0)
        if host and self.hflip:
            image, mask, weight = (None if x is None else W.flip(x, ints) for x in (image, mask, weight))
        out = {"image": image}
        if mask is not None:  # uint8 to the device (4x less to send), int32 ids from the host
            out["mask"] = tf.cast(mask[..., 0], tf.int32) if host else mask[..., 0]
        if weight is not None:
            out["weight"] = weight[..., 0]
        return out

    def _packed(self, pixels, mask, weight) -> dict:
        """The window padded into the bucket, for fluxseg.data.device_augment."""
        bh, bw = self.bucket
        tf.debugging.assert_less_equal(
            tf.shape(pixels)[:2], tf.constant([bh, bw]),
            message=f"a crop window is larger than the device bucket {self.bucket} (a bug)")

        def pad(x, fill):
            x = tf.pad(x, [[0, bh - tf.shape(x)[0]], [0, bw - tf.shape(x)[1]], [0, 0]],
                       constant_values=tf.cast(fill, x.dtype))
            return tf.ensure_shape(x, [bh, bw, x.shape[-1]])

        out = {"image": pad(pixels, 0)}
        if mask is not None:
            out["mask"] = pad(mask, self.cfg.ignore_index)[..., 0]
        if weight is not None:
            out["weight"] = pad(weight, 0.0)[..., 0]
        return out


def _cut(x, ints):
    return x[ints[4]:ints[4] + ints[6], ints[5]:ints[5] + ints[7]]
