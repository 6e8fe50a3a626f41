"""torchvision state dicts -> fluxseg: same outputs and feature maps as torchvision itself.

References: torchvision models with random (non-trivial) weights saved with
`torch.save(model.state_dict())`, run in a subprocess (see make_reference.py).
Each file is converted here without torch and run through the fluxseg model.
"""
import functools

import numpy as np
import pytest

from fluxseg.weights import convert_torchvision

FILES = {
    "resnet18": "resnet18-f37072fd.pth",
    "resnet34": "resnet34-b627a593.pth",
    "resnet50": "resnet50-0676ba61.pth",
    "resnet101": "resnet101-63fe2227.pth",
    "vgg16": "vgg16-397923af.pth",
}
RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101")
TAPS = {
    **{r: ("relu", "layer1", "layer2", "layer3", "layer4") for r in RESNETS},
    "vgg16": ("block1_conv1", "block1_pool", "block3_conv3", "block4_pool", "block5_conv3", "block5_pool", "fc1", "fc2"),
}
# Last BatchNorm of the last block, whose running statistics the training test checks.
LAST_BN = {"resnet18": "layer4_1/bn2", "resnet34": "layer4_2/bn2", "resnet50": "layer4_2/bn3", "resnet101": "layer4_2/bn3"}


@functools.lru_cache(maxsize=None)
def _converted(directory, arch):
    return convert_torchvision(directory / FILES[arch], arch)


@pytest.mark.parametrize("size", ["224", "200x264"])
@pytest.mark.parametrize("arch", RESNETS + ("vgg16",))
def test_inference_matches_torchvision(torch_ref, flax_forward, close, arch, size):
    """Logits and named feature maps, square and non-square (sides not multiples of 32)."""
    ref = torch_ref.arrays
    out, taps = flax_forward(arch)(_converted(torch_ref.dir, arch), ref[f"x/{size}"])
    close(f"torchvision {arch} {size} logits", out, ref[f"{arch}/{size}/output"])
    for tap in TAPS[arch]:
        close(f"torchvision {arch} {size} {tap}", taps[tap], ref[f"{arch}/{size}/{tap}"])


def _bn(stats, path):
    node = stats
    for part in path.split("/"):
        node = node[part]
    return node


@pytest.mark.parametrize("arch", RESNETS)
def test_training_mode_matches_torchvision(torch_ref, flax_forward, close, arch):
    """train=True uses batch statistics, and one update of the running statistics matches PyTorch's.

    PyTorch momentum 0.1 weighs the new batch statistic; the fluxseg ResNets
    use Flax momentum 0.9, which weighs the old value: the same update. The
    running mean must match exactly. PyTorch mixes in the *unbiased* batch
    variance, Flax the biased one, so the expected Flax variance is PyTorch's
    with the new term rescaled by (n - 1) / n.
    """
    ref = torch_ref.arrays
    variables = _converted(torch_ref.dir, arch)
    out, taps, stats = flax_forward(arch, train=True)(variables, ref["x/train"])
    close(f"torchvision {arch} train logits", out, ref[f"{arch}/train/output"])
    for tap in TAPS[arch]:
        close(f"torchvision {arch} train {tap}", taps[tap], ref[f"{arch}/train/{tap}"])
    for key, path, tap in (("bn1", "bn1", "relu"), ("layer4_last", LAST_BN[arch], "layer4")):
        n = int(np.prod(taps[tap].shape[:3]))  # values per channel in the batch
        before = _bn(variables["batch_stats"], path)["var"]
        assert np.allclose(before, ref[f"{arch}/train/stats/{key}/var_before"])
        torch_var = ref[f"{arch}/train/stats/{key}/var"]
        expected_var = 0.9 * before + (torch_var - 0.9 * before) * (n - 1) / n
        close(f"torchvision {arch} train running_mean {key}", _bn(stats, path)["mean"], ref[f"{arch}/train/stats/{key}/mean"])
        close(f"torchvision {arch} train running_var {key}", _bn(stats, path)["var"], expected_var)
