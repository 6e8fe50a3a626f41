"""tf.data input pipelines: exactly resumable training, exact evaluation.

Batches are dicts of numpy arrays for THIS process (b = global_batch_size //
process_count rows):
  image  uint8 [b, H, W, C]  (raw 0..255, C = data.channels or as stored;
                              the train step normalises on the accelerator
                              with fluxseg.weights.preprocess)
  weight float32 [b, H, W]   training only, with data.border_weight_w0 > 0:
                              the U-Net border weight map (fluxseg/data/recipe.py)
  mask   int32 [b, H, W]     class ids, ignore_index where unlabelled/padded
                              (task='segmentation')
  label  int32 [b]           class id (task='classification')
  valid  bool  [b]           eval only: False on padding rows (mask all
                              ignore_index, label -1)
With data.augment_on='device' a training batch holds what the device
finishes instead (fluxseg/data/train_crop.py): uint8 windows padded to a
bucket (scale + crop) or uint8 crops, uint8 masks, and each row's draw
(aug_ints int32 [b, 9], aug_floats float32 [b, 3]).

Training stream of process p (n = its examples, S = n // b steps an epoch):
  * epoch e is a permutation of p's shard seeded by (seed, p, e), and the
    last n - S*b examples of the permutation are dropped (a different few
    each epoch). When the shuffle buffer holds the whole shard (or
    data.cache), the records are read once and kept in memory, and every
    epoch is a full permutation of them, all epochs one tf.data pipeline;
    otherwise each epoch reads the files again in a seeded order, through a
    seeded shuffle buffer, as a pipeline of its own;
  * the element at stream position t = e*S*b + j (step t // b, row j) is
    augmented with the stateless seed (hash(seed, p), t);
  * step k is positions k*b .. k*b+b-1.
So resuming at step k builds epoch k // S directly (earlier epochs are never
replayed) and skips (k % S)*b records before any augmentation: the batches
are byte-identical to those of an uninterrupted run.
"""
from __future__ import annotations

import copy
import math
from typing import Iterator, Optional

import numpy as np
import tensorflow_datasets as tfds

from fluxseg import tasks
from fluxseg.data import config as config_lib
from fluxseg.data import decode, recipe, sources, train_crop
from fluxseg.data import transforms as T
from fluxseg.data._tf import pipeline_options, tf


# data.cache keeps a split decoded when its images have a fixed size and
# the decoded split fits in this much memory (else the encoded records): the
# default run's 2,000 64x64 examples take 32 MB, and decoding each epoch
# again cost 1.5 of the pipeline's 3.1 ms of CPU a batch (benchmarks/README.md).
DECODED_CACHE_BYTES = 1 << 30
_DECODED = "_fluxseg_decoded"


def _mix(*ints: int) -> int:
    """A well-spread 32-bit seed from several non-negative ints."""
    return int(np.random.SeedSequence([int(i) for i in ints]).generate_state(1)[0])


def _processes(process_index, process_count) -> tuple[int, int]:
    if process_index is None or process_count is None:
        import jax  # only when the caller did not say; keeps tests JAX-free
        process_index = jax.process_index() if process_index is None else process_index
        process_count = jax.process_count() if process_count is None else process_count
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index={process_index} must be in [0, {process_count})")
    return int(process_index), int(process_count)


def _local_batch(global_batch_size: int, process_count: int) -> int:
    if global_batch_size <= 0 or global_batch_size % process_count:
        raise ValueError(
            f"global_batch_size={global_batch_size} must be a positive multiple of "
            f"the process count {process_count} (each process loads "
            f"global_batch_size // {process_count} examples); use e.g. "
            f"{max(1, round(global_batch_size / process_count)) * process_count}")
    return global_batch_size // process_count


