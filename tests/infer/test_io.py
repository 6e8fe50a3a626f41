"""Bad input: each case gets an error naming the file and what was expected, or a documented conversion."""
import io

import numpy as np
import pytest
from PIL import Image

from fluxseg.infer.io import BadImageError, check_array, read_image

RGB = np.random.RandomState(0).randint(0, 256, (9, 11, 3)).astype(np.uint8)


def _save(tmp_path, name, array, **kw):
    path = tmp_path / name
    Image.fromarray(array, **kw).save(path)
    return str(path)


def test_non_image_file(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image at all")
    with pytest.raises(BadImageError, match=r"notes\.png: not an image PIL can read; expected a PNG"):
        read_image(str(path))


def test_truncated_jpeg(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.RandomState(1).randint(0, 256, (64, 64, 3)).astype(np.uint8)).save(
        buf, format="JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(BadImageError, match=r"cut\.jpg: the image data is truncated or corrupt"):
        read_image(str(path))


def test_rgba_png_opaque_is_converted_transparent_is_refused(tmp_path):
    opaque = np.concatenate([RGB, np.full((9, 11, 1), 255, np.uint8)], -1)
    np.testing.assert_array_equal(read_image(_save(tmp_path, "opaque.png", opaque)), RGB)
    see_through = opaque.copy()
    see_through[0, 0, 3] = 10
    with pytest.raises(BadImageError, match=r"clear\.png: has transparent pixels.*expected an opaque"):
        read_image(_save(tmp_path, "clear.png", see_through))


def test_grayscale_for_rgb_model_and_rgb_for_grayscale_model(tmp_path):
    gray = RGB[..., 0]
    got = read_image(_save(tmp_path, "gray.png", gray), channels=3)
    assert got.shape == (9, 11, 3)
    for c in range(3):  # the channel repeated, as the training pipeline does
        np.testing.assert_array_equal(got[..., c], gray)
    luma = read_image(_save(tmp_path, "rgb.png", RGB), channels=1)
    want = RGB.astype(np.float64) @ [0.299, 0.587, 0.114]
    np.testing.assert_allclose(luma[..., 0], want, atol=1e-3)
    with pytest.raises(BadImageError, match=r"x: 3 channels; the model expects 2"):
        check_array(RGB, "x", channels=2)


def test_16bit_png_is_scaled_to_8bit(tmp_path):
    deep = (np.arange(9 * 11).reshape(9, 11) * 600).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(deep).save(path)
    assert Image.open(path).mode.startswith("I")
    got = read_image(str(path))
    np.testing.assert_allclose(got[..., 0], deep / 257.0, atol=1e-3)
    np.testing.assert_allclose(check_array(deep)[..., 1], deep / 257.0, atol=1e-3)
    assert got.max() <= 255.0


def test_empty_array():
    with pytest.raises(BadImageError, match=r"frame 3: empty image of shape \(0, 5, 3\); expected H, W >= 1"):
        check_array(np.zeros((0, 5, 3), np.uint8), "frame 3")


def test_float_unit_and_byte_ranges_agree():
    as_bytes = check_array(RGB)
    np.testing.assert_allclose(check_array(RGB / 255.0), as_bytes, atol=1e-4)
    np.testing.assert_allclose(check_array(RGB.astype(np.float32)), as_bytes)
    with pytest.raises(BadImageError, match=r"array: float values in \[-1, 0.99\d*\]; expected \[0, 1\] or \[0, 255\]"):
        check_array(RGB / 127.5 - 1.0)
    bad = RGB / 255.0
    bad[0, 0, 0] = np.nan
    with pytest.raises(BadImageError, match="NaN"):
        check_array(bad)


def test_missing_file_and_wrong_rank(tmp_path):
    with pytest.raises(BadImageError, match=r"gone\.png: no such file"):
        read_image(str(tmp_path / "gone.png"))
    with pytest.raises(BadImageError, match=r"expected one image \[H, W\] or \[H, W, C\], got shape \(2, 9, 11, 3\)"):
        check_array(np.stack([RGB, RGB]))
