"""Filter visualisation: the DLwP ascent step equals TensorFlow's; it raises its own filter; batching changes nothing."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _viz_helpers import FILTER_IDS, FILTER_SEED, FILTER_SIZE, rel_err
from fluxseg import viz
from fluxseg.models.layers import tap
from fluxseg.viz import filters as F

LAYER = "block3_conv1"


def test_first_ascent_step_equals_tensorflow(keras_vgg16_base, keras_viz):
    model, variables = keras_vgg16_base
    ref = keras_viz.arrays
    x0 = np.asarray(F.dlwp_start(FILTER_SEED, FILTER_IDS, FILTER_SIZE))
    losses, grads = viz.ascent_gradient(model, variables, LAYER, x0, FILTER_IDS)
    assert rel_err(losses, ref["filters/loss"]) <= 1e-5
    assert rel_err(grads, ref["filters/grad"]) <= 1e-4
    # The case is well posed: float32 here equals float64 (no ReLU/max-pool decision within rounding).
    with jax.enable_x64(True):
        v64 = jax.tree.map(lambda a: np.asarray(a, np.float64), variables)
        _, g64 = F._normalized_grad(F._acts_fn(model, LAYER, None), v64, jnp.asarray(x0, jnp.float64), jnp.asarray(FILTER_IDS))
        g64 = np.asarray(g64)
    assert rel_err(grads, g64) <= 1e-5
    # filter_patterns takes exactly that step from exactly that start, then deprocesses (listing 5.37).
    pats = viz.filter_patterns(model, variables, LAYER, FILTER_IDS, size=FILTER_SIZE, steps=1, seed=FILTER_SEED)
    expect = F.deprocess(x0 + ref["filters/grad"])
    assert np.abs(pats.images.astype(int) - expect.astype(int)).max() <= 1
    assert rel_err(pats.losses[:, 0], ref["filters/loss"]) <= 1e-5


def test_ascent_raises_its_own_filter_and_batching_changes_nothing(keras_vgg16_base):
    model, variables = keras_vgg16_base
    kw = dict(size=FILTER_SIZE, steps=20, seed=FILTER_SEED)
    pats = viz.filter_patterns(model, variables, LAYER, FILTER_IDS, **kw)
    assert pats.images.shape == (3, FILTER_SIZE, FILTER_SIZE, 3) and pats.images.dtype == np.uint8
    assert pats.losses.shape == (3, 20)
    assert (pats.losses[:, -1] > 1.5 * pats.losses[:, 0]).all(), pats.losses[:, [0, -1]]
    assert (np.diff(pats.losses, axis=1) > 0).mean() > 0.9  # it climbs at (nearly) every step
    assert not pats.dead.any()
    # The final image excites its own filter more than the layer's other filters. Filters have
    # very different scales, so each is standardised over six images: the three final images
    # and the three (deprocessed) starts.
    starts = F.deprocess(np.asarray(F.dlwp_start(FILTER_SEED, FILTER_IDS, FILTER_SIZE)))
    imgs = jnp.asarray(np.concatenate([pats.images, starts]), jnp.float32)
    acts = np.asarray(viz.activations(model, variables, imgs, [LAYER])[LAYER]).mean(axis=(1, 2))  # [6, 256]
    z = (acts - acts.mean(0)) / (acts.std(0) + 1e-9)
    for i, f in enumerate(FILTER_IDS):
        assert z[i, f] > np.delete(z[i], f).mean() + 1.0, (f, z[i, f], np.delete(z[i], f).mean())
        # and it is the image, among those made for the three filters, that excites filter f most
        assert acts[i, f] > np.delete(acts[:3, f], i).max(), (f, acts[:3, f])
    # One filter at a time (batch_size=1) gives the same images and losses, up to
    # float rounding: XLA's CPU convolution blocks its loops by batch size, and 20
    # normalised ascent steps amplify the last-bit differences to ~1e-3 relative
    # (a filter mixed up with its neighbour would differ by 10-100%).
    single = viz.filter_patterns(model, variables, LAYER, FILTER_IDS, batch_size=1, **kw)
    np.testing.assert_allclose(single.losses, pats.losses, rtol=3e-3)
    assert np.abs(single.images.astype(int) - pats.images.astype(int)).max() <= 3
    # And a filter's result does not depend on its neighbours in the batch.
    alone = viz.filter_patterns(model, variables, LAYER, FILTER_IDS[1:2], **kw)
    np.testing.assert_allclose(alone.losses[0], pats.losses[1], rtol=3e-3)


def test_regularized_method_climbs_and_reports_dead_filters(keras_vgg16_base):
    model, variables = keras_vgg16_base
    pats = viz.filter_patterns(model, variables, LAYER, [5, 17], size=FILTER_SIZE, steps=8, method="regularized", seed=1)
    assert pats.images.shape == (2, FILTER_SIZE, FILTER_SIZE, 3)
    assert (pats.losses[:, -3:].mean(axis=1) > pats.losses[:, :3].mean(axis=1)).all(), pats.losses
    dead = viz.FilterPatterns(pats.images, np.zeros_like(pats.losses)).dead
    assert dead.all() and not pats.dead.any()


def test_bad_filter_indices_are_rejected(keras_vgg16_base):
    model, variables = keras_vgg16_base
    import pytest

    with pytest.raises(ValueError, match="has 256 filters"):
        viz.filter_patterns(model, variables, LAYER, [300], size=32, steps=1)
    with pytest.raises(KeyError, match="block3_conv1"):
        viz.filter_patterns(model, variables, "block3_convX", [0], size=32, steps=1)


class _Detached(nn.Module):
    """A layer whose input arrives through stop_gradient: active, but unreachable from the image."""

    @nn.compact
    def __call__(self, x, train=False):
        a = jax.lax.stop_gradient(nn.Conv(4, (3, 3), name="c1")(x))
        return tap(self, "c2", jnp.abs(nn.Conv(4, (3, 3), name="c2")(a)) + 1.0)


def test_an_active_filter_without_gradient_is_flagged_and_said():
    model = _Detached()
    v = model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
    with pytest.warns(UserWarning, match=r"filter\(s\) \[0, 1\].*exactly zero gradient"):
        pats = viz.filter_patterns(model, v, "c2", [0, 1], size=8, steps=2)
    assert (pats.losses > 0).all() and pats.no_gradient.all() and pats.dead.all()
