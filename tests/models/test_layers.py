"""Shared layers: transposed convolution semantics, bilinear kernel, pools, crops."""
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fluxseg.models import layers


def scatter_reference(x, w, s, p, op):
    """Transposed conv from its definition: each input pixel scatters x[i] * w into the output.

    x: (H, W, Cin); w: (k, k, Cin, Cout). Output side (n-1)*s - 2p + k + op.
    """
    h, wd, _ = x.shape
    k = w.shape[0]
    full = np.zeros(((h - 1) * s + k + op, (wd - 1) * s + k + op, w.shape[-1]))
    for i in range(h):
        for j in range(wd):
            full[i * s : i * s + k, j * s : j * s + k] += np.einsum("c,abcd->abd", x[i, j], w)
    oh, ow = (h - 1) * s - 2 * p + k + op, (wd - 1) * s - 2 * p + k + op
    return full[p : p + oh, p : p + ow]


def apply_transpose(x, kernel, s, p, op=0, bias=None, method="subpixel"):
    m = layers.ConvTranspose2D(kernel.shape[-1], kernel.shape[0], s, p, op, use_bias=bias is not None, method=method)
    params = {"kernel": jnp.asarray(kernel)}
    if bias is not None:
        params["bias"] = jnp.asarray(bias)
    return np.asarray(m.apply({"params": params}, jnp.asarray(x)))


def test_transposed_convolution_worked_example():
    # Worked by hand: [[1,2],[3,4]], 1x1 kernel of 1, bias 1, stride 2 (Keras 'valid': p=0, output_padding=1).
    x = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    y = apply_transpose(x, np.ones((1, 1, 1, 1)), s=2, p=0, op=1, bias=np.ones(1))
    np.testing.assert_array_equal(y[0, :, :, 0], [[2, 1, 3, 1], [1, 1, 1, 1], [4, 1, 5, 1], [1, 1, 1, 1]])


@pytest.mark.parametrize("method", ["subpixel", "dilated"])
@pytest.mark.parametrize(
    "k,s,p,op", [(4, 2, 1, 0), (3, 2, 1, 1), (64, 32, 16, 0), (2, 2, 0, 0), (5, 3, 2, 2), (3, 1, 1, 0), (1, 2, 0, 1), (2, 3, 0, 2), (4, 2, 3, 1)]
)
def test_transposed_conv_matches_scatter_definition(k, s, p, op, method):
    rng = np.random.default_rng(k * 100 + s)
    x = rng.normal(size=(3, 4, 2))
    w = rng.normal(size=(k, k, 2, 3))
    y = apply_transpose(x[None].astype(np.float32), w.astype(np.float32), s, p, op, method=method)[0]
    np.testing.assert_allclose(y, scatter_reference(x, w, s, p, op), rtol=1e-4, atol=1e-4)


TORCH_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, torch
    d = np.load(sys.argv[1])
    k, s, p, op = (int(v) for v in d["cfg"])
    m = torch.nn.ConvTranspose2d(d["w"].shape[0], d["w"].shape[1], k, stride=s, padding=p, output_padding=op)
    with torch.no_grad():
        m.weight.copy_(torch.from_numpy(d["w"])); m.bias.copy_(torch.from_numpy(d["b"]))
        y = m(torch.from_numpy(d["x"])).numpy()
    np.save(sys.argv[2], y)
    """
)


def test_transposed_conv_matches_pytorch(tmp_path):
    """Same weights through torch.nn.ConvTranspose2d (run in its own process: torch and TF don't mix here)."""
    rng = np.random.default_rng(0)
    cases = [(4, 2, 1, 0), (3, 2, 1, 1), (7, 3, 2, 2), (16, 8, 4, 0)]
    for n, (k, s, p, op) in enumerate(cases):
        w = rng.normal(size=(3, 5, k, k)).astype(np.float32)  # torch layout (in, out, k, k)
        b = rng.normal(size=5).astype(np.float32)
        x = rng.normal(size=(2, 3, 6, 7)).astype(np.float32)  # NCHW
        np.savez(tmp_path / f"in{n}.npz", w=w, b=b, x=x, cfg=np.array([k, s, p, op]))
        subprocess.run([sys.executable, "-c", TORCH_SCRIPT, str(tmp_path / f"in{n}.npz"), str(tmp_path / f"out{n}.npy")], check=True,
                       timeout=300)
        want = np.load(tmp_path / f"out{n}.npy").transpose(0, 2, 3, 1)
        got = apply_transpose(x.transpose(0, 2, 3, 1), w.transpose(2, 3, 0, 1), s, p, op, bias=b)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=f"k={k} s={s} p={p} op={op}")


