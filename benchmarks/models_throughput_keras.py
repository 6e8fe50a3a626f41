"""Worker for `models_throughput.py --framework keras`: times the Keras peers.

Runs in its own process; imports Keras 3 and its backend only: TensorFlow
(the default, and the one with XLA off unless Keras turns it on), or JAX
(`KERAS_BACKEND=jax`, what the driver picks on GPU hosts that have no
TensorFlow; Keras then jit-compiles its steps with XLA). Steps go through
`predict_on_batch` / `train_on_batch`, Keras' compiled step (a tf.function,
or a jitted function on JAX); the first call (tracing, and XLA compilation where Keras
enables it) is reported as `first_call_s` and excluded from img/s.
"""
from __future__ import annotations

import os

import _common as C

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def unet(keras, h: int, w: int, c: int, num_classes: int, features: int = 64, depth: int = 4):
    """The unpadded U-Net of `fluxseg.models.unet.UNet`: valid 3x3 convs + ReLU,
    2x2 max pools, 2x2 stride-2 up-convolutions without activation,
    centre-cropped skips concatenated after the up-convolution, 1x1 head."""
    L = keras.layers

    def double_conv(x, ch):
        for _ in range(2):
            x = L.Conv2D(ch, 3, activation="relu", kernel_initializer="he_normal")(x)
        return x

    inp = keras.Input((h, w, c))
    x, skips = inp, []
    for i in range(depth):
        x = double_conv(x, features * 2**i)
        skips.append(x)
        x = L.MaxPooling2D(2)(x)
    x = double_conv(x, features * 2**depth)
    for i in reversed(range(depth)):
        ch = features * 2**i
        x = L.Conv2DTranspose(ch, 2, strides=2, kernel_initializer="he_normal")(x)
        dh, dw = skips[i].shape[1] - x.shape[1], skips[i].shape[2] - x.shape[2]
        skip = L.Cropping2D(((dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)))(skips[i])
        x = double_conv(L.Concatenate()([x, skip]), ch)
    return keras.Model(inp, L.Conv2D(num_classes, 1)(x), name="unet")


