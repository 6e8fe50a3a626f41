"""Plain tf.data pipelines doing the same work as fluxseg's, written as a tf.data user would.

Each is the textbook shape: file names (or in-memory arrays) ->
`map(decode + augment, num_parallel_calls=AUTOTUNE)` -> batch -> prefetch,
tf.data's autotuner on, TF's own random ops. They output what fluxseg's
batches hold (uint8 images, int32 masks or labels) so that the copy into
numpy costs both sides the same. Used only by benchmarks/input_pipeline.py.
"""
from __future__ import annotations

import glob
import os

import numpy as np

AUTOTUNE = -1  # tf.data.AUTOTUNE


def _tf():
    from fluxseg.data._tf import tf  # TF kept off the accelerators, as in fluxseg
    return tf


def _to_uint8(x):
    tf = _tf()
    return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)


def random_resized_crop(root: str, batch: int, size=(224, 224), decode_only: bool = False):
    """ImageNet style: list_files, sample_distorted_bounding_box, decode_and_crop_jpeg, resize, flip.

    decode_only: stop after decode_and_crop_jpeg (one pixel of each box is
    kept, so the decode runs): the floor any pipeline of this recipe pays.
    """
    tf = _tf()
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    files = tf.data.Dataset.list_files(os.path.join(root, "*", "*.jpg"), shuffle=True, seed=0)
    table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(classes), tf.range(len(classes), dtype=tf.int32)), -1)

    def load(path):
        data = tf.io.read_file(path)
        shape = tf.image.extract_jpeg_shape(data)
        begin, box, _ = tf.image.sample_distorted_bounding_box(
            shape, bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), min_object_covered=0.0,
            aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.08, 1.0), max_attempts=10,
            use_image_if_no_bounding_boxes=True)
        y, x, _ = tf.unstack(begin)
        h, w, _ = tf.unstack(box)
        image = tf.image.decode_and_crop_jpeg(data, tf.stack([y, x, h, w]), channels=3)
        label = table.lookup(tf.strings.split(path, os.sep)[-2])
        if decode_only:
            return image[0, 0], label
        image = tf.image.random_flip_left_right(tf.image.resize(image, size))
        return _to_uint8(image), label

    ds = files.repeat().map(load, num_parallel_calls=AUTOTUNE)
    return ds.batch(batch, drop_remainder=True).prefetch(AUTOTUNE).as_numpy_iterator()


def voc_recipe(root: str, batch: int, crop=(320, 480), scale=(0.5, 2.0), jitter=0.2,
               ignore=255):
    """VOC style: decode JPEG + PNG, rescale both, pad, random crop, flip, colour jitter."""
    tf = _tf()
    images = sorted(glob.glob(os.path.join(root, "images", "*.jpg")))
    masks = [os.path.join(root, "masks", os.path.basename(p)[:-4] + ".png") for p in images]
    ch, cw = crop

    def load(image_path, mask_path):
        image = tf.io.decode_jpeg(tf.io.read_file(image_path), channels=3)
        mask = tf.io.decode_png(tf.io.read_file(mask_path), channels=1)
        s = tf.random.uniform([], *scale)
        hw = tf.cast(tf.cast(tf.shape(image)[:2], tf.float32) * s, tf.int32)
        image = tf.image.resize(image, hw)                       # float32, whole image
        mask = tf.image.resize(mask, hw, method="nearest")
        pad_h, pad_w = tf.maximum(ch - hw[0], 0), tf.maximum(cw - hw[1], 0)
        image = tf.pad(image, [[0, pad_h], [0, pad_w], [0, 0]])
        mask = tf.pad(mask, [[0, pad_h], [0, pad_w], [0, 0]], constant_values=ignore)
        both = tf.image.random_crop(tf.concat([image, tf.cast(mask, tf.float32)], -1), [ch, cw, 4])
        both = tf.image.random_flip_left_right(both)
        image, mask = both[..., :3], both[..., 3]
        # Same maths as fluxseg's jitter: brightness and contrast factors, saturation as a grey blend.
        image = image * tf.random.uniform([], 1 - jitter, 1 + jitter)
        image = tf.image.adjust_contrast(image, tf.random.uniform([], 1 - jitter, 1 + jitter))
        grey = tf.image.rgb_to_grayscale(image)
        image = grey + (image - grey) * tf.random.uniform([], 1 - jitter, 1 + jitter)
        return _to_uint8(image), tf.cast(mask, tf.int32)

    ds = tf.data.Dataset.from_tensor_slices((images, masks)).shuffle(len(images), seed=0)
    ds = ds.repeat().map(load, num_parallel_calls=AUTOTUNE)
    return ds.batch(batch, drop_remainder=True).prefetch(AUTOTUNE).as_numpy_iterator()


