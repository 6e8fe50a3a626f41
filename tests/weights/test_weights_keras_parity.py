"""Keras Applications HDF5 files -> fluxseg: same outputs and feature maps as Keras itself.

References: `keras.applications.VGG16/ResNet50(weights=None)` with random
(non-trivial) weights, written by Keras' own legacy HDF5 writer in a
subprocess (see make_reference.py). Keras' VGG16 with its top only accepts
224x224 (Flatten), so the non-square case runs on the notop model.
"""
import functools
import shutil

import h5py
import numpy as np
import pytest

from fluxseg.weights import convert_keras_h5
from fluxseg.weights import tree

FILES = {
    ("vgg16", True): "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
    ("vgg16", False): "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ("resnet50_keras", True): "resnet50_weights_tf_dim_ordering_tf_kernels.h5",
    ("resnet50_keras", False): "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
}
VGG_TAPS = ("block1_conv1", "block1_pool", "block3_conv3", "block4_pool", "block5_conv3", "block5_pool")
RESNET_TAPS = ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out")
STATS = ("conv1_bn", "conv3_block1_0_bn", "conv5_block3_3_bn")


@functools.lru_cache(maxsize=None)
def _converted(directory, model, top):
    return convert_keras_h5(directory / FILES[(model, top)], model)


def test_vgg16_with_top_matches_keras(keras_ref, flax_forward, close):
    ref = keras_ref.arrays
    out, taps = flax_forward("vgg16")(_converted(keras_ref.dir, "vgg16", True), ref["x/224"])
    close("keras vgg16 224 logits", out, ref["vgg16_top/224/predictions"])
    for tap in VGG_TAPS + ("fc1", "fc2"):
        close(f"keras vgg16 224 {tap}", taps[tap], ref[f"vgg16_top/224/{tap}"])


def test_vgg16_notop_matches_keras(keras_ref, flax_forward, close, size="200x264"):
    """Keras' VGG16 with top only takes 224x224; the notop file covers the non-square input."""
    ref = keras_ref.arrays
    out, taps = flax_forward("vgg16", include_top=False)(_converted(keras_ref.dir, "vgg16", False), ref[f"x/{size}"])
    close(f"keras vgg16_notop {size} output", out, ref[f"vgg16_notop/{size}/block5_pool"])
    for tap in VGG_TAPS:
        close(f"keras vgg16_notop {size} {tap}", taps[tap], ref[f"vgg16_notop/{size}/{tap}"])


@pytest.mark.parametrize("top,size", [(True, "224"), (True, "200x264"), (False, "200x264")], ids=["top-224", "top-200x264", "notop-200x264"])
def test_resnet50_matches_keras(keras_ref, flax_forward, close, top, size):
    ref = keras_ref.arrays
    case = "resnet50_top" if top else "resnet50_notop"
    fn = flax_forward("resnet50_keras", include_top=top)
    out, taps = fn(_converted(keras_ref.dir, "resnet50_keras", top), ref[f"x/{size}"])
    close(f"keras {case} {size} output", out, ref[f"{case}/{size}/{'predictions' if top else 'conv5_block3_out'}"])
    for tap in RESNET_TAPS:
        close(f"keras {case} {size} {tap}", taps[tap], ref[f"{case}/{size}/{tap}"])


def test_resnet50_training_mode_matches_keras(keras_ref, flax_forward, close):
    """Batch statistics in the forward pass, and Keras' momentum 0.99 update of the moving statistics.

    Keras and Flax both weigh the old moving value by `momentum` and use the
    biased batch variance, so mean and variance must both match.
    """
    ref = keras_ref.arrays
    out, taps, stats = flax_forward("resnet50_keras", train=True)(_converted(keras_ref.dir, "resnet50_keras", True), ref["x/train"])
    close("keras resnet50_top train logits", out, ref["resnet50_top/train/predictions"])
    for tap in RESNET_TAPS:
        close(f"keras resnet50_top train {tap}", taps[tap], ref[f"resnet50_top/train/{tap}"])
    for layer in STATS:
        close(f"keras resnet50_top train moving_mean {layer}", stats[layer]["mean"], ref[f"resnet50_top/train/stats/{layer}/mean"])
        close(f"keras resnet50_top train moving_var {layer}", stats[layer]["var"], ref[f"resnet50_top/train/stats/{layer}/var"])


