"""What every export format shares: the serving function, the sizes it takes, the metadata.

The serving function is what a consumer calls: uint8 images [N, H, W, C]
(C = 3 for RGB runs, 1 for grey ones) -> the run's preprocessing -> the model
in eval mode (BatchNorm reads its running statistics) -> float32
``logits``, ``probs`` (softmax; sigmoid for a one-logit binary head) and int32
``class_ids`` (argmax; logit > 0 for the binary head: `fluxseg.tasks.class_ids`).
The weights are part of it. It is traced with the plain ops
(`fluxseg.runtime.backend.plain_forms`), never the CPU rewrites, so the
artifact does not depend on the machine that exported it.

Sizes: a model's arithmetic decides which image sides it takes. `Sizes`
says it as ``step * k + offset`` for k >= 1 (any side: step 1; the padded
U-Net: multiples of 16; the unpadded U-Net: 16 * k + 172, i.e. 188, 204, ...)
or one fixed side (step 0), and becomes a `jax.export` symbolic dimension.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable, Optional, Union

import jax
import jax.numpy as jnp
import ml_collections

from fluxseg import tasks
from fluxseg.runtime.backend import plain_forms

FORMATS = ("stablehlo", "savedmodel", "onnx")
OUTPUTS = ("logits", "probs", "class_ids")
INPUT = "images"
METADATA = "model.json"
STEPS = (1, 2, 4, 8, 16, 32, 64)  # side multiples tried, smallest first


class ExportError(ValueError):
    """An export that cannot be made; the message says what and what to do."""


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Image sides ``step * k + offset`` (k >= 1); step 0: exactly ``offset``."""
    step: int
    offset: int = 0

    def examples(self, count: int = 3) -> list[int]:
        if self.step == 0:
            return [self.offset]
        return [self.step * k + self.offset for k in range(1, count + 1)]

    def symbol(self, var: str) -> str:
        """The side as a `jax.export.symbolic_shape` term in variable ``var``."""
        if self.step == 0:
            return str(self.offset)
        term = var if self.step == 1 else f"{self.step}*{var}"
        return f"{term} + {self.offset}" if self.offset else term

    def describe(self) -> str:
        if self.step == 0:
            return f"exactly {self.offset}"
        if self.step == 1 and not self.offset:
            return "any side >= 1"
        if not self.offset:
            return f"multiples of {self.step}"
        return (f"{self.step}*k + {self.offset} for k >= 1 ("
                + ", ".join(map(str, self.examples())) + ", ...)")

    def to_json(self) -> dict:
        return {"step": self.step, "offset": self.offset, "rule": self.describe()}


@dataclasses.dataclass
class Serving:
    """The function an artifact holds, with what its consumer needs to know."""
    fn: Callable                 # uint8 [N, H, W, C] -> {'logits', 'probs', 'class_ids'}
    channels: int
    batch: Optional[int]         # None: any
    sizes: tuple                 # (Sizes for H, Sizes for W)
    metadata: dict

    def symbolic_shape(self) -> str:
        batch = "b" if self.batch is None else str(self.batch)
        return f"{batch}, {self.sizes[0].symbol('h')}, {self.sizes[1].symbol('w')}, {self.channels}"

    def input_spec(self) -> jax.ShapeDtypeStruct:
        shape = jax.export.symbolic_shape(self.symbolic_shape())
        return jax.ShapeDtypeStruct(shape, jnp.uint8)

    def dim_rules(self) -> dict:
        """{dimension variable: (input axis, step, offset, label)} of the symbolic input."""
        rules = {} if self.batch is not None else {"b": (0, 1, 0, "batch")}
        for axis, (var, label, s) in enumerate(zip("hw", ("height", "width"), self.sizes), start=1):
            if s.step:
                rules[var] = (axis, s.step, s.offset, label)
        return rules


    def traced(self):
        """The serving function's ClosedJaxpr on `input_spec`, outputs in OUTPUTS order."""
        def outputs(x):
            out = self.fn(x)  # once: a call per output would trace the model once for each
            return tuple(out[k] for k in OUTPUTS)
        with plain_forms():
            return jax.make_jaxpr(outputs)(self.input_spec())


def probabilities(logits):
    """Softmax over the classes; a single logit (binary head) -> its sigmoid."""
    if logits.shape[-1] == 1:
        return jax.nn.sigmoid(logits)
    return jax.nn.softmax(logits, axis=-1)


def _model_for(restored, dtype: str):
    """The restored module, rebuilt with compute ``dtype`` if the run trained in another."""
    if dtype == restored.config.dtype:
        return restored.model
    from fluxseg.train import build
    config = ml_collections.ConfigDict(restored.config.to_dict())
    config.dtype = dtype
    return build.model(config)


def serving_fn(model, variables, preprocess) -> Callable:
    """uint8 [N, H, W, C] -> {'logits', 'probs', 'class_ids'}; the weights are closed over."""
    def serve(images):
        x = preprocess(images.astype(jnp.float32))
        logits = model.apply(variables, x, train=False).astype(jnp.float32)
        return {"logits": logits, "probs": probabilities(logits),
                "class_ids": tasks.class_ids(logits)}
    return serve


def _accepts(fn, shape) -> bool:
    try:
        with plain_forms():
            jax.eval_shape(fn, jax.ShapeDtypeStruct(shape, jnp.uint8))
        return True
    except Exception:  # noqa: BLE001  any shape or trace error means: not this size
        return False


def _model_sizes(model) -> Optional[Sizes]:
    """The sides a model states itself (the unpadded U-Net: 16 * k + 172)."""
    from fluxseg.models import unet
    if isinstance(model, unet.UNet) and model.padding == "valid":
        first, second = unet.valid_input_sizes(1, 512)[:2]
        return Sizes(second - first, 2 * first - second)
    return None


