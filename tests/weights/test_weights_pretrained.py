"""Loading converted backbones into composite models: the right subtrees, a truthful report, loud failures.

Targets are zero-filled variables of the right shapes (`jax.eval_shape` of
`init`, nothing compiled); the weight files are the reference runs' files,
found through `path=<directory>` under their official names.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fluxseg import models
from fluxseg.weights import convert_keras_h5, convert_torchvision, init_from_pretrained, tree

KERAS_VGG = "vgg16_weights_tf_dim_ordering_tf_kernels"
KERAS_RESNET = "resnet50_weights_tf_dim_ordering_tf_kernels"


def zeros(name, input_shape=(64, 64, 3), **overrides):
    model = models.create(name, **overrides)
    x = jax.ShapeDtypeStruct((1, *input_shape), np.float32)
    shapes = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
    return jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), shapes)


def leaves(variables, prefix=""):
    return {p[len(prefix):]: v for (_, p), v in tree.flatten(variables).items() if p.startswith(prefix)}


def assert_loaded(got, converted, prefix):
    """Every converted leaf sits under `prefix` with identical values."""
    got = leaves(got, prefix)
    for path, value in leaves(converted).items():
        np.testing.assert_array_equal(got[path], value, err_msg=prefix + path)


def test_hybrid_loads_both_keras_backbones(keras_ref):
    variables, prep, report = init_from_pretrained("hybrid_vgg16_resnet50", zeros("hybrid_vgg16_resnet50", (224, 224, 3)), "keras", path=keras_ref.dir)
    assert prep == "caffe"
    assert_loaded(variables, convert_keras_h5(keras_ref.file(f"{KERAS_VGG}_notop.h5"), "vgg16"), "vgg16/")
    assert_loaded(variables, convert_keras_h5(keras_ref.file(f"{KERAS_RESNET}_notop.h5"), "resnet50_keras"), "resnet50/")
    assert {p.split("/")[0] for p in report.initialised} == {"adapter", "fc1", "fc2", "predictions"}
    assert "vgg16/block5_conv3/kernel" in report.loaded and "resnet50/conv5_block3_3_bn/var" in report.loaded
    assert [f.rsplit("/", 1)[-1] for f in report.files] == [f"{KERAS_VGG}_notop.h5", f"{KERAS_RESNET}_notop.h5"]
    assert report.dropped == [] and "adapter" in str(report)


def test_unet_resnet50_encoder(keras_ref):
    variables, _, report = init_from_pretrained("unet_resnet50", zeros("unet_resnet50"), "keras", path=keras_ref.dir)
    assert_loaded(variables, convert_keras_h5(keras_ref.file(f"{KERAS_RESNET}_notop.h5"), "resnet50_keras"), "encoder/")
    assert {p.split("/")[0] for p in report.initialised} == {"decoder", "head"}


def test_fcn_resnet18_backbone_from_torchvision(torch_ref):
    variables, prep, report = init_from_pretrained("fcn_resnet18", zeros("fcn_resnet18"), "torchvision", path=torch_ref.dir)
    assert prep == "torch"
    full = convert_torchvision(torch_ref.file("resnet18-f37072fd.pth"), "resnet18")
    notop = {k: v for k, v in full["params"].items() if k != "fc"}
    assert_loaded(variables, {"params": notop, "batch_stats": full["batch_stats"]}, "backbone/")
    assert sorted(report.dropped) == ["resnet18:fc/bias", "resnet18:fc/kernel"]
    assert {p.split("/")[0] for p in report.initialised} == {"final_conv", "transpose_conv"}


def _fc6_fc7_reproduce_fc1_fc2(variables, pool, fc1, fc2, close, label):
    """fc6 (7x7 conv) on the 7x7 block5_pool map equals the reference's fc1; fc7 (1x1) on it equals fc2."""
    p = variables["params"]
    y6 = np.maximum(np.einsum("hwc,hwco->o", pool[0].astype(np.float64), p["fc6"]["kernel"]) + p["fc6"]["bias"], 0)
    close(f"{label} fc6", y6[None], fc1)
    y7 = np.maximum(np.einsum("i,abio->o", fc1[0].astype(np.float64), p["fc7"]["kernel"]) + p["fc7"]["bias"], 0)
    close(f"{label} fc7", y7[None], fc2)


def test_fcn_vgg16_from_keras(keras_ref, close):
    variables, _, report = init_from_pretrained("fcn_vgg16", zeros("fcn_vgg16"), "keras", path=keras_ref.dir)
    assert variables["params"]["fc6"]["kernel"].shape == (7, 7, 512, 4096)
    r = keras_ref.arrays
    _fc6_fc7_reproduce_fc1_fc2(variables, r["vgg16_top/224/block5_pool"], r["vgg16_top/224/fc1"], r["vgg16_top/224/fc2"], close, "keras fcn_vgg16")
    assert sorted(report.dropped) == ["vgg16:predictions/bias", "vgg16:predictions/kernel"]
    assert {p.split("/")[0] for p in report.initialised} == {"score_fr", "score_pool4", "score_pool3", "upscore2", "upscore_pool4", "upscore8"}


