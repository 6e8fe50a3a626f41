"""fluxseg.predict / predict_batch: tiles of the training size, averaged logits,
overlap-tile without seams, one compilation, TTA, classifiers, binary heads.

References are built without the functions under test: model.apply on whole
images or on windows at offsets written out by hand, np.pad(mode='reflect')
for mirrored context, numpy softmax.
"""
import logging

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from PIL import Image

import fluxseg
from fluxseg import infer, models
from fluxseg.train.checkpoint import Restored
from fluxseg.weights import preprocess


class TinyConv(nn.Module):
    """Two 3x3 'SAME' convolutions: each output pixel sees 2 pixels around it."""
    num_classes: int = 3

    @nn.compact
    def __call__(self, x, train=False):
        x = nn.tanh(nn.Conv(6, (3, 3), padding="SAME")(x))
        return nn.Conv(self.num_classes, (3, 3), padding="SAME")(x) * 3.0


class MirrorSymmetric(nn.Module):
    """g(x) + flip(g(flip(x))): equivariant to left-right flips by construction."""

    @nn.compact
    def __call__(self, x, train=False):
        g = TinyConv()
        return g(x) + g(x[:, :, ::-1])[:, :, ::-1]


class TinyClassifier(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
        x = nn.relu(nn.Conv(4, (3, 3))(x))
        # Position-dependent head: a crop and a resize of the same image differ.
        return nn.Dense(5)(x.reshape(x.shape[0], -1))


def _restored(model, crop, task="segmentation", eval_mode="pad", seed=0):
    """A run as fluxseg.restore gives it: the config records task, crop, eval mode and channels."""
    x = jnp.zeros((1, *crop, 3))
    variables = jax.jit(lambda k: model.init(k, x, train=False))(jax.random.key(seed, impl="rbg"))
    config = ml_collections.ConfigDict({"model": "test", "data": {
        "task": task, "crop_size": crop, "eval_mode": eval_mode, "channels": 3}})
    return Restored(model=model, variables=variables, config=config,
                    preprocess=preprocess.get("unit"), step=0, workdir="")


def _unet(crop, **kw):
    return _restored(models.create("unet", features=4, **kw), crop)


def _windows(r, padded, tile, out, starts_rows, starts_cols):
    """Logits averaged over the windows at the given offsets of a padded image: [rows, cols, K]."""
    total = count = None
    for i in starts_rows:
        for j in starts_cols:
            logits = _apply(r, padded[i:i + tile[0], j:j + tile[1]])
            if total is None:
                size = (starts_rows[-1] + out[0], starts_cols[-1] + out[1])
                total, count = np.zeros((*size, logits.shape[-1])), np.zeros((*size, 1))
            total[i:i + out[0], j:j + out[1]] += logits
            count[i:i + out[0], j:j + out[1]] += 1
    return total / count


def _apply(r, image):
    x = r.preprocess(jnp.asarray(image, jnp.float32)[None])
    return np.asarray(r.model.apply(r.variables, x, train=False), np.float64)[0]


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _image(shape, seed):
    return np.random.RandomState(seed).randint(0, 256, (*shape, 3)).astype(np.uint8)


def _clean(size, out, starts, radius):
    """Pixels that every covering window sees with its full receptive field."""
    ok = np.ones(size, bool)
    for s in starts:
        idx = np.arange(s, s + out)
        bad = ((idx - s < radius) & (s != 0)) | ((s + out - 1 - idx < radius) & (s + out != size))
        ok[idx[bad]] = False
    return ok


def test_tiled_equals_whole_image_away_from_tile_borders():
    r = _restored(TinyConv(), (32, 32))
    image = _image((333, 517), 0)
    got = infer.predict_logits(r, image)
    whole = _apply(r, image)
    assert got.shape == whole.shape == (333, 517, 3)
    stride = 32 - 32 // 3
    rows = _clean(333, 32, infer.window_starts(333, 32, stride), radius=2)
    cols = _clean(517, 32, infer.window_starts(517, 32, stride), radius=2)
    keep = rows[:, None] & cols[None, :]
    assert 0.5 < keep.mean() < 1.0  # the comparison covers most pixels, not all
    np.testing.assert_allclose(got[keep], whole[keep], atol=2e-5)
    # Near tile borders the windows lack context: the test would see a real difference there.
    assert np.abs(got[~keep] - whole[~keep]).max() > 1e-3


@pytest.mark.parametrize("shape", [(333, 517), (97, 31), (1, 1)])
def test_outputs_have_the_input_size(shape):
    r = _restored(TinyConv(), (32, 32))
    image = _image(shape, 1)
    mask = fluxseg.predict(r, image)
    probs = fluxseg.predict(r, image, probs=True)
    assert mask.shape == shape and mask.dtype == np.int32
    assert probs.shape == (*shape, 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(mask, np.argmax(probs, -1))


def test_overlap_tile_unet_has_no_seams():
    """Ronneberger et al. (2015): tiles of the unpadded U-Net, each on mirrored context,
    join into exactly the one-shot prediction of the whole mirror-padded image."""
    r = _restored(models.create("unet", num_classes=2, features=4, padding="valid"), (204, 204))
    image = _image((52, 45), 2)
    # One valid-size input: output 52x52 needs 92 px of context each side (more
    # than the image: reflected again, as numpy does); the columns are extended
    # to 52 by reflection too, then cut back.
    padded = np.pad(image, ((92, 92), (92, 92 + 7), (0, 0)), mode="reflect")
    reference = _apply(r, padded)
    assert reference.shape == (52, 52, 2)
    got = infer.predict_logits(r, image)
    assert got.shape == (52, 45, 2)
    np.testing.assert_allclose(got, reference[:, :45], atol=1e-4)
    # A tile at an offset off the pooling grid (20, not a multiple of 16) computes
    # something else: stride=(20, 20) is rounded down to 16 for that reason.
    off_grid = _apply(r, padded[20:224, :204])
    assert np.abs(off_grid - reference[20:40, :20]).max() > 1e-3
    np.testing.assert_allclose(infer.predict_logits(r, image, stride=(20, 20)), got, atol=1e-6)


class _CompileLog(logging.Handler):
    def __init__(self):
        super().__init__()
        self.names = []

    def emit(self, record):
        msg = record.getMessage()
        if msg.startswith("Compiling "):
            self.names.append(msg.split()[1])


def test_ten_sizes_compile_the_model_once():
    r = _restored(TinyConv(), (24, 24), seed=3)
    sizes = [(10, 13), (24, 24), (31, 57), (40, 33), (17, 90), (64, 48), (25, 26), (5, 70),
             (49, 49), (80, 21)]
    handler = _CompileLog()
    logger = logging.getLogger("jax")
    logger.addHandler(handler)
    try:
        with jax.log_compiles(True):
            masks = [fluxseg.predict(r, _image(s, i)) for i, s in enumerate(sizes)]
            batch = fluxseg.predict_batch(r, [_image(s, i) for i, s in enumerate(sizes)])
    finally:
        logger.removeHandler(handler)
    assert [m.shape for m in masks] == sizes
    for a, b in zip(masks, batch):
        np.testing.assert_array_equal(a, b)  # tiles sharing batches change nothing
    model_compiles = [n for n in handler.names if "apply_tiles" in n]
    # One tile shape (24x24), one batch size (the default): one compilation.
    assert len(model_compiles) == 1, handler.names


def test_flip_tta_of_a_mirror_symmetric_model_changes_nothing():
    r = _restored(MirrorSymmetric(), (16, 16))
    for shape, kw in [((16, 16), {}), ((16, 32), {"stride": (16, 16)})]:
        image = _image(shape, 4)
        plain = fluxseg.predict(r, image, probs=True, **kw)
        flipped = fluxseg.predict(r, image, probs=True, tta="flip", **kw)
        assert plain.std() > 1e-3  # not a constant model
        np.testing.assert_allclose(flipped, plain, atol=1e-6)


def test_flip_tta_averages_probabilities():
    r = _restored(TinyConv(), (16, 16), seed=5)
    image = _image((16, 16), 6)
    want = (_softmax(_apply(r, image)) + _softmax(_apply(r, image[:, ::-1]))[:, ::-1]) / 2
    got = fluxseg.predict(r, image, probs=True, tta="flip")
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.abs(got - _softmax(_apply(r, image))).max() > 1e-3  # the flip mattered
    np.testing.assert_array_equal(fluxseg.predict(r, image, tta="flip"), np.argmax(want, -1))


def test_multi_scale_resizes_probabilities_back():
    r = _restored(TinyConv(), (16, 16), seed=7)
    image = _image((32, 32), 8)
    half = np.asarray(Image.fromarray(image).resize((16, 16), Image.BILINEAR), np.float64)
    small = _softmax(_apply(r, half)).astype(np.float32)
    up = np.stack([np.asarray(Image.fromarray(small[..., k], mode="F").resize((32, 32), Image.BILINEAR))
                   for k in range(3)], -1)
    full = _softmax(infer.predict_logits(r, image).astype(np.float64))
    got = fluxseg.predict(r, image, probs=True, scales=(0.5, 1.0))
    # PIL resizes uint8 and float images with the same filter; rounding to uint8 is the only gap.
    np.testing.assert_allclose(got, (up + full) / 2, atol=2e-3)


@pytest.mark.parametrize("mode", ["resize", "pad"])
def test_classifier_resizes_or_centre_crops_as_configured(mode):
    r = _restored(TinyClassifier(), (12, 12), task="classification", eval_mode=mode)
    image = _image((30, 20), 9)
    if mode == "resize":
        x = np.asarray(Image.fromarray(image).resize((12, 12), Image.BILINEAR), np.float64)
    else:
        x = image[9:21, 4:16]
    want = _softmax(_apply(r, x))
    got = fluxseg.predict(r, image, probs=True)
    np.testing.assert_allclose(got, want, atol=1e-2 if mode == "resize" else 1e-5)
    assert fluxseg.predict(r, image) == int(np.argmax(got))
    # Smaller than the input size in 'pad' mode: centred on zeros.
    if mode == "pad":
        tiny = _image((6, 8), 10)
        canvas = np.zeros((12, 12, 3), np.uint8)
        canvas[3:9, 2:10] = tiny
        np.testing.assert_allclose(fluxseg.predict(r, tiny, probs=True), _softmax(_apply(r, canvas)),
                                   atol=1e-5)


@pytest.fixture(scope="module")
def same_unet():
    return _unet((16, 16), num_classes=3, padding="same")


def test_one_tile_is_the_model_itself(same_unet):
    image = _image((16, 16), 11)
    np.testing.assert_allclose(infer.predict_logits(same_unet, image), _apply(same_unet, image),
                               atol=1e-5)


def test_overlapping_tiles_average_logits_before_argmax(same_unet):
    image = _image((24, 29), 12)
    got = infer.predict_logits(same_unet, image)
    # Tiles of 16 overlapping by a third (stride 16 - 16 // 3 = 11), the last one flush with
    # the border: rows at 0 and 8, columns at 0, 11 and 13.
    want = _windows(same_unet, image, (16, 16), (16, 16), [0, 8], [0, 11, 13])
    assert got.shape == want.shape == (24, 29, 3)
    np.testing.assert_allclose(got, want, atol=1e-5)
    mask = infer.predict(same_unet, image)
    assert mask.shape == (24, 29) and mask.dtype == np.int32
    np.testing.assert_array_equal(mask, np.argmax(want, -1))


def test_images_smaller_than_a_tile_are_mirrored_up_to_it_and_keep_their_size(same_unet):
    image = _image((9, 13), 13)
    padded = np.pad(image, ((0, 7), (0, 3), (0, 0)), mode="reflect")  # bottom/right to 16x16
    np.testing.assert_allclose(infer.predict_logits(same_unet, image),
                               _apply(same_unet, padded)[:9, :13], atol=1e-5)
    assert infer.predict(same_unet, image).shape == (9, 13)


def test_overlap_tile_of_one_output_tile_and_of_two_by_two():
    r = _unet((204, 204), num_classes=2, padding="valid")
    assert infer.output_size(r, (204, 204), 3)[:2] == (20, 20)
    # An image of exactly one output tile: the model on its mirror-padded self (92 = (204 - 20) / 2).
    image = _image((20, 20), 14)
    np.testing.assert_allclose(infer.predict_logits(r, image),
                               _apply(r, np.pad(image, ((92, 92), (92, 92), (0, 0)), mode="reflect")),
                               atol=1e-5)
    # 30x25: output tiles of 20 at offsets on the pooling stride (16), 0 and 16 on both axes,
    # over a region of 36x36 mirrored beyond the image.
    image = _image((30, 25), 15)
    padded = np.pad(image, ((92, 92 + 6), (92, 92 + 11), (0, 0)), mode="reflect")
    want = _windows(r, padded, (204, 204), (20, 20), [0, 16], [0, 16])[:30, :25]
    np.testing.assert_allclose(infer.predict_logits(r, image), want, atol=1e-5)
    assert infer.predict(r, image).shape == (30, 25)


def test_binary_head_gives_a_0_1_mask():
    r = _unet((16, 16), num_classes=1, padding="same")
    image = _image((20, 18), 16)
    logits = infer.predict_logits(r, image)
    np.testing.assert_array_equal(infer.predict(r, image), (logits[..., 0] > 0).astype(np.int32))
    probs = fluxseg.predict(r, image, probs=True)
    np.testing.assert_allclose(probs[..., 0], 1 / (1 + np.exp(-logits[..., 0])), atol=1e-6)


def test_mirror_pad_reflects_repeatedly():
    image = np.arange(12, dtype=np.uint8).reshape(3, 4, 1)
    np.testing.assert_array_equal(infer.mirror_pad(image, 2, 1, 3, 0),
                                  np.pad(image, ((2, 1), (3, 0), (0, 0)), mode="reflect"))
    big = infer.mirror_pad(image, 7, 5, 9, 6)
    np.testing.assert_array_equal(big, np.pad(image, ((7, 5), (9, 6), (0, 0)), mode="reflect"))


def test_window_starts_cover_the_axis():
    for size, out, stride, want in [(24, 16, 11, [0, 8]), (100, 20, 20, [0, 20, 40, 60, 80]),
                                    (7, 16, 11, [0]), (33, 10, 3, [0, 3, 6, 9, 12, 15, 18, 21, 23])]:
        assert infer.window_starts(size, out, stride) == want
