"""Pooling and upsampling demonstrations.

- Max pooling condenses a feature map and makes it invariant to small
  shifts: a shape moved by less than a pooling window can vanish into the
  same pooled map, while a move by the stride moves the pooled map by one
  cell (the Kaggle "Computer Vision" course, lesson 3; Goodfellow et al.,
  Deep Learning §9.3).
- Global average pooling turns a backbone's [h, w, C] maps into C numbers,
  one "how much of feature k is here" score each (Lin et al. 2014).
- A transposed convolution (k=4, s=2, p=1) with the bilinear kernel doubles
  an image and looks like it (d2l.ai §13.10-13.11); and the transposed
  convolution of [[1, 2], [3, 4]] with a 1x1 kernel 1, bias 1, stride 2.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from fluxseg.models import layers


def tf_same_pads(n: int, window: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding of one axis: out = ceil(n / stride), the extra pixel goes at the end."""
    out = -(-n // stride)
    total = max((out - 1) * stride + window - n, 0)
    return total // 2, total - total // 2


def max_pool(x, window: int = 2, stride: int = 2, padding: str = "SAME"):
    """`tf.nn.pool(x, (window, window), 'MAX', strides=(stride, stride), padding=padding)` on [B, H, W, C] or [H, W]."""
    x = jnp.asarray(x, jnp.float32)
    squeeze = x.ndim == 2
    if squeeze:
        x = x[None, ..., None]
    if x.ndim != 4:
        raise ValueError(f"expected [B, H, W, C] or [H, W], got shape {x.shape}")
    if padding == "SAME":
        pads = [tf_same_pads(n, window, stride) for n in x.shape[1:3]]
    elif padding == "VALID":
        pads = [(0, 0), (0, 0)]
    else:
        raise ValueError(f"padding must be 'SAME' or 'VALID', got {padding!r}")
    y = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, window, window, 1), (1, stride, stride, 1), [(0, 0), *pads, (0, 0)])
    return y[0, ..., 0] if squeeze else y


def repeated_max_pool(x, times: int, window: int = 2, stride: int = 2) -> list[np.ndarray]:
    """[x, pool(x), pool(pool(x)), ...]: `times` + 1 maps."""
    out = [np.asarray(x, np.float32)]
    for _ in range(times):
        out.append(np.asarray(max_pool(out[-1], window, stride)))
    return out


def disk(size: int = 64, center=(32.0, 32.0), radius: float = 10.0) -> np.ndarray:
    """A filled circle, 1 inside and 0 outside, [size, size] float32."""
    yy, xx = np.mgrid[:size, :size]
    return (((yy - center[0]) ** 2 + (xx - center[1]) ** 2) <= radius**2).astype(np.float32)


def shift(x, dy: int, dx: int) -> np.ndarray:
    """[H, W] moved by (dy, dx) pixels, zeros shifted in (no wrap-around)."""
    x = np.asarray(x)
    out = np.zeros_like(x)
    h, w = x.shape[:2]
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = x[ys, xs]
    return out


def shift_demo(seed: int = 0, size: int = 64, max_shift: int = 3, times: int = 4) -> dict:
    """A disk and the same disk randomly moved by up to `max_shift` pixels, each pooled `times` times.

    Returns {'original': [maps], 'shifted': [maps], 'shift': (dy, dx),
    'differs': [number of differing cells at each stage]}; the count falls
    to 0 once the pooling windows are larger than the shift.
    """
    rng = np.random.default_rng(seed)
    dy, dx = (int(v) for v in rng.integers(-max_shift, max_shift + 1, size=2))
    base = disk(size, (size / 2, size / 2), size / 6)
    a = repeated_max_pool(base, times)
    b = repeated_max_pool(shift(base, dy, dx), times)
    return {"original": a, "shifted": b, "shift": (dy, dx), "differs": [int((p != q).sum()) for p, q in zip(a, b)]}


def global_average_pool(fmap):
    """[B, h, w, C] -> [B, C] (Keras GlobalAvgPool2D)."""
    fmap = jnp.asarray(fmap)
    if fmap.ndim != 4:
        raise ValueError(f"expected feature maps [B, h, w, C], got shape {fmap.shape}")
    return jnp.mean(fmap, axis=(1, 2))


def gap_features(model, variables, x, layer: str | None = None):
    """The global-average-pooled features [B, C] of a backbone's feature map `layer`.

    layer None: the last feature map the model taps (e.g. block5_pool of
    vgg16, layer4 of a ResNet; for `gap_classifier` its own 'pooled' tap is
    exactly this vector and is returned as is).
    """
    from fluxseg.viz.activations import activations, spatial_layers

    if layer is None:
        from fluxseg import models

        _, taps = jax.eval_shape(lambda v, x: models.features(model, v, x), variables, x)
        if "pooled" in taps:
            return activations(model, variables, x, ["pooled"])["pooled"]
        layer = spatial_layers(model, variables, x)[-1]
    return global_average_pool(activations(model, variables, x, [layer])[layer])


def bilinear_upsample2x(image) -> np.ndarray:
    """[H, W, C] -> [2H, 2W, C]: ConvTranspose(k=4, s=2, p=1) with the bilinear kernel on each channel."""
    image = np.asarray(image, np.float32)
    if image.ndim != 3:
        raise ValueError(f"expected one image [H, W, C], got shape {image.shape}")
    c = image.shape[-1]
    up = layers.ConvTranspose2D(c, 4, strides=2, padding=1, use_bias=False)
    kernel = jnp.asarray(layers.bilinear_kernel(c, c, 4).transpose(2, 3, 0, 1))
    return np.asarray(up.apply({"params": {"kernel": kernel}}, jnp.asarray(image[None])))[0]


def transposed_conv_example() -> np.ndarray:
    """[[1, 2], [3, 4]] through a 1x1 transposed conv (weight 1, bias 1, stride 2): a 4x4 map."""
    up = layers.ConvTranspose2D(1, 1, strides=2, output_padding=1)
    params = {"params": {"kernel": jnp.ones((1, 1, 1, 1)), "bias": jnp.ones((1,))}}
    x = jnp.asarray([[1.0, 2.0], [3.0, 4.0]])[None, ..., None]
    return np.asarray(up.apply(params, x))[0, ..., 0]