def test_fcn_vgg16_from_torchvision(torch_ref, close):
    """torchvision flattens C, H, W: the permuted fc1 must still act as the same 7x7 conv."""
    variables, prep, _ = init_from_pretrained("fcn_vgg16", zeros("fcn_vgg16"), "torchvision", path=torch_ref.dir)
    r = torch_ref.arrays
    _fc6_fc7_reproduce_fc1_fc2(variables, r["vgg16/224/block5_pool"], r["vgg16/224/fc1"], r["vgg16/224/fc2"], close, "torchvision fcn_vgg16")
    assert prep == "torch"


@pytest.mark.parametrize("backbone,source,ref", [("vgg16", "keras", "keras_ref"), ("vgg16", "torchvision", "torch_ref"), ("resnet18", "torchvision", "torch_ref")])
def test_gap_classifier_backbones(request, backbone, source, ref):
    ref = request.getfixturevalue(ref)
    model = models.create("gap_classifier", backbone=backbone)  # the loader asks the model for its parts
    variables, _, report = init_from_pretrained(model, zeros("gap_classifier", backbone=backbone), source, path=ref.dir)
    assert report.initialised == ["dense/bias", "dense/kernel"]
    assert all(p.startswith("backbone/") for p in report.loaded)
    first_conv = "layer1_0/conv1/kernel" if backbone == "resnet18" else "block1_conv1/kernel"
    assert np.abs(leaves(variables, "backbone/")[first_conv]).max() > 0


def test_source_without_that_backbone_is_refused(torch_ref):
    with pytest.raises(ValueError, match="resnet18.*torchvision"):
        init_from_pretrained(models.create("gap_classifier", backbone="resnet18"), zeros("gap_classifier", backbone="resnet18"), "keras", path=torch_ref.dir)
    with pytest.raises(ValueError, match="no pretrained backbone"):
        init_from_pretrained("cnn_small", zeros("cnn_small"), "keras")


def test_shape_mismatch_fails_loudly(torch_ref):
    with pytest.raises(ValueError, match=r"shape of backbone/conv1/kernel: weights \(7, 7, 3, 64\), model \(7, 7, 3, 32\)"):
        init_from_pretrained("fcn_resnet18", zeros("fcn_resnet18", width=32), "torchvision", path=torch_ref.dir)


def test_new_head_needs_dont_load(keras_ref):
    """VGG16 with 10 classes: the 1000-way predictions layer does not fit unless skipped."""
    target = zeros("vgg16", (224, 224, 3), num_classes=10)
    with pytest.raises(ValueError, match=r"shape of predictions/kernel: weights \(4096, 1000\), model \(4096, 10\)[\s\S]*dont_load"):
        init_from_pretrained("vgg16", target, "keras", path=keras_ref.dir)
    variables, _, report = init_from_pretrained("vgg16", target, "keras", path=keras_ref.dir, dont_load=["^predictions/"])
    assert report.skipped == ["predictions/bias", "predictions/kernel"]
    assert report.initialised == ["predictions/bias", "predictions/kernel"]
    assert "fc1/kernel" in report.loaded
    assert not variables["params"]["predictions"]["kernel"].any()  # still the (zero) initialisation


def test_unexpected_and_missing_leaves_fail_loudly(torch_ref):
    target = zeros("resnet18")
    del target["params"]["layer1_0"]["conv1"]  # the file has it, the model does not
    target["params"]["extra"] = {"kernel": np.zeros((3,), np.float32)}  # the model has it, the file does not
    with pytest.raises(ValueError) as err:
        init_from_pretrained("resnet18", target, "torchvision", path=torch_ref.dir)
    assert "unexpected layer1_0/conv1/kernel" in str(err.value) and "missing extra/kernel" in str(err.value)
    _, _, report = init_from_pretrained("resnet18", target, "torchvision", path=torch_ref.dir, dont_load=["layer1_0/conv1/", "^extra/"])
    assert report.skipped == ["extra/kernel", "layer1_0/conv1/kernel"] and report.initialised == ["extra/kernel"]


def test_loaded_leaves_take_target_dtype_and_arrays(torch_ref):
    target = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.bfloat16), zeros("resnet18"))
    variables, _, _ = init_from_pretrained("resnet18", target, "torchvision", path=torch_ref.dir)
    k = variables["params"]["conv1"]["kernel"]
    assert isinstance(k, jax.Array) and k.dtype == jnp.bfloat16 and float(jnp.abs(k).max()) > 0


def test_two_backbones_need_a_directory(keras_ref):
    with pytest.raises(ValueError, match="pass a directory"):
        init_from_pretrained("hybrid_vgg16_resnet50", zeros("hybrid_vgg16_resnet50", (224, 224, 3)), "keras", path=keras_ref.file(f"{KERAS_VGG}_notop.h5"))
