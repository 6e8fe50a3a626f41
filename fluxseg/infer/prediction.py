"""Prediction at any image size: ``predict(restored, image)``, ``predict_batch``.

The model is compiled once per (tile shape, batch): it only ever sees
fixed-size batches of tiles. Everything that depends on the image size runs
on the host in numpy: mirror padding, cutting windows, and adding the tiles'
logits back together. So a validation set of many image sizes costs one
compilation, not one per size, and tiles of several images share batches,
which are split over all local devices.

Segmentation models are applied to tiles of the training crop size. Tiles
overlap (by a third for models whose output has the input's size, whose
tile borders lack context), and logits are averaged where they overlap before
the argmax (mmsegmentation's slide inference). Models whose output is
smaller than the input (the unpadded U-Net) get the overlap-tile strategy of
Ronneberger et al. (2015): the image is mirror-padded by the margin the
network eats, so each output pixel sees real or mirrored context; window
offsets are kept on multiples of the network's pooling stride so that
neighbouring output tiles join without seams. Images smaller than one tile
are mirror-padded up to it.

Classifiers get the whole image resized to the training size
(data.eval_mode='resize') or centre-cropped / zero-padded to it ('pad').

Test-time augmentation (tta='flip', scales=(0.75, 1, 1.25)) averages
probabilities over the augmented predictions, each resized back to the
image's size (mmsegmentation's aug test).
"""
from __future__ import annotations

import math
import weakref
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fluxseg import tasks
from fluxseg.infer.io import check_array
from fluxseg.runtime import backend

# Tiles (segmentation) or images (classification) per call of the compiled model,
# rounded up to a multiple of the local device count.
BATCH_SIZE = 8


