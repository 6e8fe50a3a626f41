"""Random elastic deformation (Ronneberger et al. 2015, U-Net, section 3.1).

"We generate smooth deformations using random displacement vectors on a
coarse 3 by 3 grid. The displacements are sampled from a Gaussian
distribution with 10 pixels standard deviation. Per-pixel displacements are
then computed using bicubic interpolation." The image is resampled
bilinearly, the mask by its nearest pixel (class ids never blend), and
coordinates that leave the image are mirrored back into it, the same
mirrored context the paper uses at the borders of its tiles. All ops are
stateless tf ops seeded like fluxseg/data/transforms.py.
"""
from __future__ import annotations

from fluxseg.data._tf import tf


def displacement_field(seed, size, *, grid: int = 3, sigma: float = 10.0):
    """float32 [H, W, 2] (dy, dx) pixels: N(0, sigma^2) on a grid x grid lattice, bicubic."""
    coarse = tf.random.stateless_normal([1, grid, grid, 2], seed, dtype=tf.float32) * sigma
    return tf.image.resize(coarse, size, method="bicubic")[0]


def _mirror(coord, n):
    """Reflects float coordinates into [0, n - 1] (…2 1 0 1 2… at each end)."""
    n = tf.cast(n, tf.float32)
    period = tf.maximum(2.0 * (n - 1.0), 1.0)
    c = tf.math.floormod(coord, period)
    return tf.minimum(tf.where(c > n - 1.0, period - c, c), n - 1.0)


def _source_coords(field):
    h, w = tf.shape(field)[0], tf.shape(field)[1]
    yy, xx = tf.meshgrid(tf.range(h, dtype=tf.float32), tf.range(w, dtype=tf.float32),
                         indexing="ij")
    return _mirror(yy + field[..., 0], h), _mirror(xx + field[..., 1], w)


def warp_bilinear(x, field):
    """x [H, W, C] (any real dtype) sampled at (y + dy, x + dx); float32 out."""
    x = tf.cast(x, tf.float32)
    h, w = tf.shape(x)[0], tf.shape(x)[1]
    cy, cx = _source_coords(field)
    y0, x0 = tf.floor(cy), tf.floor(cx)
    wy, wx = (cy - y0)[..., None], (cx - x0)[..., None]
    y0, x0 = tf.cast(y0, tf.int32), tf.cast(x0, tf.int32)
    y1, x1 = tf.minimum(y0 + 1, h - 1), tf.minimum(x0 + 1, w - 1)

    def at(yi, xi):
        return tf.gather_nd(x, tf.stack([yi, xi], axis=-1))

    top = at(y0, x0) * (1.0 - wx) + at(y0, x1) * wx
    bottom = at(y1, x0) * (1.0 - wx) + at(y1, x1) * wx
    return top * (1.0 - wy) + bottom * wy


def warp_nearest(x, field):
    """x [H, W, C] sampled at the nearest pixel to (y + dy, x + dx); dtype kept."""
    cy, cx = _source_coords(field)
    idx = tf.stack([tf.cast(tf.round(cy), tf.int32), tf.cast(tf.round(cx), tf.int32)], axis=-1)
    return tf.gather_nd(x, idx)


def to_uint8(x):
    return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)


def elastic(image, mask, field, weight=None):
    """Deforms image uint8 [H,W,C] (bilinear), mask [H,W,1] (nearest), weight f32 (bilinear)."""
    image = to_uint8(warp_bilinear(image, field))
    mask = None if mask is None else warp_nearest(mask, field)
    weight = None if weight is None else warp_bilinear(weight, field)
    return image, mask, weight