def discover_sizes(fn, channels: int, trained: tuple) -> Optional[Sizes]:
    """The smallest side step the serving function takes, found by tracing: for each
    step (1, 2, 4, ...), two odd multiples near the trained side must trace
    concretely (the model's own checks run) and the symbolic side must trace too;
    None if it takes none of them (e.g. a classifier that flattens its features)."""
    side = max(int(min(trained)), 1)
    for step in STEPS:
        m = max(side // step, 1) | 1  # odd: not a multiple of the next step
        sizes = (step * m, step * (m + 2))
        if not all(_accepts(fn, (1, n, n, channels)) for n in sizes):
            continue
        symbolic = jax.export.symbolic_shape(f"b, {Sizes(step).symbol('h')}, {Sizes(step).symbol('w')}, "
                                             f"{channels}")
        if _accepts(fn, symbolic):
            return Sizes(step)
    return None


def build_serving(restored, *, batch: Union[int, str] = "dynamic",
                  size: Union[tuple, str] = "dynamic", dtype: str = "float32",
                  class_names: Optional[list] = None) -> Serving:
    """The serving function of a restored run, its accepted shapes and its metadata.

    batch: 'dynamic' or a fixed N. size: 'dynamic' (every side the model's
    arithmetic allows) or (H, W), checked against the model. dtype: the
    compute dtype of the artifact ('float32' unless asked; a bfloat16-trained
    run is exported in float32).
    """
    from fluxseg.infer.prediction import input_channels
    from fluxseg.train.build import DTYPES

    if dtype not in DTYPES:
        raise ExportError(f"dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    model = _model_for(restored, dtype)
    fn = serving_fn(model, restored.variables, restored.preprocess)
    channels = input_channels(restored)
    trained = tuple(int(v) for v in restored.config.data.crop_size)
    if batch != "dynamic" and (not isinstance(batch, int) or batch < 1):
        raise ExportError(f"batch {batch!r}; expected a positive integer or 'dynamic'")
    if size == "dynamic":
        stated = _model_sizes(model)
        if stated is None:
            rule = discover_sizes(fn, channels, trained)
            sizes = (rule, rule) if rule else (Sizes(0, trained[0]), Sizes(0, trained[1]))
        else:
            sizes = (stated, stated)
    else:
        h, w = (int(v) for v in size)
        if not _accepts(fn, (1, h, w, channels)):
            raise ExportError(f"{restored.config.model} cannot take {h}x{w} images: "
                              f"{_size_error(fn, (1, h, w, channels))}")
        sizes = (Sizes(0, h), Sizes(0, w))
    serving = Serving(fn=fn, channels=channels, batch=None if batch == "dynamic" else int(batch),
                      sizes=sizes, metadata={})
    serving.metadata = metadata(restored, serving, dtype, class_names)
    return serving


def _size_error(fn, shape) -> str:
    try:
        with plain_forms():
            jax.eval_shape(fn, jax.ShapeDtypeStruct(shape, jnp.uint8))
    except Exception as e:  # noqa: BLE001  the model's own message, first line
        return str(e).strip().splitlines()[0]
    return "no error"


def metadata(restored, serving: Serving, dtype: str, class_names: Optional[list]) -> dict:
    """What a consumer needs beside the artifact (written as model.json)."""
    from fluxseg.weights import preprocess as preprocess_lib

    with plain_forms():
        out = jax.eval_shape(serving.fn, serving.input_spec())
    config = restored.config
    k = int(out["logits"].shape[-1])
    names = list(class_names) if class_names else [str(i) for i in range(max(k, 2))]
    fn = preprocess_lib.get(config.preprocess)
    return {
        "fluxseg_export": 1,
        "model": config.model, "task": config.data.task, "step": int(restored.step),
        "workdir": os.path.abspath(restored.workdir) if restored.workdir else None,
        "dtype": dtype, "trained_dtype": config.dtype,
        "classes": names, "num_logits": k,
        "activation": "sigmoid (one logit: class 1 where logit > 0)" if k == 1 else "softmax",
        "input": {"name": INPUT, "dtype": "uint8", "layout": "NHWC", "channels": serving.channels,
                  "batch": serving.batch, "height": serving.sizes[0].to_json(),
                  "width": serving.sizes[1].to_json(), "trained_size": list(config.data.crop_size)},
        "preprocessing": {"name": config.preprocess, "included": True,
                          "what": (fn.__doc__ or config.preprocess).strip().splitlines()[0]},
        "outputs": {name: {"dtype": str(out[name].dtype), "shape": [str(d) for d in out[name].shape]}
                    for name in OUTPUTS},
        "input_shape": serving.symbolic_shape(),
        "notes": _notes(config, serving, out),
    }


def _notes(config, serving: Serving, out) -> list[str]:
    notes = []
    if tasks.kind(config.data.task).dense:
        notes.append("fluxseg.predict tiles an image of any size with the trained crop and averages "
                     "overlapping logits; this artifact runs the model once on the whole input.")
        if any(s.offset for s in serving.sizes):
            notes.append("The output is the centre of the input (unpadded convolutions): mirror-pad an "
                         "image by (input - output) / 2 on each side to get a mask of its own size.")
    else:
        notes.append(f"fluxseg.predict resizes a classifier's image to the trained size "
                     f"{tuple(config.data.crop_size)} (bilinear, data.eval_mode="
                     f"{config.data.eval_mode!r}) before the model; do the same for equal results.")
    return notes


def write_metadata(out_dir: str, meta: dict, fmt: str, files: dict) -> str:
    path = os.path.join(out_dir, METADATA)
    with open(path, "w") as f:
        json.dump({**meta, "format": fmt, "files": files}, f, indent=2)
    return path