# ------------------------------------------------------------------ other spellings of the same file
def _str(name):
    return name.decode() if isinstance(name, bytes) else str(name)


def _rewrite(src, dst, rename, chunk_layer_names=False):
    """Copies a Keras 3 file, renaming every weight via `rename(layer, leaf) -> new weight name`."""
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        names = [_str(n) for n in f.attrs["layer_names"]]
        for layer in names:
            g = f[layer]
            old = [_str(w) for w in g.attrs["weight_names"]]
            if not old:
                continue
            new = [rename(layer, w.split("/")[-1]) for w in old]
            data = [np.asarray(g[w]) for w in old]
            del g[layer]
            for w, d in zip(new, data):
                g.create_dataset(w, data=d)
            g.attrs["weight_names"] = [w.encode() for w in new]
        if chunk_layer_names:  # what Keras writes when the list exceeds the HDF5 header limit
            del f.attrs["layer_names"]
            half = len(names) // 2
            f.attrs["layer_names0"] = [n.encode() for n in names[:half]]
            f.attrs["layer_names1"] = [n.encode() for n in names[half:]]


def _assert_same(a, b):
    fa, fb = tree.flatten(a), tree.flatten(b)
    assert fa.keys() == fb.keys()
    for k in fa:
        np.testing.assert_array_equal(fa[k], fb[k], err_msg=str(k))


def test_keras2_weight_names(keras_ref, tmp_path):
    """Keras 2 writes 'conv1_conv/kernel:0' (group conv1_conv/conv1_conv/kernel:0); same variables."""
    src = keras_ref.file(FILES[("resnet50_keras", False)])
    _rewrite(src, tmp_path / "k2.h5", lambda layer, leaf: f"{layer}/{leaf}:0", chunk_layer_names=True)
    with h5py.File(tmp_path / "k2.h5") as f:
        assert _str(f["conv1_bn"].attrs["weight_names"][2]) == "conv1_bn/moving_mean:0"
        assert "layer_names" not in f.attrs and "layer_names1" in f.attrs
    _assert_same(convert_keras_h5(tmp_path / "k2.h5", "resnet50_keras"), _converted(keras_ref.dir, "resnet50_keras", False))


def test_keras1_weight_names(keras_ref, tmp_path):
    """The official VGG16 files (Keras 1) say 'block1_conv1_W_1:0' / 'block1_conv1_b_1:0'."""
    src = keras_ref.file(FILES[("vgg16", False)])
    _rewrite(src, tmp_path / "k1.h5", lambda layer, leaf: f"{layer}_{'W' if leaf == 'kernel' else 'b'}_1:0")
    _assert_same(convert_keras_h5(tmp_path / "k1.h5", "vgg16"), _converted(keras_ref.dir, "vgg16", False))


def test_whole_model_file_layout(keras_ref, tmp_path):
    """`model.save('x.h5')` (legacy whole-model file) keeps the same groups under 'model_weights/'."""
    src = keras_ref.file(FILES[("vgg16", False)])
    with h5py.File(src) as f, h5py.File(tmp_path / "whole.h5", "w") as out:
        f.copy(f, out, "model_weights")
        out.attrs["model_config"] = "{}"
    _assert_same(convert_keras_h5(tmp_path / "whole.h5", "vgg16"), _converted(keras_ref.dir, "vgg16", False))


def test_wrong_model_for_file_fails_loudly(keras_ref):
    path = keras_ref.file(FILES[("resnet50_keras", False)])
    with pytest.raises(ValueError, match=r"missing block1_conv1/kernel \(3, 3, 3, 64\)"):
        convert_keras_h5(path, "vgg16")
    with pytest.raises(ValueError, match="resnet50_keras"):
        convert_keras_h5(path, "resnet50")
