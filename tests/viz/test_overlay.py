"""Overlay colours: jet in RGB order (0 dark blue, 1 dark red), the same map as matplotlib's."""
import numpy as np
import pytest

from fluxseg import viz


def test_jet_endpoints_in_rgb_order_and_matplotlib_agreement():
    np.testing.assert_allclose(viz.jet(0.0), [0, 0, 0.5])
    np.testing.assert_allclose(viz.jet(1.0), [0.5, 0, 0])
    np.testing.assert_allclose(viz.jet(0.5)[1], 1.0, atol=0.02)  # green in the middle
    from matplotlib import colormaps

    v = np.linspace(0, 1, 256)
    np.testing.assert_allclose(viz.jet(v), colormaps["jet"](v)[:, :3], atol=1.5 / 255)


def test_overlay_blends_heat_over_the_image():
    img = np.zeros((4, 6, 3), np.uint8)
    img[..., 1] = 200
    cam = np.zeros((4, 6))
    cam[:, 3:] = 1.0
    out = viz.overlay(img, cam, alpha=0.4)
    assert out.dtype == np.uint8 and out.shape == (4, 6, 3)
    np.testing.assert_array_equal(out[0, 0], np.round([0, 0.6 * 200, 0.4 * 127.5]).astype(np.uint8))  # blue tint
    np.testing.assert_array_equal(out[0, 5], np.round([0.4 * 127.5, 0.6 * 200, 0]).astype(np.uint8))  # red tint
    full = viz.overlay(img, np.ones((2, 3)), alpha=1.0)  # a coarser map is resized to the image
    assert full.shape == (4, 6, 3) and (full == [128, 0, 0]).all()
    with pytest.raises(ValueError, match="RGB image"):
        viz.overlay(img[..., 0], cam)