def isbi_recipe(manual_dir: str, batch: int, crop=572, margin=92, sigma=10.0, grid=3,
                w0=10.0, w_sigma=5.0):
    """The U-Net paper's recipe with scipy in tf.numpy_function: weight maps computed once per
    slice, elastic deformation (3x3 grid, bicubic, map_coordinates), mirrored context, crop, flip."""
    tf = _tf()
    from scipy import ndimage

    from fluxseg.data.isbi.builder import FILES, read_stack
    from fluxseg.data.weight_map import border_weights
    volume = read_stack(os.path.join(manual_dir, FILES[0]))
    labels = (read_stack(os.path.join(manual_dir, FILES[1])) > 0).astype(np.uint8)
    import inspect
    # ignore_index is a keyword since issue 24; the baseline checkout (PYTHONPATH) predates it.
    extra = {"ignore_index": 255} if "ignore_index" in inspect.signature(border_weights).parameters else {}
    weights = np.stack([border_weights(m, w0=w0, sigma=w_sigma, **extra) for m in labels])
    rng = np.random.default_rng(0)

    def deform(image, mask, weight):
        h, w = image.shape
        coarse = rng.normal(0, sigma, (2, grid, grid))
        field = [ndimage.zoom(c, (h / grid, w / grid), order=3) for c in coarse]
        yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        coords = [yy + field[0], xx + field[1]]
        out = [ndimage.map_coordinates(image.astype(np.float32), coords, order=1, mode="mirror"),
               ndimage.map_coordinates(mask, coords, order=0, mode="mirror"),
               ndimage.map_coordinates(weight, coords, order=1, mode="mirror")]
        out = [np.pad(x, margin, mode="reflect") for x in out]
        y, x = rng.integers(0, out[0].shape[0] - crop + 1), rng.integers(0, out[0].shape[1] - crop + 1)
        out = [o[y:y + crop, x:x + crop] for o in out]
        if rng.random() < 0.5:
            out = [o[:, ::-1] for o in out]
        return (np.clip(np.round(out[0]), 0, 255).astype(np.uint8)[..., None],
                out[1].astype(np.int32), out[2].astype(np.float32))

    def load(image, mask, weight):
        image, mask, weight = tf.numpy_function(deform, [image, mask, weight],
                                                [tf.uint8, tf.int32, tf.float32])
        return (tf.ensure_shape(image, [crop, crop, 1]), tf.ensure_shape(mask, [crop, crop]),
                tf.ensure_shape(weight, [crop, crop]))

    ds = tf.data.Dataset.from_tensor_slices((volume, labels, weights)).shuffle(len(volume), seed=0)
    ds = ds.repeat().map(load, num_parallel_calls=AUTOTUNE)
    return ds.batch(batch, drop_remainder=True).prefetch(AUTOTUNE).as_numpy_iterator()


def shapes_recipe(data_dir: str, batch: int):
    """The default experiment's data: tfds fluxseg_shapes, cached decoded, shuffled, flipped."""
    tf = _tf()
    import tensorflow_datasets as tfds
    ds = tfds.builder("fluxseg_shapes", data_dir=data_dir).as_dataset(split="train")

    def flip(ex):
        both = tf.concat([ex["image"], ex["segmentation_mask"]], -1)
        both = tf.image.random_flip_left_right(both)
        return both[..., :3], tf.cast(both[..., 3], tf.int32)

    ds = ds.cache().shuffle(2000, seed=0).repeat().map(flip, num_parallel_calls=AUTOTUNE)
    return ds.batch(batch, drop_remainder=True).prefetch(AUTOTUNE).as_numpy_iterator()
