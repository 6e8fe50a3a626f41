"""Layer activations equal Keras' on the same weights; channel grids put each channel in its tile."""
import jax.numpy as jnp
import numpy as np

from _viz_helpers import rel_err
from fluxseg import models, viz
from fluxseg.weights import keras_h5

KERAS_LAYERS = ["conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1", "conv2d_2", "max_pooling2d_2", "conv2d_3", "max_pooling2d_3"]


def test_cnn_small_activations_equal_keras_layer_outputs(keras_viz):
    # Weights from Keras' own HDF5 file of the book's model (random), mapped by layer name.
    params = {}
    for layer, ws in keras_h5.read_layers(keras_viz.file("cnn_small.h5")).items():
        (_, kernel), (_, bias) = ws
        params[layer] = {"kernel": kernel, "bias": bias}
    x = keras_viz.arrays["xsmall"]  # [2, 80, 80, 3] in [0, 1]
    acts = viz.activations(models.create("cnn_small"), {"params": params}, jnp.asarray(x))
    assert list(acts) == KERAS_LAYERS  # the default is the first eight layers, in forward order
    for name in KERAS_LAYERS:
        assert rel_err(acts[name], keras_viz.arrays[f"cnn_small/{name}"]) <= 1e-5, name


def test_activation_grid_places_channel_r_times_16_plus_c_at_tile_r_c():
    rng = np.random.default_rng(0)
    h, w, c = 5, 7, 40  # non-square tiles and a partial last row
    fmap = rng.standard_normal((h, w, c)) * rng.uniform(0.1, 10, c) + rng.uniform(-5, 5, c)
    fmap[..., 21] = 3.0  # a constant channel
    grid = viz.activation_grid(fmap, per_row=16)
    assert grid.dtype == np.uint8 and grid.shape == (3 * h, 16 * w)
    for k in range(c):
        r, col = divmod(k, 16)
        tile = grid[r * h : (r + 1) * h, col * w : (col + 1) * w]
        x = fmap[..., k]
        expect = np.clip((x - x.mean()) / (x.std() or 1) * 64 + 128, 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(tile, expect, err_msg=f"channel {k}")
    assert (grid[h : 2 * h, 5 * w : 6 * w] == 128).all()  # channel 21: flat grey, not NaN garbage
    assert (grid[2 * h :, 8 * w :] == 0).all()  # no channel 40..47: empty tiles
