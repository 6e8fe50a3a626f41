"""Random small geometric transforms and the Fourier / decorrelated image parameterisation.

Both follow Olah, Mordvintsev & Schubert 2017 ("Feature Visualization",
Distill): optimising an image through random jitter, scaling and rotation
keeps only patterns the filter responds to robustly, instead of
high-frequency adversarial noise; describing the image by Fourier
coefficients scaled by 1/frequency (the spectrum of natural images) and in
a colour basis where channels are uncorrelated makes plain gradient steps
act like steps in a whitened space, which is what lets Adam find large,
smooth structures in deep layers.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

# Opponent-colour basis (luminance, red-green, blue-yellow), columns unit
# length; natural images put most of their colour variance in luminance, so
# the chromatic axes are damped.
_OPPONENT = np.array(
    [[1 / math.sqrt(3), 1 / math.sqrt(2), 1 / math.sqrt(6)],
     [1 / math.sqrt(3), -1 / math.sqrt(2), 1 / math.sqrt(6)],
     [1 / math.sqrt(3), 0.0, -2 / math.sqrt(6)]],
    np.float32,
) * np.array([1.0, 0.4, 0.25], np.float32)


def spectrum_scale(h: int, w: int) -> np.ndarray:
    """1/f amplitudes for an [h, w//2+1] real-FFT grid, normalised to unit root mean square."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    scale = 1.0 / np.maximum(np.sqrt(fy**2 + fx**2), 1.0 / max(h, w))
    return (scale / np.sqrt(np.mean(scale**2))).astype(np.float32)


def init_spectrum(key, n: int, h: int, w: int, std: float = 0.01):
    """Random Fourier coefficients [n, 3, h, w//2+1, 2] (real, imaginary)."""
    return jax.random.normal(key, (n, 3, h, w // 2 + 1, 2)) * std


def spectrum_to_image(spec, h: int, w: int):
    """Coefficients [n, 3, h, w//2+1, 2] -> RGB [n, h, w, 3] in [0, 255]."""
    coeffs = (spec[..., 0] + 1j * spec[..., 1]) * spectrum_scale(h, w)
    decorrelated = jnp.fft.irfft2(coeffs, s=(h, w), norm="ortho")  # [n, 3, h, w]
    logits = jnp.einsum("nchw,rc->nhwr", decorrelated, _OPPONENT * 4.0)
    return jax.nn.sigmoid(logits) * 255.0


def random_affine(key, images, jitter: int = 4, scale=(0.95, 1.05), degrees: float = 5.0):
    """Each image [n, h, w, c] jittered by up to +-`jitter` pixels, scaled and rotated about its centre.

    Bilinear resampling with reflected borders; differentiable in the images.
    """
    n, h, w, c = images.shape
    k1, k2, k3 = jax.random.split(key, 3)
    shift = jax.random.randint(k1, (n, 2), -jitter, jitter + 1).astype(jnp.float32)
    s = jax.random.uniform(k2, (n,), minval=scale[0], maxval=scale[1])
    theta = jnp.deg2rad(jax.random.uniform(k3, (n,), minval=-degrees, maxval=degrees))
    yy, xx = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32) - (h - 1) / 2, jnp.arange(w, dtype=jnp.float32) - (w - 1) / 2, indexing="ij")

    def one(img, sh, s, t):
        cos, sin = jnp.cos(t) / s, jnp.sin(t) / s
        src_y = cos * yy - sin * xx + (h - 1) / 2 - sh[0]
        src_x = sin * yy + cos * xx + (w - 1) / 2 - sh[1]
        return jnp.stack(
            [jax.scipy.ndimage.map_coordinates(img[..., ch], [src_y, src_x], order=1, mode="reflect") for ch in range(c)], axis=-1
        )

    return jax.vmap(one)(images, shift, s, theta)