def mirror_pad(image: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """Reflect-pads [H,W,C] (repeatedly when a pad exceeds the image side)."""
    out = image
    while top or bottom or left or right:
        h, w = out.shape[:2]
        t, b = min(top, h - 1), min(bottom, h - 1)
        l, r = min(left, w - 1), min(right, w - 1)
        if h == 1 or w == 1:  # nothing to reflect: repeat the edge
            t, b, l, r = top, bottom, left, right
            out = np.pad(out, ((t, b), (l, r), (0, 0)), mode="edge")
        else:
            out = np.pad(out, ((t, b), (l, r), (0, 0)), mode="reflect")
        top, bottom, left, right = top - t, bottom - b, left - l, right - r
    return out


def window_starts(size: int, out: int, stride: int) -> list[int]:
    """Top-left output offsets along one axis so that windows of ``out`` cover ``size``."""
    last = max(size - out, 0)
    starts = list(range(0, last + 1, max(stride, 1)))
    if starts[-1] != last:
        starts.append(last)
    return starts


class _Predictor:
    """One restored model on all local devices: ``run(tiles [N, h, w, C]) -> outputs [N, ...]``.

    The jitted function is traced once per (tile shape, batch); every call
    pads the last batch, so any number of tiles reuses that compilation.
    """

    def __init__(self, restored):
        from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

        self.model, self.preprocess = restored.model, restored.preprocess
        self.devices = jax.local_devices()
        mesh = Mesh(np.asarray(self.devices), ("batch",))
        self.batch_sharding = NamedSharding(mesh, P("batch"))
        replicated = NamedSharding(mesh, P())
        self.variables = jax.device_put(restored.variables, replicated)
        model, preprocess = self.model, self.preprocess

        def apply_tiles(variables, x):
            return model.apply(variables, preprocess(x), train=False).astype(jnp.float32)

        self.apply_tiles = backend.jit(apply_tiles, in_shardings=(replicated, self.batch_sharding),
                                          out_shardings=self.batch_sharding)
        self._shapes: dict = {}

    def batch(self, batch_size: int) -> int:
        n = len(self.devices)
        return max(n, -(-int(batch_size) // n) * n)

    def run(self, tiles: np.ndarray, batch_size: int) -> np.ndarray:
        bs = self.batch(batch_size)
        n = len(tiles)
        pending = []
        for s in range(0, n, bs):  # dispatch every batch before fetching any (async)
            chunk = tiles[s:s + bs]
            if len(chunk) < bs:
                chunk = np.concatenate([chunk, np.zeros((bs - len(chunk), *chunk.shape[1:]),
                                                        chunk.dtype)])
            x = jax.device_put(chunk, self.batch_sharding)
            pending.append(self.apply_tiles(self.variables, x))
        return np.concatenate([np.asarray(p) for p in pending])[:n]

    def output_shape(self, tile: tuple, channels: int) -> tuple:
        key = (tile, channels)
        if key not in self._shapes:
            x = jax.ShapeDtypeStruct((1, *tile, channels), jnp.float32)
            out = jax.eval_shape(lambda v, x: self.model.apply(v, x, train=False),
                                 self.variables, x)
            self._shapes[key] = tuple(out.shape[1:])
        return self._shapes[key]

    def alignment(self, tile: tuple, out: tuple, channels: int) -> tuple[int, int]:
        """Smallest input step (per axis) by which the output grows as much: the
        offsets at which the network computes the same function (its pooling
        stride for the unpadded U-Net; 1 for models whose output is input-sized)."""
        if tuple(out) == tuple(tile):
            return (1, 1)
        align = []
        for axis in (0, 1):
            found = 1
            for a in (1, 2, 4, 8, 16, 32, 64, 128):
                bigger = list(tile)
                bigger[axis] += a
                try:
                    shape = self.output_shape(tuple(bigger), channels)
                except Exception:  # noqa: BLE001  not a valid input size: try a larger step
                    continue
                if shape[axis] == out[axis] + a:
                    found = a
                    break
            align.append(found)
        return tuple(align)


# One compiled predictor per restored run, kept while the run object lives (the run
# itself is left as it is); rebuilt if its variables are replaced.
_PREDICTORS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _predictor(restored) -> _Predictor:
    p = _PREDICTORS.get(restored)
    if p is None or p.source is not restored.variables:
        p = _Predictor(restored)
        p.source = restored.variables
        _PREDICTORS[restored] = p
    return p


def input_channels(restored) -> int:
    """Channels the restored model takes (3 for RGB; 1 for a grayscale model), as the
    run's config records them (config.data.channels)."""
    channels = restored.config.data.channels
    if channels is None:
        raise ValueError("the run's config does not record its input channels "
                         "(config.data.channels); restore it with fluxseg.restore")
    return int(channels)


def output_size(restored, tile: Sequence[int], channels: int) -> tuple[int, int, int]:
    """(h, w, K) of the model's logits for one ``tile``-sized input (no compute)."""
    shape = _predictor(restored).output_shape(tuple(int(t) for t in tile), channels)
    if len(shape) != 3:
        raise ValueError(f"model output {shape} is not a [B,H,W,K] segmentation map")
    return shape


class _Plan:
    """Where the tiles of one image go: mirror-padded image, window offsets, region."""

    def __init__(self, image, tile, out, align, stride):
        H, W = image.shape[:2]
        (th, tw), (oh, ow) = tile, out
        mh, mw = (th - oh) // 2, (tw - ow) // 2
        if stride is None:
            # Input-sized outputs have poor context at tile borders: overlap by
            # a third. Overlap-tile (margins > 0) already has mirrored context.
            stride = (oh if mh else oh - oh // 3, ow if mw else ow - ow // 3)
        # Offsets on multiples of the alignment: strides rounded down to it, and
        # the covered region rounded up so that the last offset is one too.
        sh = max(align[0], int(stride[0]) // align[0] * align[0])
        sw = max(align[1], int(stride[1]) // align[1] * align[1])
        rh = oh + math.ceil(max(H - oh, 0) / align[0]) * align[0]
        rw = ow + math.ceil(max(W - ow, 0) / align[1]) * align[1]
        self.size, self.out, self.region = (H, W), (oh, ow), (rh, rw)
        self.starts = [(i, j) for i in window_starts(rh, oh, sh) for j in window_starts(rw, ow, sw)]
        self.padded = mirror_pad(image, mh, mh + rh - H, mw, mw + rw - W)
        self.tile = (th, tw)

    def windows(self) -> np.ndarray:
        th, tw = self.tile
        return np.stack([self.padded[i:i + th, j:j + tw] for i, j in self.starts])

    def assemble(self, logits: np.ndarray) -> np.ndarray:
        """Overlap-add of the tiles' logits [N, oh, ow, K] -> averaged [H, W, K]."""
        (oh, ow), (rh, rw) = self.out, self.region
        total = np.zeros((rh, rw, logits.shape[-1]), np.float32)
        count = np.zeros((rh, rw, 1), np.float32)
        for (i, j), piece in zip(self.starts, logits):
            total[i:i + oh, j:j + ow] += piece
            count[i:i + oh, j:j + ow] += 1.0
        H, W = self.size
        return total[:H, :W] / count[:H, :W]


def _tile(restored, tile) -> tuple[int, int]:
    return tuple(int(t) for t in (tile or restored.config.data.crop_size))


def _slide_many(restored, images, *, tile=None, stride=None, batch_size=BATCH_SIZE) -> list[np.ndarray]:
    """Averaged logits float32 [H, W, K] for each float32 image [H, W, C]; tiles of all
    images share batches."""
    p = _predictor(restored)
    tile = _tile(restored, tile)
    plans = []
    for image in images:
        out = output_size(restored, tile, image.shape[-1])
        oh, ow = out[:2]
        if oh > tile[0] or ow > tile[1] or (tile[0] - oh) % 2 or (tile[1] - ow) % 2:
            raise ValueError(f"tile {tile} gives a {oh}x{ow} output; tiles need an output no "
                             "larger than the input and centred in it; pass another tile=")
        align = p.alignment(tile, (oh, ow), image.shape[-1])
        plans.append(_Plan(image, tile, (oh, ow), align, stride))
    if not plans:
        return []
    logits = p.run(np.concatenate([pl.windows() for pl in plans]), batch_size)
    results, at = [], 0
    for pl in plans:
        n = len(pl.starts)
        results.append(pl.assemble(logits[at:at + n]))
        at += n
    return results


def predict_logits(restored, image, *, tile: Optional[Sequence[int]] = None,
                   stride: Optional[Sequence[int]] = None, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Averaged logits float32 [H, W, K] for one image [H, W, C] (or [H, W])."""
    image = check_array(image, "image", input_channels(restored))
    return _slide_many(restored, [image], tile=tile, stride=stride, batch_size=batch_size)[0]


def _probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis; a single logit (binary head) -> sigmoid."""
    logits = logits.astype(np.float32)
    if logits.shape[-1] == 1:
        return 1.0 / (1.0 + np.exp(-logits))
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def resize(x: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Bilinear resize of float32 [H, W, C] to size=(h, w), channel by channel (PIL)."""
    from PIL import Image

    h, w = int(size[0]), int(size[1])
    if x.shape[:2] == (h, w):
        return x
    chans = [np.asarray(Image.fromarray(np.ascontiguousarray(x[..., c], np.float32), mode="F")
                        .resize((w, h), Image.BILINEAR)) for c in range(x.shape[-1])]
    return np.stack(chans, axis=-1)


def _augmented(image, tta, scales):
    """(scale, flipped, image) for each augmentation."""
    if tta not in (None, "flip"):
        raise ValueError(f"tta={tta!r}; expected None or 'flip'")
    H, W = image.shape[:2]
    for s in scales:
        s = float(s)
        if s <= 0:
            raise ValueError(f"scales must be positive, got {tuple(scales)}")
        size = (max(1, round(H * s)), max(1, round(W * s)))
        scaled = resize(image, size)
        yield scaled, False
        if tta == "flip":
            yield scaled[:, ::-1], True


def _segment(restored, images, *, probs, tta, scales, **slide_kw):
    plain = tta is None and tuple(float(s) for s in scales) == (1.0,)
    if plain:
        logits = _slide_many(restored, images, **slide_kw)
        return [_probabilities(l) if probs else tasks.class_ids(l) for l in logits]
    jobs = [(k, aug, flipped) for k, image in enumerate(images)
            for aug, flipped in _augmented(image, tta, scales)]
    logits = _slide_many(restored, [np.ascontiguousarray(a) for _, a, _ in jobs], **slide_kw)
    sums = [None] * len(images)
    for (k, _, flipped), l in zip(jobs, logits):
        pr = _probabilities(l)
        if flipped:
            pr = pr[:, ::-1]
        pr = resize(np.ascontiguousarray(pr), images[k].shape[:2])
        sums[k] = pr if sums[k] is None else sums[k] + pr
    n = len(jobs) // max(len(images), 1)
    out = [s / n for s in sums]
    return out if probs else [tasks.class_ids_from_probs(p) for p in out]


def classifier_input(restored, image: np.ndarray) -> np.ndarray:
    """float32 [h, w, C] at the training size: resized (data.eval_mode='resize') or
    centre-cropped, zero-padded where the image is smaller ('pad')."""
    h, w = (int(v) for v in restored.config.data.crop_size)
    if restored.config.data.eval_mode == "resize":
        return resize(image, (h, w))
    H, W, C = image.shape
    out = np.zeros((h, w, C), np.float32)
    top, left = max((H - h) // 2, 0), max((W - w) // 2, 0)
    crop = image[top:top + h, left:left + w]
    pt, pl = (h - crop.shape[0]) // 2, (w - crop.shape[1]) // 2
    out[pt:pt + crop.shape[0], pl:pl + crop.shape[1]] = crop
    return out


def _classify(restored, images, *, probs, tta, batch_size):
    inputs = [classifier_input(restored, im) for im in images]
    if tta not in (None, "flip"):
        raise ValueError(f"tta={tta!r}; expected None or 'flip'")
    views = [inputs] + ([[x[:, ::-1] for x in inputs]] if tta == "flip" else [])
    mean = sum(_probabilities(_predictor(restored).run(np.stack(v), batch_size))
               for v in views) / len(views)
    if probs:
        return list(mean)
    return [int(k) for k in tasks.class_ids_from_probs(mean)]


def predict_batch(restored, images, *, probs: bool = False, tta: Optional[str] = None,
                  scales: Sequence[float] = (1.0,), names: Optional[Sequence[str]] = None,
                  tile: Optional[Sequence[int]] = None, stride: Optional[Sequence[int]] = None,
                  batch_size: int = BATCH_SIZE) -> list:
    """``predict`` for a list of images of any sizes; their tiles share batches.

    names: one label per image for error messages (default "image <i>").
    """
    channels = input_channels(restored)
    names = names or [f"image {i}" for i in range(len(images))]
    arrays = [check_array(im, n, channels) for im, n in zip(images, names)]
    if not arrays:
        return []
    if not tasks.kind(restored.config.data.task).dense:
        return _classify(restored, arrays, probs=probs, tta=tta, batch_size=batch_size)
    return _segment(restored, arrays, probs=probs, tta=tta, scales=scales, tile=tile,
                    stride=stride, batch_size=batch_size)


def predict(restored, image, *, probs: bool = False, tta: Optional[str] = None,
            scales: Sequence[float] = (1.0,), **kwargs):
    """Class ids (or probabilities) for one image of any size.

    image: uint8 [H, W, 3] (or [H, W], uint16, float in [0, 1] or [0, 255]:
    see fluxseg.infer.io for the conversions).
    Segmentation: int32 [H, W] mask at the image's own size (binary sigmoid
    heads give 0/1); probs=True: float32 [H, W, K] probabilities (K = 1:
    the foreground probability). Classification: the class id (int), or
    float32 [K] probabilities.
    tta='flip' adds the mirrored image; scales=(0.75, 1, 1.25) resizes the
    image by each factor; both average probabilities.
    kwargs: tile=(h, w) input tile (default the training crop), stride=(sh, sw)
    between output tiles, batch_size (tiles per device call, rounded up to a
    multiple of the local device count).
    """
    return predict_batch(restored, [image], probs=probs, tta=tta, scales=scales,
                         names=[kwargs.pop("name", "image")], **kwargs)[0]
