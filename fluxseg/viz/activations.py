"""Intermediate activations by layer name (Chollet, DLwP 1st ed. §5.4.1)."""
from __future__ import annotations

from typing import Optional, Sequence

import jax

from fluxseg import models
from fluxseg.runtime import backend
from fluxseg.viz._cache import cached


def spatial_layers(model, variables, x) -> list[str]:
    """Names of every tapped feature map with spatial extent ([B, h, w, C]), in forward order.

    These are the convolution (after its ReLU, as Keras reports a
    `Conv2D(activation='relu')`) and pooling outputs; dense layers and class
    scores of classifiers are left out. Shapes are traced, nothing is computed.
    """
    order: list[str] = []

    def trace(v, x):
        _, taps = models.features(model, v, x)
        # Recorded while tracing: the returned dict comes back key-sorted.
        order.extend(name for name, t in taps.items() if t.ndim == 4)
        return taps

    jax.eval_shape(trace, variables, x)
    return order


def activations(model, variables, x, layers: Optional[Sequence[str]] = None) -> dict:
    """Runs `model` on x [B, H, W, C] and returns {name: [B, h, w, C_l]} in forward order.

    layers: tap names (see `fluxseg.models.features`); None means every conv
    and pool output (`spatial_layers`). For `cnn_small` these are the eight
    layers of DLwP listing 5.25: conv2d, max_pooling2d, conv2d_1, ...
    Unknown names raise a KeyError listing the available ones.
    """
    if x.ndim != 4:
        raise ValueError(f"expected a batch of images [B, H, W, C], got shape {tuple(x.shape)}; add a batch axis with x[None]")
    if isinstance(layers, str):
        raise TypeError(f"layers must be a list of names, got the string {layers!r}; pass [{layers!r}]")
    if layers is None:
        layers = cached(model, ("spatial_layers", tuple(x.shape)), lambda: spatial_layers(model, variables, x))
    names = tuple(layers)

    def build():
        return backend.jit(lambda v, x: models.features(model, v, x, names)[1])

    taps = cached(model, ("activations", names), build)(variables, x)
    return {n: taps[n] for n in names}
