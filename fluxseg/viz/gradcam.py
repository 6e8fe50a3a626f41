"""Grad-CAM (Selvaraju et al. 2017) for every model of the zoo, classifiers and segmenters.

For a score y (a class logit, taken before any softmax as in the paper; the
book's recipe differentiates the softmax probability) and a layer's feature
maps A^k [h, w], the channel weights are the spatial mean of the gradient,
w_k = mean_ij dy/dA^k_ij, and the map is sum_k w_k A^k, then ReLU. On a
conv -> global-average-pool -> dense network this is the CAM of Zhou et al.
2016 divided by h * w (Grad-CAM §3.1).

The gradient at a tapped layer comes from an additive zero perturbation of
that tap (see `fluxseg.models.layers.tap`), so nothing about the model has
to be split or rewritten. Means are per image: averaging the gradient over
the batch axis as well (as recipes written for one image do) would mix the
images of a batch. An image whose gradient at the layer is exactly zero gets a
warning that says why its map is flat.
"""
from __future__ import annotations

import warnings
from typing import Callable, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from fluxseg import models
from fluxseg.runtime import backend
from fluxseg.viz._cache import cached

Target = Union[None, int, Sequence[int], Callable]


def _perturbation(layer: str, like) -> dict:
    return traverse_util.unflatten_dict({tuple(layer.split("/")): jnp.zeros(like.shape, like.dtype)})


def _check_layer(model, variables, x, layer: str):
    out, taps = jax.eval_shape(lambda v, x: models.features(model, v, x), variables, x)
    if layer not in taps:
        spatial = [n for n, t in taps.items() if len(t.shape) == 4]
        raise KeyError(f"no layer {layer!r} in {type(model).__name__}; layers with feature maps: {', '.join(spatial)}")
    if len(taps[layer].shape) != 4:
        raise ValueError(f"layer {layer!r} has shape {taps[layer].shape}; Grad-CAM needs a feature map [B, h, w, C]")
    return out, taps[layer]


def _score_fn(targets: Target, out_shape, batch: int):
    """-> (static key, fn(logits, ids) -> [B] scores, ids array or None)."""
    if isinstance(targets, SegmentationTarget):
        targets._check(jax.ShapeDtypeStruct(out_shape, jnp.float32))
        key = ("segmentation", targets.region is None, None if targets.region is None else targets.region.shape)
        args = (jnp.int32(targets.class_id), None if targets.region is None else jnp.asarray(targets.region))
        return key, lambda logits, a: SegmentationTarget.score(logits, *a), args
    if callable(targets):
        return ("fn", targets), lambda logits, ids: targets(logits), None
    if len(out_shape) != 2:
        raise ValueError(
            f"the model's output has shape {tuple(out_shape)} (a segmentation map); class-index targets need "
            f"[B, classes] logits. Pass targets=fluxseg.viz.segmentation_target(class_id) instead"
        )
    n_classes = out_shape[-1]
    if targets is None:
        return ("top",), lambda logits, ids: jnp.max(logits, axis=-1), None
    ids = np.asarray(targets)
    if ids.ndim == 0:
        ids = np.full((batch,), int(ids))
    elif ids.ndim != 1 or len(ids) != batch:
        raise ValueError(f"targets has {ids.size} entries for a batch of {batch} images; give one class per image, or one int for all")
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"targets must be integer class indices, got dtype {ids.dtype}")
    if ids.min() < 0 or ids.max() >= n_classes:
        raise ValueError(f"target classes must be in [0, {n_classes}), got {ids.tolist()}")

    def pick(logits, ids):
        return jnp.take_along_axis(logits, ids[:, None], axis=-1)[:, 0]

    return ("ids",), pick, jnp.asarray(ids, jnp.int32)


def _raw_fn(model, layer: str, score):
    def scores_of(pert, variables, x, ids):
        out, state = model.apply({**variables, "perturbations": pert}, x, train=False, mutable=["intermediates"])
        flat = {"/".join(k): v for k, v in traverse_util.flatten_dict(state["intermediates"]).items()}
        s = score(out, ids)
        if s.shape != (x.shape[0],):
            raise ValueError(f"the target function must return one score per image, shape ({x.shape[0]},), got {s.shape}")
        # Images are independent (inference mode), so the gradient of the sum
        # gives each image the gradient of its own score.
        return jnp.sum(s), (flat[layer], s)

    def raw(variables, x, ids, pert):
        grads, (acts, s) = jax.grad(scores_of, has_aux=True)(pert, variables, x, ids)
        g = traverse_util.flatten_dict(grads)[tuple(layer.split("/"))]
        weights = jnp.mean(g, axis=(1, 2))  # [B, C]: per image, never over the batch
        cam = jnp.einsum("bhwc,bc->bhw", acts, weights, precision=jax.lax.Precision.HIGHEST)
        return cam, s, jnp.any(g != 0, axis=(1, 2, 3))

    return raw


