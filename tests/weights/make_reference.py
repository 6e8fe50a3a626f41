"""Builds reference networks in Keras or torchvision with random weights, saves them in the real formats, records outputs.

    python make_reference.py keras|torch OUTDIR

Run by tests/weights/conftest.py in a subprocess, one per framework: importing
TensorFlow and torch into one process crashes here, and the pytest process
imports neither. Writes into OUTDIR:
  - the weight files under their official names (Keras' own legacy HDF5
    writer; `torch.save(model.state_dict())`), plus a legacy-format torch copy;
  - reference.npz: inputs ('x/<size>') and, per case, outputs and named
    feature maps in NHWC ('<case>/<tap>'), and BatchNorm statistics after one
    training-mode pass ('<case>/stats/<layer>/<mean|var>').
Weights are made non-trivial on purpose (He-scaled kernels, random biases,
random BN gamma/beta, BN statistics calibrated on data then perturbed), so a
wrong transpose, a swapped mean/var or a lost bias makes the comparison fail.
BN gamma is drawn below 1, and small for the BN that closes a residual
branch, so that, as in a trained network, the random network does not
amplify float32 rounding from block to block: with gamma ~ U(0.5, 1.5) the
float32-vs-float64 gap of *either* framework alone reached 3e-5 (inference)
and 7e-5 (training mode) of the output scale at ResNet50's last block,
too close to the 1e-4 bound to tell a conversion bug from rounding.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

SIZES = {"224": (1, 224, 224, 3), "200x264": (1, 200, 264, 3)}
TRAIN_SHAPE = (2, 104, 136, 3)  # small: one training-mode pass only checks batch statistics
rng = np.random.default_rng(0)
INPUTS = {f"x/{k}": rng.standard_normal(s).astype(np.float32) for k, s in SIZES.items()}
INPUTS["x/train"] = rng.standard_normal(TRAIN_SHAPE).astype(np.float32)
GAMMA = (0.5, 1.0)
BRANCH_END_GAMMA = (0.1, 0.4)
CALIBRATION = rng.standard_normal((2, 64, 64, 3)).astype(np.float32)


def _bn_perturb(mean, var):
    """Statistics near the real ones (so activations keep their scale) but not equal to them."""
    std = np.sqrt(var)
    return (
        mean + 0.2 * std * rng.standard_normal(mean.shape),
        var * rng.uniform(0.7, 1.4, var.shape),
    )


# ----------------------------------------------------------------------------- Keras
VGG_TAPS = ["block1_conv1", "block1_pool", "block3_conv3", "block4_pool", "block5_conv3", "block5_pool"]
KERAS_RESNET_TAPS = ["conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"]
KERAS_STATS = ["conv1_bn", "conv3_block1_0_bn", "conv5_block3_3_bn"]


def keras_main(out: Path, results: dict):
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    import h5py

    keras.utils.set_random_seed(0)

    def save(model, name):
        with h5py.File(out / name, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, model)

    def randomise(model):
        """He-scaled kernels and random biases/gamma/beta (Keras inits biases and beta at 0, gamma at 1)."""
        for layer in model.layers:
            ws = layer.get_weights()
            if not ws:
                continue
            if isinstance(layer, keras.layers.BatchNormalization):
                g, b, m, v = ws
                gamma = rng.uniform(*(BRANCH_END_GAMMA if layer.name.endswith("_3_bn") else GAMMA), g.shape)
                layer.set_weights([gamma, 0.2 * rng.standard_normal(b.shape), m, v])
            else:
                k, b = ws
                fan_in = np.prod(k.shape[:-1])
                layer.set_weights([rng.standard_normal(k.shape) * np.sqrt(2.0 / fan_in), 0.1 * rng.standard_normal(b.shape)])

    def calibrate(model):
        bns = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
        for l in bns:
            l.momentum = 0.0  # moving statistics := this batch's statistics
        model([CALIBRATION], training=True)
        for l in bns:
            l.momentum = 0.99
            g, b, m, v = l.get_weights()
            l.set_weights([g, b, *_bn_perturb(m, v)])

    def taps(model, names, x, case, training=False):
        fmodel = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
        for n, y in zip(names, fmodel([x], training=training)):
            results[f"{case}/{n}"] = np.asarray(y)

    # VGG16 with top: Keras' Flatten fixes it to 224x224.
    m = keras.applications.VGG16(weights=None, include_top=True, classifier_activation=None)
    randomise(m)
    save(m, "vgg16_weights_tf_dim_ordering_tf_kernels.h5")
    taps(m, VGG_TAPS + ["fc1", "fc2", "predictions"], INPUTS["x/224"], "vgg16_top/224")
    # VGG16 notop takes any size: the non-square case (224 is covered by the model with top).
    m = keras.applications.VGG16(weights=None, include_top=False, input_shape=(None, None, 3))
    randomise(m)
    save(m, "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
    taps(m, VGG_TAPS, INPUTS["x/200x264"], "vgg16_notop/200x264")

    # ResNet50 (v1) with top on a size-agnostic input (global pooling before the classifier).
    for top, name in ((True, "resnet50_weights_tf_dim_ordering_tf_kernels.h5"), (False, "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")):
        case = "resnet50_top" if top else "resnet50_notop"
        m = keras.applications.ResNet50(
            weights=None, include_top=top, input_tensor=keras.Input((None, None, 3)), classifier_activation=None
        )
        randomise(m)
        calibrate(m)
        save(m, name)
        names = KERAS_RESNET_TAPS + (["predictions"] if top else [])
        for size in SIZES if top else ["200x264"]:  # the notop file: one size is enough on top of the full model's two
            taps(m, names, INPUTS[f"x/{size}"], f"{case}/{size}")
        if top:
            taps(m, names, INPUTS["x/train"], f"{case}/train", training=True)  # updates moving statistics
            for layer in KERAS_STATS:
                _, _, mean, var = m.get_layer(layer).get_weights()
                results[f"{case}/train/stats/{layer}/mean"] = mean
                results[f"{case}/train/stats/{layer}/var"] = var


# ----------------------------------------------------------------------------- torch
def torch_main(out: Path, results: dict):
    import torch
    import torchvision
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    nhwc = lambda t: t.detach().numpy().transpose(0, 2, 3, 1) if t.ndim == 4 else t.detach().numpy()  # noqa: E731
    to_t = lambda x: torch.from_numpy(x.transpose(0, 3, 1, 2).copy())  # noqa: E731

    def randomise(model):
        with torch.no_grad():
            for mod in model.modules():
                if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
                    fan_in = mod.weight[0].numel()
                    mod.weight.normal_(0.0, float(np.sqrt(2.0 / fan_in)))
                    if mod.bias is not None:
                        mod.bias.normal_(0.0, 0.1)
                elif isinstance(mod, torch.nn.BatchNorm2d):
                    mod.weight.uniform_(*GAMMA)
                    mod.bias.normal_(0.0, 0.2)
            for block in model.modules():  # the BN that closes each residual branch
                last = getattr(block, "bn3", None) or (getattr(block, "bn2", None) if hasattr(block, "conv2") else None)
                if last is not None:
                    last.weight.uniform_(*BRANCH_END_GAMMA)

    def calibrate(model):
        bns = [mod for mod in model.modules() if isinstance(mod, torch.nn.BatchNorm2d)]
        for mod in bns:
            mod.reset_running_stats()
            mod.momentum = None  # cumulative average: one batch -> its statistics
        model.train()
        with torch.no_grad():
            model(to_t(CALIBRATION))
        with torch.no_grad():
            for mod in bns:
                mod.momentum = 0.1
                mean, var = _bn_perturb(mod.running_mean.numpy(), mod.running_var.numpy())
                mod.running_mean.copy_(torch.from_numpy(mean.astype(np.float32)))
                mod.running_var.copy_(torch.from_numpy(var.astype(np.float32)))

    def run(model, named, x, case):
        feats = {}
        hooks = [mod.register_forward_hook(lambda _m, _i, o, n=n: feats.__setitem__(n, nhwc(o.clone()))) for n, mod in named.items()]
        with torch.no_grad():
            y = model(to_t(x))
        for h in hooks:
            h.remove()
        for n, v in feats.items():
            results[f"{case}/{n}"] = v
        results[f"{case}/output"] = nhwc(y)

    files = {
        "resnet18": "resnet18-f37072fd.pth",
        "resnet34": "resnet34-b627a593.pth",
        "resnet50": "resnet50-0676ba61.pth",
        "resnet101": "resnet101-63fe2227.pth",
    }
    for arch, fname in files.items():
        model = getattr(torchvision.models, arch)(weights=None)
        randomise(model)
        calibrate(model)
        torch.save(model.state_dict(), out / fname)
        if arch == "resnet18":  # the pre-1.6 layout, as in older published files
            torch.save(model.state_dict(), out / "resnet18_legacy.pth", _use_new_zipfile_serialization=False)
        named = {"relu": model.relu, **{f"layer{i}": getattr(model, f"layer{i}") for i in range(1, 5)}}
        model.eval()
        for size in SIZES:
            run(model, named, INPUTS[f"x/{size}"], f"{arch}/{size}")
        model.train()
        last_bn = "bn3" if arch in ("resnet50", "resnet101") else "bn2"
        stats = {"bn1": model.bn1, "layer4_last": getattr(model.layer4[-1], last_bn)}
        before = {k: (m.running_mean.clone(), m.running_var.clone()) for k, m in stats.items()}
        run(model, named, INPUTS["x/train"], f"{arch}/train")
        for k, m in stats.items():
            results[f"{arch}/train/stats/{k}/mean"] = m.running_mean.numpy().copy()
            results[f"{arch}/train/stats/{k}/var"] = m.running_var.numpy().copy()
            results[f"{arch}/train/stats/{k}/var_before"] = before[k][1].numpy()

    model = torchvision.models.vgg16(weights=None)
    randomise(model)
    torch.save(model.state_dict(), out / "vgg16-397923af.pth")
    model.eval()
    f, c = model.features, model.classifier
    named = {
        "block1_conv1": f[1], "block1_pool": f[4], "block3_conv3": f[15], "block4_pool": f[23],
        "block5_conv3": f[29], "block5_pool": f[30], "fc1": c[1], "fc2": c[4],
    }
    for size in SIZES:
        run(model, named, INPUTS[f"x/{size}"], f"vgg16/{size}")

    # Odd tensors for the pickle reader: non-contiguous, half, int64, bool, scalar.
    misc = {
        "transposed": torch.arange(12, dtype=torch.float32).reshape(3, 4).t(),
        "half": torch.linspace(-2, 2, 5, dtype=torch.float16),
        "long": torch.tensor([1, -2, 3 << 40]),
        "flag": torch.tensor([True, False]),
        "scalar": torch.tensor(7),
    }
    torch.save(misc, out / "misc.pth")
    torch.save(misc, out / "misc_legacy.pth", _use_new_zipfile_serialization=False)
    for k, v in misc.items():
        results[f"misc/{k}"] = v.numpy()
    (out / "imagenet_categories.json").write_text(json.dumps(list(_IMAGENET_CATEGORIES)))


def main(argv):
    framework, out = argv[0], Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    results = dict(INPUTS)
    {"keras": keras_main, "torch": torch_main}[framework](out, results)
    np.savez(out / "reference.npz", **results)
    (out / "done").write_text("ok")


if __name__ == "__main__":
    main(sys.argv[1:])