class _Reader:
    """Reads one split of the dataset and decodes the features a task needs."""

    def __init__(self, cfg, builder):
        self.cfg, self.builder = cfg, builder
        self.task = tasks.kind(cfg.task)
        target = cfg.mask_key if self.task.dense else cfg.label_key
        self.keys = (cfg.image_key, target)
        features = builder.info.features
        # Keep images encoded through shuffling and skipping: the shuffle
        # buffer then holds compressed bytes and skipped records cost no decode.
        self.decoders = {k: tfds.decode.SkipDecoding() for k in self.keys
                         if isinstance(features[k], tfds.features.Image)}
        self.channels = sources.channels(cfg, builder)

    def records(self, split, *, shuffle_seed=None) -> tf.data.Dataset:
        read_config = tfds.ReadConfig(shuffle_seed=shuffle_seed, try_autocache=False)
        ds = self.builder.as_dataset(
            split=split, shuffle_files=shuffle_seed is not None,
            decoders=self.decoders, read_config=read_config)
        return ds.map(lambda ex: {k: ex[k] for k in self.keys})

    def decode(self, ex):
        """-> image uint8 [H, W, C], mask uint8 [H, W, 1] or None, label int32 or None."""
        if _DECODED in ex:  # decoded once before the cache (decoded_bytes)
            d = ex[_DECODED]
            return d["image"], d.get("mask"), d.get("label")
        cfg = self.cfg
        image = self.to_channels(self._feature(ex, cfg.image_key))
        if not self.task.dense:
            return image, None, tf.cast(ex[cfg.label_key], tf.int32)
        return image, self._mask(ex), None

    def _feature(self, ex, key):
        features = self.builder.info.features
        return features[key].decode_example(ex[key]) if key in self.decoders else ex[key]

    def to_channels(self, image):
        return T.to_channels(image, self.channels)

    def _mask(self, ex):
        """uint8 [H, W, 1] class ids of the record's mask (mask_map and binary applied)."""
        cfg = self.cfg
        mask = tf.cast(self._feature(ex, cfg.mask_key), tf.uint8)
        if mask.shape.rank == 2:
            mask = mask[..., None]
        if cfg.mask_map:  # stored value v -> class mask_map[v] (e.g. pets' trimaps)
            mask = T.map_mask_values(mask, cfg.mask_map, cfg.name)
        if cfg.binary:
            ignore = tf.constant(cfg.ignore_index, tf.uint8)
            mask = tf.where(mask == ignore, ignore, tf.cast(mask > 0, tf.uint8))
        return mask

    def decoded_parts(self, ex) -> Optional[dict]:
        """What `decoded` cached ({'image', 'mask' or 'label'}), or None for an encoded record."""
        return ex.get(_DECODED)

    def mask_and_weight(self, ex):
        """(mask uint8 [H, W, 1], border weight float32 [H, W, 1] or None) of a record."""
        parts = self.decoded_parts(ex)
        mask = parts["mask"] if parts is not None else self._mask(ex)
        weight = ex.get("weight")
        if weight is None and self.cfg.border_weight_w0 > 0:
            weight = recipe.weights(mask, self.cfg)
        return mask, weight

    def decoded(self, ex) -> dict:
        """The record with its features decoded (what `decode` returns), for the cache."""
        image, mask, label = self.decode(ex)
        parts = {"image": image, "mask": mask, "label": label}
        return {_DECODED: {k: v for k, v in parts.items() if v is not None}}

    def decoded_bytes(self, num_examples: int) -> Optional[int]:
        """Memory the decoded split takes, or None if its images vary in size."""
        features, cfg = self.builder.info.features, self.cfg
        image = features[cfg.image_key]
        h, w = image.shape[:2]
        if h is None or w is None:
            return None
        per_example = h * w * self.channels * np.dtype(getattr(image, "np_dtype", np.uint8)).itemsize
        if self.task.dense:
            if tuple(features[cfg.mask_key].shape[:2]) != (h, w):
                return None
            per_example += h * w  # decode casts the mask to uint8
        else:
            per_example += 4      # the int32 label
        return per_example * num_examples

    def label(self, ex):
        """int32 class id of a classification record."""
        parts = self.decoded_parts(ex)
        return parts["label"] if parts is not None else tf.cast(ex[self.cfg.label_key], tf.int32)

    def output(self, image, mask, label) -> dict:
        target = tf.cast(mask[..., 0], tf.int32) if self.task.dense else label
        return {"image": image, self.task.target_key: target}

    def padding_target(self, size) -> tf.Tensor:
        """The target of an eval padding row: a mask of ignore_index, or label -1."""
        if self.task.dense:
            return tf.fill(size, tf.constant(self.cfg.ignore_index, tf.int32))
        return tf.constant(-1, tf.int32)


def _num_examples(builder, split, name: str) -> int:
    try:
        return builder.info.splits[split].num_examples
    except (KeyError, ValueError) as e:
        raise ValueError(f"{name!r} has splits {sorted(builder.info.splits)}; "
                         f"cannot read split {str(split)!r}: {e}") from None


