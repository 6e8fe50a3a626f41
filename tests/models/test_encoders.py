"""The encoder contract: every encoder's pyramid names real maps of the stated stride and channels."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fluxseg import models
from fluxseg.models import encoders
from fluxseg.models.inspect import abstract_variables


@pytest.mark.parametrize("name", sorted(encoders.ENCODERS))
def test_pyramid_matches_the_feature_maps(name):
    enc = encoders.create(name)
    x = jax.ShapeDtypeStruct((1, 64, 96, 3), jnp.float32)
    v = abstract_variables(enc, (64, 96, 3))
    feats = jax.eval_shape(lambda v, x: enc.apply(v, x, return_features=True), v, x)
    pyramid = encoders.pyramid(enc)
    strides = [f.stride for f in pyramid]
    assert strides == sorted(set(strides)) and strides[-1] == 32   # finest first, one per stride
    for f in pyramid:
        assert feats[f.name].shape == (1, 64 // f.stride, 96 // f.stride, f.channels), f


@pytest.mark.parametrize("name", sorted(encoders.ENCODERS))
def test_returned_features_and_taps_are_the_same_named_maps(name):
    """One set of names: what models read (the returned dict) is what inspection sees (the taps)."""
    enc = encoders.create(name)
    x = jax.random.uniform(jax.random.key(0), (1, 32, 64, 3))
    v = enc.init(jax.random.key(1), x)
    feats, state = enc.apply(v, x, return_features=True, mutable=["intermediates"])
    taps = state["intermediates"]
    assert set(feats) == set(taps) and {f.name for f in encoders.pyramid(enc)} <= set(feats)
    for k in feats:
        np.testing.assert_array_equal(feats[k], taps[k], err_msg=k)
    assert encoders.deepest(enc, feats) is feats[encoders.pyramid(enc)[-1].name]


def test_unknown_encoder_and_option_are_named():
    with pytest.raises(ValueError, match="unknown encoder 'vgg19'.*resnet50_keras"):
        encoders.create("vgg19")
    with pytest.raises(TypeError, match="encoder vgg16 has no option.*'width'"):
        encoders.create("vgg16", width=8)


def test_bn_axis_name_reaches_only_encoders_with_batchnorm():
    assert encoders.create("resnet18", bn_axis_name="batch").bn_axis_name == "batch"
    assert not hasattr(encoders.create("vgg16", bn_axis_name="batch"), "bn_axis_name")


@pytest.mark.parametrize("model,kwargs,prefix,backbone", [
    ("encoder_unet", {"encoder": "vgg16"}, "encoder/", "vgg16"),
    ("encoder_fcn", {"encoder": "resnet50"}, "backbone/", "resnet50"),
    ("gap_classifier", {"backbone": "resnet34"}, "backbone/", "resnet34"),
    ("unet_resnet50", {}, "encoder/", "resnet50_keras"),
])
def test_models_report_their_encoder_as_the_pretrained_part(model, kwargs, prefix, backbone):
    (part,) = models.pretrained_parts(models.create(model, **kwargs))
    assert (part.backbone, part.into, part.claimed, part.include_top) == (backbone, prefix, (prefix,), False)


def test_resnet_of_an_unpublished_depth_has_no_pretrained_part():
    from fluxseg.models.resnet import BasicBlock, ResNet
    assert models.pretrained_parts(ResNet(stage_sizes=(1, 1, 1, 1), block=BasicBlock)) == ()
    assert models.pretrained_parts(models.create("resnet101"))[0].backbone == "resnet101"