def gradcam(model, variables, x, layer: str, targets: Target = None, *, relu: bool = True, normalize: bool = True, size: Optional[tuple[int, int]] = None, return_scores: bool = False):
    """Grad-CAM maps, float32 [B, h, w] (or [B, H, W] with `size=(H, W)`).

    x: preprocessed images [B, H, W, C]. layer: a tap name with a feature map,
      e.g. 'block5_conv3' (vgg16), 'layer4' (resnet*), 'backbone/layer4'
      (fcn_resnet18), 'encoder/conv5_block3_out' (unet_resnet50).
    targets: None (each image's top class), an int (that class for every
      image), one int per image (any other length is an error), or a
      function logits -> [B] scores (e.g. `segmentation_target`). Scores are
      logits, before any softmax or sigmoid.
    relu=False, normalize=False, size=None give the raw signed map
      sum_k w_k A^k at the layer's resolution. normalize divides each map by
      its largest absolute value (an all-zero map stays zero).
    size: (H, W) bilinear upsampling (half-pixel centres) to the image.
    return_scores: also return the [B] target scores.
    The result is a jax array on the model's device and is differentiable.
    """
    if x.ndim != 4:
        raise ValueError(f"expected a batch of images [B, H, W, C], got shape {tuple(x.shape)}; add a batch axis with x[None]")
    # Tracing the model for its shapes costs as much as a small forward pass: once per input shape.
    shapes = cached(model, ("gradcam_shapes", layer, tuple(x.shape), str(x.dtype)), lambda: _check_layer(model, variables, x, layer))
    out, acts = shapes
    key, score, ids = _score_fn(targets, out.shape, x.shape[0])
    raw = cached(model, ("gradcam", layer, key), lambda: backend.jit(_raw_fn(model, layer, score)))
    cam, scores, flows = raw(variables, x, ids, _perturbation(layer, acts))
    if not isinstance(flows, jax.core.Tracer) and not bool(np.all(np.asarray(flows))):
        warnings.warn(_zero_gradient_message(layer, np.flatnonzero(~np.asarray(flows)).tolist()), stacklevel=2)
    cam = postprocess(cam, relu=relu, normalize=normalize, size=size)
    return (cam, scores) if return_scores else cam


def _zero_gradient_message(layer: str, images: list) -> str:
    """Why a Grad-CAM map is flat: the target score's gradient at ``layer`` is exactly zero."""
    return (
        f"the gradient of the target score at {layer!r} is exactly zero for image(s) {images}, so their "
        f"Grad-CAM maps are zero, not a finding about the image: the score does not depend on this layer "
        f"there. A dead layer above it (every unit behind a ReLU off), a segmentation_target region with no "
        f"pixels, or a target the layer cannot reach (a score from another branch of the model, or one that "
        f"ignores the logits) does this. Pick another layer or target."
    )


def postprocess(cam, *, relu: bool = True, normalize: bool = True, size: Optional[tuple[int, int]] = None):
    """ReLU, per-map division by the largest |value|, bilinear resize to `size`; cam [B, h, w]."""
    if relu:
        cam = jnp.maximum(cam, 0.0)
    if normalize:
        peak = jnp.max(jnp.abs(cam), axis=(1, 2), keepdims=True)
        cam = jnp.where(peak > 0, cam / jnp.where(peak > 0, peak, 1.0), 0.0)
    if size is not None:
        cam = upsample(cam, size)
    return cam.astype(jnp.float32)


def upsample(cam, size: tuple[int, int]):
    """[B, h, w] -> [B, H, W], bilinear with half-pixel centres: cell (i, j) covers image rows i*H/h ... (i+1)*H/h."""
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be (H, W) with positive ints, got {size}")
    return jax.image.resize(cam, (cam.shape[0], int(size[0]), int(size[1])), "bilinear", antialias=False)


class SegmentationTarget:
    """Grad-CAM score for a segmentation model: class `class_id`'s logits summed over a region.

    Calling it on logits [B, H, W, K] gives the [B] scores. `gradcam` passes
    the class and the mask as traced arguments, so new classes or regions
    reuse one compiled function.
    """

    def __init__(self, class_id: int, region=None):
        self.class_id = int(class_id)
        self.region = None if region is None else np.asarray(region, bool)

    def _check(self, logits):
        if logits.ndim != 4:
            raise ValueError(f"segmentation_target needs logits [B, H, W, K], got shape {logits.shape}; for a classifier pass an int target")
        if not 0 <= self.class_id < logits.shape[-1]:
            raise ValueError(f"class_id {self.class_id} is outside the model's {logits.shape[-1]} classes")
        if self.region is not None and self.region.shape[-2:] != tuple(logits.shape[1:3]):
            raise ValueError(f"region has shape {self.region.shape}; it must match the output's {tuple(logits.shape[1:3])} (one bool per output pixel)")

    @staticmethod
    def score(logits, class_id, region):
        if region is None:
            # The model's own prediction picks the pixels; the mask carries no gradient.
            region = jax.lax.stop_gradient(jnp.argmax(logits, axis=-1) == class_id)
        region = jnp.broadcast_to(region, logits.shape[:3])
        picked = jnp.take(logits, class_id, axis=-1)
        return jnp.sum(jnp.where(region, picked, 0.0), axis=(1, 2))

    def __call__(self, logits):
        self._check(logits)
        return self.score(logits, self.class_id, None if self.region is None else jnp.asarray(self.region))


def segmentation_target(class_id: int, region=None) -> SegmentationTarget:
    """Score for Grad-CAM on a segmentation model (unet, unet_resnet50, fcn_*): logits of
    `class_id` summed over `region`, a boolean mask [H, W] or [B, H, W] at the output's
    resolution; None means the pixels the model predicts as `class_id` (an image with no
    such pixel gets score 0 and a zero map, with a warning)."""
    return SegmentationTarget(class_id, region)