def _check_crop(cfg, builder) -> None:
    shape = builder.info.features[cfg.image_key].shape
    if None in shape[:2]:
        return
    margin = int(cfg.mirror_margin)
    if margin and margin >= min(shape[:2]):
        raise ValueError(f"data.mirror_margin={margin} must be smaller than the {cfg.name} "
                         f"images ({shape[0]}x{shape[1]}): the context is their mirror image")
    h, w = shape[0] + 2 * margin, shape[1] + 2 * margin  # mirrored context counts as image
    ch, cw = config_lib.crop_size(cfg)
    top = float(cfg.scale_range[1])
    if ch > h * top or cw > w * top:
        raise ValueError(
            f"data.crop_size={(ch, cw)} is larger than the {cfg.name} images "
            f"({h}x{w}) even at the largest scale x{top:g} of data.scale_range, so "
            f"every crop would be partly padding; use crop_size <= "
            f"{(int(h * top), int(w * top))} or raise data.scale_range")


def train_iterator(data_cfg, *, global_batch_size: int, seed: int, start_step: int = 0,
                   process_index: Optional[int] = None,
                   process_count: Optional[int] = None) -> Iterator[dict]:
    """Infinite iterator of this process's training batches, from `start_step`.

    Yields {'image': uint8 [b, crop_H, crop_W, 3], 'mask': int32 [b, crop_H,
    crop_W]} (segmentation) or {'image', 'label': int32 [b]} (classification),
    b = global_batch_size // process_count. Batch k is a pure function of
    (data_cfg, global_batch_size, seed, process_index, process_count, k), so
    start_step=k continues an interrupted run exactly. Processes read
    disjoint, equal shards of the split (the few examples left over by an
    uneven division are never used).
    """
    data_cfg = copy.deepcopy(data_cfg)  # later edits by the caller must not change the stream
    config_lib.check(data_cfg)
    if seed < 0 or start_step < 0:
        raise ValueError(f"seed={seed} and start_step={start_step} must be >= 0")
    pi, pc = _processes(process_index, process_count)
    b = _local_batch(global_batch_size, pc)
    builder = sources.load_builder(data_cfg)
    sources.check_features(data_cfg, builder)
    _check_crop(data_cfg, builder)
    split = tfds.split_for_jax_process(
        data_cfg.train_split, process_index=pi, process_count=pc, drop_remainder=True)
    n = _num_examples(builder, split, data_cfg.name)
    steps_per_epoch = n // b
    if steps_per_epoch == 0:
        raise ValueError(
            f"split {data_cfg.train_split!r} gives process {pi} only {n} examples, "
            f"fewer than its batch of {b}; use a smaller global_batch_size")
    reader = _Reader(data_cfg, builder)
    aug_seed = _mix(seed, pi, 1)
    elements = _elements(data_cfg, reader, aug_seed)
    first_epoch, first_step = divmod(start_step, steps_per_epoch)
    kept = _kept_records(data_cfg, reader, split, n)
    if kept is not None:
        stream = _one_pipeline(kept, elements, data_cfg, seed=seed, process_index=pi, n=n, b=b,
                               first_epoch=first_epoch, skip=first_step * b)
        return _named_errors(stream.as_numpy_iterator(), builder)
    buffer = min(int(data_cfg.shuffle_buffer), n)

    def epoch_batches(epoch: int, skip: int) -> tf.data.Dataset:
        epoch_seed = _mix(seed, pi, 0, epoch)
        ds = reader.records(split, shuffle_seed=epoch_seed)
        if buffer > 1:
            ds = ds.shuffle(buffer, seed=epoch_seed, reshuffle_each_iteration=False)
        ds = ds.take(steps_per_epoch * b).enumerate(start=epoch * steps_per_epoch * b)
        ds = elements(ds.skip(skip))
        ds = ds.batch(b, drop_remainder=True).prefetch(data_cfg.prefetch)
        return ds.with_options(pipeline_options())

    def generate():
        # A split larger than the shuffle buffer: each epoch is its own pipeline
        # (tfds shuffles the file order with a Python seed), rebuilt once per
        # `n` examples, rarely enough not to matter.
        epoch, step = first_epoch, first_step
        while True:
            yield from _named_errors(epoch_batches(epoch, step * b).as_numpy_iterator(), builder)
            epoch, step = epoch + 1, 0

    return generate()


