"""fluxseg.infer: tiles of the training size, averaged logits, overlap-tile."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from fluxseg import infer, models
from fluxseg.train.checkpoint import Restored
from fluxseg.weights import preprocess


def _restored(model_name, crop, task="segmentation", **model_kw):
    model = models.create(model_name, **model_kw)
    x = jnp.zeros((1, *crop, 3))
    variables = jax.jit(lambda k: model.init(k, x, train=False))(jax.random.key(0, impl="rbg"))
    config = ml_collections.ConfigDict({"task": task, "model": model_name,
                                        "data": {"crop_size": crop}})
    return Restored(model=model, variables=variables, config=config,
                    preprocess=preprocess.get("unit"), step=0, workdir="")


def _apply(r, window):
    x = r.preprocess(jnp.asarray(window, jnp.float32)[None])
    return np.asarray(r.model.apply(r.variables, x, train=False))[0]


def _reference(r, image, tile, out, stride, align=(1, 1)):
    """Loops in numpy: mirror-pad, apply to each window, average where they overlap.
    align: window offsets on multiples of it (the covered region rounded up)."""
    H, W = image.shape[:2]
    m = ((tile[0] - out[0]) // 2, (tile[1] - out[1]) // 2)
    region = tuple(o + -(-max(s - o, 0) // a) * a for s, o, a in zip((H, W), out, align))
    padded = infer.mirror_pad(image, m[0], m[0] + region[0] - H, m[1], m[1] + region[1] - W)
    total, count = None, np.zeros(region)
    for i in infer.window_starts(region[0], out[0], stride[0]):
        for j in infer.window_starts(region[1], out[1], stride[1]):
            logits = _apply(r, padded[i:i + tile[0], j:j + tile[1]])
            if total is None:
                total = np.zeros((*region, logits.shape[-1]))
            total[i:i + out[0], j:j + out[1]] += logits
            count[i:i + out[0], j:j + out[1]] += 1
    return (total / count[..., None])[:H, :W]


@pytest.fixture(scope="module")
def same_unet():
    return _restored("unet", (16, 16), num_classes=3, features=4, padding="same")


def test_one_tile_is_the_model_itself(same_unet):
    image = np.random.RandomState(0).randint(0, 256, (16, 16, 3)).astype(np.uint8)
    np.testing.assert_allclose(infer.predict_logits(same_unet, image), _apply(same_unet, image),
                               atol=1e-5)


def test_overlapping_tiles_average_logits_before_argmax(same_unet):
    image = np.random.RandomState(1).randint(0, 256, (24, 29, 3)).astype(np.uint8)
    got = infer.predict_logits(same_unet, image)
    want = _reference(same_unet, image, (16, 16), (16, 16), (11, 11))
    assert got.shape == (24, 29, 3)
    np.testing.assert_allclose(got, want, atol=1e-5)
    mask = infer.predict(same_unet, image)
    assert mask.shape == (24, 29) and mask.dtype == np.int32
    np.testing.assert_array_equal(mask, np.argmax(want, -1))


def test_images_smaller_than_a_tile_keep_their_size(same_unet):
    image = np.random.RandomState(2).randint(0, 256, (9, 13, 3)).astype(np.uint8)
    got = infer.predict_logits(same_unet, image)
    np.testing.assert_allclose(got, _reference(same_unet, image, (16, 16), (16, 16), (11, 11)),
                               atol=1e-5)
    assert infer.predict(same_unet, image).shape == (9, 13)


def test_overlap_tile_for_the_unpadded_unet():
    r = _restored("unet", (204, 204), num_classes=2, features=4, padding="valid")
    assert infer.output_size(r, (204, 204), 3)[:2] == (20, 20)
    rng = np.random.RandomState(3)
    # An image of exactly one output tile: the model on its mirror-padded self.
    image = rng.randint(0, 256, (20, 20, 3)).astype(np.uint8)
    np.testing.assert_allclose(infer.predict_logits(r, image),
                               _apply(r, infer.mirror_pad(image, 92, 92, 92, 92)), atol=1e-5)
    # Any other size: output tiles of 20 at offsets on the pooling stride (16)
    # cover it, context mirrored (tests/test_infer_predict.py checks no seams).
    image = rng.randint(0, 256, (30, 25, 3)).astype(np.uint8)
    np.testing.assert_allclose(infer.predict_logits(r, image),
                               _reference(r, image, (204, 204), (20, 20), (16, 16), align=(16, 16)),
                               atol=1e-5)
    assert infer.predict(r, image).shape == (30, 25)


def test_binary_head_gives_a_0_1_mask():
    r = _restored("unet", (16, 16), num_classes=1, features=4, padding="same")
    image = np.random.RandomState(4).randint(0, 256, (20, 18, 3)).astype(np.uint8)
    logits = infer.predict_logits(r, image)
    np.testing.assert_array_equal(infer.predict(r, image), (logits[..., 0] > 0).astype(np.int32))


def test_mirror_pad_reflects_repeatedly():
    image = np.arange(12, dtype=np.uint8).reshape(3, 4, 1)
    np.testing.assert_array_equal(infer.mirror_pad(image, 2, 1, 3, 0),
                                  np.pad(image, ((2, 1), (3, 0), (0, 0)), mode="reflect"))
    big = infer.mirror_pad(image, 7, 5, 9, 6)
    assert big.shape == (15, 19, 1)
    # Reflection with period 2*(n-1): rows 4 apart are equal.
    np.testing.assert_array_equal(big[0:4], big[4:8])


def test_window_starts_cover_the_axis():
    for size, out, stride in [(24, 16, 11), (100, 20, 20), (7, 16, 11), (33, 10, 3)]:
        starts = infer.window_starts(size, out, stride)
        covered = np.zeros(max(size, out), bool)
        for s in starts:
            covered[s:s + out] = True
        assert covered.all() and starts[-1] + out == max(size, out)
