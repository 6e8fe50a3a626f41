"""Parameter counts and output shapes of every registered model.

Counts are the reference libraries' figures (Keras summary(), torchvision
sum(p.numel())); shapes are computed with jax.eval_shape, so nothing is
allocated and the big networks cost only tracing time.
"""
import jax
import jax.numpy as jnp
import pytest

from fluxseg import models
from fluxseg.models import unet
from fluxseg.models.inspect import abstract_variables


def shape_of(model, hwc, batch=1):
    v = abstract_variables(model, hwc, batch)
    out = jax.eval_shape(lambda v, x: model.apply(v, x), v, jax.ShapeDtypeStruct((batch, *hwc), jnp.float32))
    return out.shape, models.count_params(v, models.frozen_patterns(model))


@pytest.mark.parametrize(
    "name,overrides,hwc,total,trainable,out",
    [
        ("unet", {}, (572, 572, 1), 31_030_658, 31_030_658, (1, 388, 388, 2)),
        ("cnn_small", {}, (150, 150, 3), 3_453_121, 3_453_121, (1, 1)),
        ("vgg16", {}, (224, 224, 3), 138_357_544, 138_357_544, (1, 1000)),
        ("vgg16", {"include_top": False}, (224, 224, 3), 14_714_688, 14_714_688, (1, 7, 7, 512)),
        ("hybrid_vgg16_resnet50", {}, (224, 224, 3), 40_932_045, 26_164_237, (1, 10)),
        ("unet_resnet50", {"full_resolution": False, "num_classes": 1}, (256, 256, 3), 40_969_985, 40_969_985 - 53_120, (1, 128, 128, 1)),
        # torchvision: sum(p.numel() for p in model.parameters()); BN statistics are buffers there.
        ("resnet18", {}, (224, 224, 3), 11_689_512 + 9_600, 11_689_512, (1, 1000)),
        ("resnet34", {}, (224, 224, 3), 21_797_672 + 17_024, 21_797_672, (1, 1000)),
        ("resnet50", {}, (224, 224, 3), 25_557_032 + 53_120, 25_557_032, (1, 1000)),
        ("resnet101", {}, (224, 224, 3), 44_549_160 + 105_344, 44_549_160, (1, 1000)),
        # Keras: ResNet50().summary() -> 25,636,712 total, 53,120 non-trainable.
        ("resnet50_keras", {}, (224, 224, 3), 25_636_712, 25_583_592, (1, 1000)),
        ("resnet50_keras", {"include_top": False}, (224, 224, 3), 23_587_712, 23_534_592, (1, 7, 7, 2048)),
        # VGG16 base frozen, Dense(1) on the 512 pooled features (the GAP classifier's default).
        ("gap_classifier", {}, (150, 150, 3), 14_714_688 + 513, 513, (1, 1)),
    ],
)
def test_parameter_counts_and_output_shape(name, overrides, hwc, total, trainable, out):
    shape, counts = shape_of(models.create(name, **overrides), hwc)
    assert shape == out
    assert counts["total"] == total
    assert counts["trainable"] == trainable
    assert counts["non_trainable"] == total - trainable


def test_fcn_resnet18_parameter_count_is_backbone_plus_head():
    # d2l: ResNet-18 without avgpool/fc (11,176,512) + 1x1 conv 512->21 + ConvTranspose(21, 21, 64).
    _, counts = shape_of(models.create("fcn_resnet18"), (320, 480, 3))
    assert counts["trainable"] == 11_176_512 + (512 * 21 + 21) + (64 * 64 * 21 * 21 + 21)


@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
@pytest.mark.parametrize("hw", [(320, 480), (352, 512), (300, 470), (97, 61)])
def test_fcn_resnet18_output_has_the_input_size(variant, hw):
    shape, _ = shape_of(models.create("fcn_resnet18", variant=variant, width=8), (*hw, 3))
    assert shape == (1, *hw, 21)