def _kept_records(data_cfg, reader, split, n: int) -> Optional[tf.data.Dataset]:
    """The shard's records held in memory across epochs, or None to read them each epoch.

    data.cache=True asks for it (decoded when that fits, with the U-Net weight
    maps). Without it the records are still kept, encoded, when the shuffle
    buffer is as large as the shard: the buffer then holds every record at the
    start of each epoch anyway, and reading them into fresh memory again cost
    0.4 s of CPU per epoch of a 2,048-image ImageNet-like folder, a fifth of
    the epoch's work (benchmarks/README.md, input pipeline, "What changed").
    """
    if data_cfg.cache:
        records = reader.records(split)
        size = reader.decoded_bytes(n)
        if size is not None and size <= DECODED_CACHE_BYTES:
            # Decoding is deterministic: the cache then holds what every epoch decoded anew.
            records = records.map(reader.decoded, num_parallel_calls=data_cfg.num_parallel_calls)
        # The U-Net weight map depends on the stored mask only: computed once, cached.
        return recipe.with_weights(records, reader, data_cfg).cache()
    if int(data_cfg.shuffle_buffer) >= n:
        return reader.records(split).cache()
    return None


def _one_pipeline(kept, elements, data_cfg, *, seed: int, process_index: int, n: int, b: int,
                  first_epoch: int, skip: int) -> tf.data.Dataset:
    """Batches of every epoch from `first_epoch` on, as ONE tf.data pipeline over `kept`.

    Epoch e is a full permutation of the n kept records seeded by
    _mix(seed, process, 0, e), its first (n // b) * b taken. One pipeline, not
    one per epoch: the element function is traced once, and prefetching runs
    on across an epoch's end instead of stalling the training loop while a
    new pipeline is built and its buffer refilled.
    """
    per_epoch = (n // b) * b

    def epoch_seed(epoch):
        return np.int64(_mix(seed, process_index, 0, int(epoch)))

    def epoch_records(epoch):
        s = tf.numpy_function(epoch_seed, [epoch], tf.int64, stateful=False)
        return kept.shuffle(n, seed=s, reshuffle_each_iteration=False).take(per_epoch)

    ds = tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max).flat_map(epoch_records)
    ds = ds.enumerate(start=first_epoch * per_epoch).skip(skip)
    ds = elements(ds).batch(b, drop_remainder=True).prefetch(data_cfg.prefetch)
    return ds.with_options(pipeline_options())


def _elements(data_cfg, reader, aug_seed: int):
    """(position, record) dataset -> training elements: the short path of
    fluxseg.data.train_crop, or the U-Net recipe (mirrored context, elastic
    deformation) of fluxseg.data.recipe, each element seeded by its position."""
    npc = data_cfg.num_parallel_calls
    if train_crop.applies(data_cfg):
        mode = config_lib.augment_on(data_cfg)
        bucket = None
        if mode == "device" and config_lib.crop_kind(data_cfg, reader.task.dense) == "resample":
            largest = decode.largest(reader.builder, data_cfg.train_split, data_cfg.image_key)
            bucket = train_crop.bucket(data_cfg, largest)
        element = train_crop.Element(data_cfg, reader, mode, bucket, aug_seed)
        return lambda ds: element.apply(ds, npc)

    def example(position, ex):
        image, mask, label = reader.decode(ex)
        image, mask, weight = recipe.train_transform(
            image, mask, T.element_seed(aug_seed, position), data_cfg, ex.get("weight"))
        out = reader.output(image, mask, label)
        if weight is not None:
            out["weight"] = weight[..., 0]  # float32 per-pixel loss weight
        return out
    return lambda ds: ds.map(example, num_parallel_calls=npc)


def _named_errors(batches, builder):
    """Re-raises a decode failure inside tf.data with the dataset it came from."""
    try:
        yield from batches
    except Exception as e:  # not BaseException: a closed generator's GeneratorExit passes
        if not (isinstance(e, tf.errors.InvalidArgumentError) and any(
                w in e.message.lower() for w in ("jpeg", "png", "decode", "image"))):
            raise
        raise ValueError(
            f"a training record of {builder.name} ({builder.data_dir}) could not be decoded: "
            f"{e.message.splitlines()[0]}. The prepared files are damaged or were changed "
            f"after preparation: delete {builder.data_dir} and prepare the dataset again "
            "(folder datasets name the bad file when they are prepared).") from e


class EvalBatches:
    """A finite iterator of eval batches; len() = batches on every process."""

    def __init__(self, iterator, length: int, num_examples: int):
        self._it, self._len, self.num_examples = iterator, length, num_examples

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        return next(self._it)

    def __len__(self) -> int:
        return self._len


