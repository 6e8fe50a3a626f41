"""Reference Grad-CAM maps, activations and filter-ascent gradients from Keras or torch, on random weights.

    python make_reference.py keras|torch OUTDIR [INPUTS.npz]

Run by tests/viz/conftest.py in a subprocess per framework (TensorFlow and
torch crash when imported into one process; the pytest process imports
neither). Writes the weight files in their real formats (Keras' legacy HDF5
writer; `torch.save` of a torchvision state dict), which the tests convert
with `fluxseg.weights`, and reference.npz with the reference numbers:

keras: 'vgg16/gradcam' — the raw map sum_k mean_ij(dy/dA^k) A^k at
  block5_conv3 for logits (before softmax) of two images with different
  classes, by GradientTape as in DLwP listing 5.42; 'vgg16/logits';
  'filters/loss', 'filters/grad' — DLwP listings 5.32-5.34 (mean activation
  of one block3_conv1 filter, gradient / (RMS + 1e-5)) on the start images
  the pytest process wrote to INPUTS.npz; 'cnn_small/<layer>' — the first
  eight layer outputs of the book's small convnet at 80x80.
torch: '<arch>/gradcam' and '<arch>/logits' for resnet18 and resnet50 at layer4
  (autograd on a forward hook's output).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

rng = np.random.default_rng(0)
X224 = (rng.standard_normal((2, 224, 224, 3)) * 60).astype(np.float32)
VGG_TARGETS = np.array([386, 7])
XRES = rng.standard_normal((2, 96, 128, 3)).astype(np.float32)
RES_TARGETS = np.array([3, 500])
XSMALL = rng.uniform(0, 1, (2, 80, 80, 3)).astype(np.float32)
CNN_SMALL_LAYERS = ["conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1", "conv2d_2", "max_pooling2d_2", "conv2d_3", "max_pooling2d_3"]


def keras_main(out: Path, results: dict, inputs: dict):
    import h5py
    import keras
    import tensorflow as tf
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(0)

    def save(model, name):
        with h5py.File(out / name, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, model)

    def randomise(model):
        for layer in model.layers:
            ws = layer.get_weights()
            if ws:
                k, b = ws
                layer.set_weights([rng.standard_normal(k.shape) * np.sqrt(2.0 / np.prod(k.shape[:-1])), 0.1 * rng.standard_normal(b.shape)])

    # Grad-CAM on VGG16 with its top (DLwP listing 5.42, scores before softmax, one map per image).
    vgg = keras.applications.VGG16(weights=None, include_top=True, classifier_activation=None)
    randomise(vgg)
    save(vgg, "vgg16_weights_tf_dim_ordering_tf_kernels.h5")
    cam_model = keras.Model(vgg.inputs, [vgg.get_layer("block5_conv3").output, vgg.output])
    x = tf.constant(X224)
    with tf.GradientTape() as tape:
        acts, logits = cam_model(x)
        scores = tf.gather(logits, VGG_TARGETS, axis=1, batch_dims=0)
        scores = tf.linalg.diag_part(scores)
    grads = tape.gradient(scores, acts)
    weights = tf.reduce_mean(grads, axis=(1, 2))  # per image
    results["vgg16/gradcam"] = np.einsum("bhwc,bc->bhw", acts.numpy().astype(np.float64), weights.numpy().astype(np.float64))
    results["vgg16/logits"] = logits.numpy()

    # First step of the DLwP filter ascent on the same convolution weights (no top: any input size).
    base = keras.applications.VGG16(weights=None, include_top=False, input_shape=(None, None, 3))
    for layer in base.layers:
        if layer.get_weights():
            layer.set_weights(vgg.get_layer(layer.name).get_weights())
    feat = keras.Model(base.inputs, base.get_layer("block3_conv1").output)
    x0, filters = tf.constant(inputs["filters/x0"]), inputs["filters/ids"]
    losses, grads = [], []
    for i, f in enumerate(filters):  # the book's loop: one filter, one image at a time
        xi = x0[i : i + 1]
        with tf.GradientTape() as tape:
            tape.watch(xi)
            loss = tf.reduce_mean(feat(xi)[:, :, :, int(f)])
        g = tape.gradient(loss, xi)
        g /= tf.sqrt(tf.reduce_mean(tf.square(g))) + 1e-5
        losses.append(float(loss))
        grads.append(g.numpy()[0])
    results["filters/loss"] = np.array(losses)
    results["filters/grad"] = np.stack(grads)

    # The book's small convnet (DLwP listing 5.5) at 80x80; the first eight layer outputs.
    layers = keras.layers
    seq = [keras.Input((80, 80, 3))]
    for i, ch in enumerate((32, 64, 128, 128)):
        seq += [layers.Conv2D(ch, 3, activation="relu", name=CNN_SMALL_LAYERS[2 * i]), layers.MaxPooling2D(2, name=CNN_SMALL_LAYERS[2 * i + 1])]
    seq += [layers.Flatten(name="flatten"), layers.Dropout(0.5), layers.Dense(512, activation="relu", name="dense"), layers.Dense(1, name="dense_1")]
    small = keras.Sequential(seq)
    randomise(small)
    save(small, "cnn_small.h5")
    taps = keras.Model(small.inputs, [small.get_layer(n).output for n in CNN_SMALL_LAYERS])
    for n, y in zip(CNN_SMALL_LAYERS, taps(XSMALL)):
        results[f"cnn_small/{n}"] = np.asarray(y)


def torch_main(out: Path, results: dict, inputs: dict):
    import torch
    import torchvision

    torch.manual_seed(0)
    torch.set_num_threads(1)
    files = {"resnet18": "resnet18-f37072fd.pth", "resnet50": "resnet50-0676ba61.pth"}
    for arch, fname in files.items():
        model = getattr(torchvision.models, arch)(weights=None)
        bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        with torch.no_grad():  # non-trivial BatchNorm: random affine, statistics from a batch
            for m in bns:
                m.weight.uniform_(0.5, 1.0)
                m.bias.normal_(0.0, 0.2)
                m.momentum = None
                m.reset_running_stats()
            model.train()
            model(torch.randn(2, 3, 64, 64))
        model.eval()
        torch.save(model.state_dict(), out / fname)
        saved = {}
        model.layer4.register_forward_hook(lambda _m, _i, o: saved.__setitem__("a", o))
        x = torch.from_numpy(XRES.transpose(0, 3, 1, 2).copy())
        logits = model(x)
        scores = logits[torch.arange(len(RES_TARGETS)), torch.from_numpy(RES_TARGETS)]
        (grads,) = torch.autograd.grad(scores.sum(), saved["a"])
        w = grads.mean(dim=(2, 3))  # [B, C], per image
        cam = torch.einsum("bchw,bc->bhw", saved["a"].double(), w.double())
        results[f"{arch}/gradcam"] = cam.detach().numpy()
        results[f"{arch}/logits"] = logits.detach().numpy()


def main(argv):
    framework, out = argv[0], Path(argv[1])
    inputs = dict(np.load(argv[2])) if len(argv) > 2 else {}
    out.mkdir(parents=True, exist_ok=True)
    results = {"x224": X224, "vgg16/targets": VGG_TARGETS, "xres": XRES, "res/targets": RES_TARGETS, "xsmall": XSMALL}
    {"keras": keras_main, "torch": torch_main}[framework](out, results, inputs)
    np.savez(out / "reference.npz", **results)
    (out / "done").write_text("ok")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main(sys.argv[1:])