def test_fcn_resnet18_features_are_one_32nd():
    model = models.create("resnet18", include_top=False)
    shape, _ = shape_of(model, (320, 480, 3))
    assert shape == (1, 10, 15, 512)


@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
@pytest.mark.parametrize("hw", [(500, 500), (320, 480), (97, 130)])
def test_fcn_vgg16_caffe_offsets_give_the_input_size(variant, hw):
    shape, counts = shape_of(models.create("fcn_vgg16", variant=variant), (*hw, 3))
    assert shape == (1, *hw, 21)
    # the final bilinear upsampling is fixed, as in Long et al.'s released nets
    k = {"32s": 64, "16s": 32, "8s": 16}[variant]
    assert counts["non_trainable"] == k * k * 21 * 21


@pytest.mark.parametrize("hw", [(256, 256), (320, 224), (100, 130)])
def test_unet_resnet50_is_full_resolution_by_default(hw):
    shape, _ = shape_of(models.create("unet_resnet50", num_classes=3), (*hw, 3))
    assert shape == (1, *hw, 3)


def test_unet_valid_sizes_and_output_arithmetic():
    sizes = unet.valid_input_sizes(1, 600)
    assert sizes[0] == 188 and 572 in sizes
    assert all((n - 124) % 16 == 0 for n in sizes)
    assert unet.output_size(572) == 388 and unet.output_size(188) == 4
    shape, _ = shape_of(models.create("unet", features=4), (412, 204, 1))
    assert shape == (1, unet.output_size(412), unet.output_size(204), 2)


def test_unet_invalid_size_names_the_nearest_valid_sizes():
    with pytest.raises(ValueError, match=r"Nearest valid sizes: 556, 572"):
        shape_of(models.create("unet", features=4), (570, 572, 1))
    with pytest.raises(ValueError, match=r"divisible by 16"):
        shape_of(models.create("unet", features=4, padding="same"), (100, 96, 1))
    shape, _ = shape_of(models.create("unet", features=4, padding="same", num_classes=5), (96, 64, 3))
    assert shape == (1, 96, 64, 5)


def test_hybrid_accepts_multiples_of_32_and_explains_others():
    shape, _ = shape_of(models.create("hybrid_vgg16_resnet50", num_classes=3), (128, 96, 3))
    assert shape == (1, 3)
    with pytest.raises(ValueError, match="multiples of 32"):
        shape_of(models.create("hybrid_vgg16_resnet50"), (200, 224, 3))


def test_registry_errors_are_helpful():
    with pytest.raises(ValueError, match="registered models: .*fcn_resnet18"):
        models.create("fcn_resnet19")
    with pytest.raises(TypeError, match="has no option.*'varient'.*variant"):
        models.create("fcn_resnet18", varient="8s")
    with pytest.raises(ValueError, match="variant must be one of"):
        shape_of(models.create("fcn_resnet18", variant="4s", width=8), (64, 64, 3))
    assert set(models.names()) >= {
        "vgg16", "resnet18", "resnet34", "resnet50", "resnet101", "resnet50_keras", "hybrid_vgg16_resnet50",
        "unet", "unet_resnet50", "fcn_resnet18", "fcn_vgg16", "cnn_small", "gap_classifier",
    }


def test_unet_norm_none_from_the_command_line_is_the_papers_graph():
    # --config.model_kwargs.norm=none: a string, since ml_collections cannot carry None into a str key.
    plain, named = (abstract_variables(models.create("unet", features=4, padding="same", norm=n), (32, 32, 3), 1)
                    for n in (None, "none"))
    assert jax.tree_util.tree_structure(plain) == jax.tree_util.tree_structure(named)
    assert "batch_stats" not in named and "bias" in named["params"]["down1_conv1"]
    with_bn = abstract_variables(models.create("unet", features=4, padding="same", norm="batch"), (32, 32, 3), 1)
    assert "bias" not in with_bn["params"]["down1_conv1"]
    with pytest.raises(ValueError, match="norm must be None or 'none'"):
        shape_of(models.create("unet", features=4, padding="same", norm="None"), (32, 32, 3))