def eval_iterator(data_cfg, split: str, *, global_batch_size: int,
                  process_index: Optional[int] = None,
                  process_count: Optional[int] = None) -> EvalBatches:
    """Every example of `split` exactly once over all processes, in file order.

    Yields {'image': uint8 [b, H, W, 3], 'mask': int32 [b, H, W] or 'label':
    int32 [b], 'valid': bool [b]}, (H, W) = data.eval_size (default: see
    fluxseg/data/config.py). eval_mode='pad' keeps each image's pixels and pads
    bottom/right (mask ignore_index); 'resize' resamples to (H, W). Rows past
    the end are padding: valid False, mask all ignore_index, label -1, image
    0. All processes yield the same number of batches, len(iterator); the
    iterator's num_examples is the split size.
    """
    data_cfg = copy.deepcopy(data_cfg)
    config_lib.check(data_cfg)
    pi, pc = _processes(process_index, process_count)
    b = _local_batch(global_batch_size, pc)
    builder = sources.load_builder(data_cfg)
    sources.check_features(data_cfg, builder)
    shards = [tfds.split_for_jax_process(split, process_index=i, process_count=pc)
              for i in range(pc)]
    counts = [_num_examples(builder, s, data_cfg.name) for s in shards]
    num_batches = math.ceil(max(counts) / b)
    size = _eval_size(data_cfg, builder, split)
    shape = builder.info.features[data_cfg.image_key].shape
    if data_cfg.eval_mode == "pad" and None not in shape[:2] and (
            shape[0] > size[0] or shape[1] > size[1]):
        raise ValueError(
            f"{data_cfg.name} images are {shape[0]}x{shape[1]}, larger than "
            f"data.eval_size={size} (eval_mode='pad' never shrinks images); set "
            f"data.eval_size >= {tuple(shape[:2])} or data.eval_mode='resize'")
    reader = _Reader(data_cfg, builder)
    ignore = data_cfg.ignore_index

    def example(ex):
        image, mask, label = reader.decode(ex)
        if data_cfg.eval_mode == "pad":
            image, mask = T.pad_to(image, mask, size, ignore)
        else:
            image, mask = T.resize_to(image, mask, size)
        return {**reader.output(image, mask, label), "valid": tf.constant(True)}

    padding = {"image": tf.zeros((*size, reader.channels), tf.uint8), "valid": tf.constant(False),
               reader.task.target_key: reader.padding_target(size)}
    ds = reader.records(shards[pi]).map(example, num_parallel_calls=data_cfg.num_parallel_calls)
    ds = ds.concatenate(tf.data.Dataset.from_tensors(padding).repeat(num_batches * b - counts[pi]))
    ds = ds.batch(b, drop_remainder=True).prefetch(data_cfg.prefetch).with_options(pipeline_options())
    return EvalBatches(ds.as_numpy_iterator(), num_batches, sum(counts))


def _eval_size(data_cfg, builder, split) -> tuple[int, int]:
    """data.eval_size, else (pad mode) the larger of the crop and the split's largest image."""
    size = config_lib.eval_size(data_cfg)
    if data_cfg.eval_size is not None or data_cfg.eval_mode != "pad":
        return size
    largest = decode.largest(builder, split, data_cfg.image_key)
    return size if largest is None else (max(size[0], largest[0]), max(size[1], largest[1]))


def full_size_iterator(data_cfg, split: str, *, process_index: Optional[int] = None,
                       process_count: Optional[int] = None) -> EvalBatches:
    """This process's share of `split`, one example at a time, at its own size.

    Yields {'image': uint8 [H, W, 3], 'mask': int32 [H, W]} (segmentation) or
    {'image', 'label': int32} (classification): no crop, resize, pad or
    batching, so shapes vary. Processes read disjoint shards that together
    hold every example once; len() is this process's count, num_examples the
    split's. For whole-image evaluation (fluxseg.evaluate).
    """
    data_cfg = copy.deepcopy(data_cfg)
    config_lib.check(data_cfg)
    pi, pc = _processes(process_index, process_count)
    builder = sources.load_builder(data_cfg)
    sources.check_features(data_cfg, builder)
    shards = [tfds.split_for_jax_process(split, process_index=i, process_count=pc)
              for i in range(pc)]
    counts = [_num_examples(builder, s, data_cfg.name) for s in shards]
    reader = _Reader(data_cfg, builder)
    ds = reader.records(shards[pi]).map(lambda ex: reader.output(*reader.decode(ex)),
                                        num_parallel_calls=data_cfg.num_parallel_calls)
    ds = ds.prefetch(data_cfg.prefetch).with_options(pipeline_options())
    return EvalBatches(ds.as_numpy_iterator(), counts[pi], sum(counts))