def _bins(n: int, o: int):
    return [(i * n // o, -(-(i + 1) * n // o)) for i in range(o)]


def vgg16_any_size(keras, h: int, w: int, c: int, n: int):
    """keras.applications.VGG16's conv base and top with the adaptive 7x7
    average pool that fluxseg and torchvision put before fc1, so fc1 has
    25088 inputs at every size (Keras' own Flatten gives (H/32)(W/32)512)."""
    L, ops = keras.layers, keras.ops

    def adaptive_pool(x):  # PyTorch AdaptiveAvgPool2d bins, as fluxseg.models.layers
        x = ops.concatenate([ops.mean(x[:, a:b], axis=1, keepdims=True) for a, b in _bins(x.shape[1], 7)], axis=1)
        return ops.concatenate([ops.mean(x[:, :, a:b], axis=2, keepdims=True) for a, b in _bins(x.shape[2], 7)], axis=2)

    base = keras.applications.VGG16(weights=None, include_top=False, input_shape=(h, w, c))
    x = L.Flatten()(L.Lambda(adaptive_pool)(base.output))
    x = L.Dense(4096, activation="relu", name="fc1")(x)
    x = L.Dense(4096, activation="relu", name="fc2")(x)
    return keras.Model(base.input, L.Dense(n, name="predictions")(x), name="vgg16")


def build(impl: str, model: str, hw, keras):
    (h, w), c, n = hw, C.IN_CHANNELS.get(model, 3), C.NUM_CLASSES[model]
    if impl == "keras_app":
        if model == "vgg16" and (h, w) != (224, 224):
            return vgg16_any_size(keras, h, w, c, n)
        app = {"resnet50_keras": keras.applications.ResNet50, "resnet50": keras.applications.ResNet50,
               "vgg16": keras.applications.VGG16}[model]
        # Logits out, as the other frameworks, so the loss is the same op.
        return app(weights=None, input_shape=(h, w, c), classes=n, classifier_activation=None)
    if impl == "keras_unet":
        return unet(keras, h, w, c, n)
    raise ValueError(f"no Keras build {impl!r} for {model!r}")


def notes(model: str, hw) -> list[str]:
    out = []
    if model == "resnet50":
        out.append("keras.applications.ResNet50 is v1 (stride 2 in the first 1x1 of a block), torchvision and fluxseg's resnet50 are v1.5")
    if model == "vgg16":
        out.append("Keras VGG16 has no dropout in fc1/fc2 (fluxseg and torchvision do)")
        if tuple(hw) != (224, 224):
            out.append(
                f"at {hw[0]}x{hw[1]} the Keras VGG16 is keras.applications' conv base + the same top "
                "behind the adaptive 7x7 pool of fluxseg and torchvision (Keras' own would give fc1 "
                f"{hw[0] // 32}x{hw[1] // 32}x512 inputs)"
            )
    return out


def _tensorflow_backend(a):
    """TensorFlow set up for the device; returns (put-on-device, memory meter, versions)."""
    import tensorflow as tf

    # intra-op threads = the CPUs this process may use, as torch and XLA.
    tf.config.threading.set_intra_op_parallelism_threads(C.cpu_threads())
    gpus = tf.config.list_physical_devices("GPU")
    if a.device == "gpu":
        if not gpus:
            raise RuntimeError("--device gpu asked for, but TensorFlow sees no GPU (tensorflow-cpu?); install tensorflow[and-cuda]")
        for g in gpus:  # grow on demand, so the peak reflects what the model needs
            tf.config.experimental.set_memory_growth(g, True)
    return tf.constant, (_GpuMemory(tf) if a.device == "gpu" else C.CpuMemory()), {"tensorflow": tf.__version__}


def _jax_backend(a):
    import jax

    from models_throughput_jax import _gpu_memory

    return jax.device_put, (_gpu_memory(jax) if a.device == "gpu" else C.CpuMemory()), {"jax": jax.__version__}


def run(a) -> list[dict]:
    import numpy as np

    backend = os.environ["KERAS_BACKEND"]
    to_device, mem, versions = (_jax_backend if backend == "jax" else _tensorflow_backend)(a)
    import keras

    if a.dtype == "bfloat16":
        keras.config.set_dtype_policy("mixed_bfloat16")
    net = build(a.impl, a.model, a.hw, keras)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((a.batch, *a.hw, C.IN_CHANNELS.get(a.model, 3)), np.float32)
    out_shape = net.output_shape  # N, (H, W,) classes
    y = rng.integers(0, out_shape[-1], (a.batch, *out_shape[1:-1])).astype(np.int32)
    net.compile(
        optimizer=keras.optimizers.SGD(C.LR, momentum=C.MOMENTUM),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x, y = to_device(x), to_device(y)  # on the device once, as the other frameworks
    info = {
        "params_m": sum(int(np.prod(w.shape)) for w in net.trainable_weights) / 1e6,
        "output_shape": [a.batch, *out_shape[1:]],
        "keras": keras.__version__,
        "backend": backend, **versions,
        "jit_compile": bool(net.jit_compile),
        "notes": notes(a.model, a.hw),
    }

    results = []
    for mode in a.modes:
        step = (lambda: net.predict_on_batch(x)) if mode == "infer" else (lambda: net.train_on_batch(x, y))
        timing = C.time_steps(step, a.reps, a.warmup, a.steps, mem)
        results.append({"mode": mode, **timing, **info})
    return results


class _GpuMemory:
    def __init__(self, tf):
        self.tf = tf
        self.base = tf.config.experimental.get_memory_info("GPU:0")["current"]

    def start_phase(self):
        self.tf.config.experimental.reset_memory_stats("GPU:0")

    def phase_peak_mib(self):
        peak = self.tf.config.experimental.get_memory_info("GPU:0")["peak"]
        return {"peak_mib": (peak - self.base) / 2**20, "peak_scope": "tf get_memory_info peak, phase"}