def test_bilinear_kernel_is_the_d2l_filter():
    w = layers.bilinear_kernel(3, 3, 4)
    assert w.shape == (3, 3, 4, 4)
    f = np.array([0.25, 0.75, 0.75, 0.25])
    for c in range(3):
        np.testing.assert_allclose(w[c, c], np.outer(f, f))
    assert np.all(w[0, 1] == 0) and np.all(w[2, 0] == 0)
    # odd k: factor 2, centre 1 -> [0.5, 1, 0.5]
    np.testing.assert_allclose(layers.bilinear_kernel(1, 1, 3)[0, 0], np.outer([0.5, 1, 0.5], [0.5, 1, 0.5]))
    # k = 64 (FCN-32s): peak at the two central taps, symmetric
    f64 = layers.bilinear_kernel(1, 1, 64)[0, 0]
    assert np.isclose(f64.max(), (1 - 0.5 / 32) ** 2) and f64[31, 31] == f64.max() == f64[32, 32]
    np.testing.assert_allclose(f64, f64[::-1, ::-1])


def test_bilinear_transposed_conv_doubles_an_image_like_bilinear_interpolation():
    """d2l.ai §13.11: ConvTranspose(k=4, s=2, p=1) with the bilinear kernel, 561x728 -> 1122x1456."""
    yy, xx = np.mgrid[0:561, 0:728] / 60.0
    img = np.stack([np.sin(yy) * np.cos(xx), np.cos(yy * 0.7 + xx * 0.3), (yy * xx) % 1.0], -1).astype(np.float32)
    kernel = np.asarray(layers.bilinear_init(None, (4, 4, 3, 3)))
    up = apply_transpose(img[None], kernel, s=2, p=1)[0]
    assert up.shape == (1122, 1456, 3)
    ref = np.asarray(jax.image.resize(jnp.asarray(img), (1122, 1456, 3), "bilinear"))
    np.testing.assert_allclose(up[1:-1, 1:-1], ref[1:-1, 1:-1], atol=1e-5)
    # At the border, the transposed conv sees zeros outside: only there it differs.
    assert np.abs(up[0] - ref[0]).max() > 1e-2


def test_max_pool_ceil_mode_matches_caffe_arithmetic():
    x = jnp.arange(1 * 7 * 7 * 1, dtype=jnp.float32).reshape(1, 7, 7, 1)
    assert layers.max_pool(x, 2, 2).shape == (1, 3, 3, 1)
    y = layers.max_pool(x, 2, 2, ceil_mode=True)
    assert y.shape == (1, 4, 4, 1)
    assert float(y[0, 3, 3, 0]) == 48.0 and float(y[0, 0, 3, 0]) == 13.0
    # PyTorch padding semantics: -inf outside, so negative inputs survive
    neg = -jnp.ones((1, 4, 4, 1))
    assert float(layers.max_pool(neg, 3, 2, padding=1).max()) == -1.0


def test_adaptive_avg_pool_bins_like_pytorch():
    x = jnp.arange(1 * 5 * 3 * 1, dtype=jnp.float32).reshape(1, 5, 3, 1)
    y = np.asarray(layers.adaptive_avg_pool(x, (2, 2)))[0, :, :, 0]
    a = np.arange(15.0).reshape(5, 3)
    # rows [0,3) and [2,5); cols [0,2) and [1,3)
    want = [[a[0:3, 0:2].mean(), a[0:3, 1:3].mean()], [a[2:5, 0:2].mean(), a[2:5, 1:3].mean()]]
    np.testing.assert_allclose(y, want)


def test_crop_and_concat_centres_the_skip():
    skip = jnp.arange(6 * 6, dtype=jnp.float32).reshape(1, 6, 6, 1)
    x = jnp.zeros((1, 2, 2, 3))
    y = layers.crop_and_concat(x, skip)
    assert y.shape == (1, 2, 2, 4)
    np.testing.assert_array_equal(y[0, :, :, 3], [[14, 15], [20, 21]])
    with pytest.raises(ValueError, match="cannot crop"):
        layers.center_crop(x, (3, 3))
