"""Runs a fluxseg export without fluxseg: ``predict = load(DIR); out = predict(images)``.

This file is copied into every export directory (as ``fluxseg_loader.py``)
and imports nothing from fluxseg or flax: only json, numpy and the runtime of
the export's format (jax for 'stablehlo', tensorflow for 'savedmodel',
onnxruntime for 'onnx'). ``predict`` checks the images against the sizes in
``model.json`` first, so a wrong size is a one-line ValueError naming the
sizes the model takes, and returns numpy arrays {'logits', 'probs', 'class_ids'}.
"""
from __future__ import annotations

import json
import os

import numpy as np

OUTPUTS = ("logits", "probs", "class_ids")


def side_ok(rule: dict, n: int) -> bool:
    """Whether side ``n`` is ``step * k + offset`` with k >= 1 (step 0: exactly offset)."""
    step, offset = int(rule["step"]), int(rule["offset"])
    if step == 0:
        return n == offset
    return n - offset >= step and (n - offset) % step == 0


def nearest(rule: dict, n: int) -> list:
    step, offset = int(rule["step"]), int(rule["offset"])
    if step == 0:
        return [offset]
    k = max((n - offset) // step, 1)
    return sorted({step * j + offset for j in (k, k + 1)} - {n})


def check_images(spec: dict, shape) -> None:
    """Raises ValueError unless ``shape`` is [N, H, W, C] as ``spec`` (model.json's 'input') allows."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != 4 or shape[-1] != spec["channels"]:
        raise ValueError(f"images of shape {shape}; the model takes {spec['dtype']} "
                         f"[N, H, W, {spec['channels']}]")
    if spec["batch"] is not None and shape[0] != spec["batch"]:
        raise ValueError(f"a batch of {shape[0]} images; this export takes exactly {spec['batch']}")
    for axis, side in zip(("height", "width"), shape[1:3]):
        rule = spec[axis]
        if not side_ok(rule, side):
            raise ValueError(f"image {axis} {side} is not one the model takes ({rule['rule']}); nearest: "
                             + ", ".join(map(str, nearest(rule, side))))


def _runner(directory: str, meta: dict):
    files, fmt = meta["files"], meta["format"]
    if fmt == "stablehlo":
        from jax import export
        with open(os.path.join(directory, files["model"]), "rb") as f:
            exported = export.deserialize(bytearray(f.read()))
        return lambda images: {k: np.asarray(v) for k, v in exported.call(images).items()}
    if fmt == "savedmodel":
        import tensorflow as tf
        serve = tf.saved_model.load(os.path.join(directory, files["model"])).signatures["serving_default"]
        return lambda images: {k: v.numpy() for k, v in serve(images=tf.constant(images)).items()}
    if fmt == "onnx":
        import onnxruntime as ort
        session = ort.InferenceSession(os.path.join(directory, files["model"]),
                                       providers=ort.get_available_providers())
        return lambda images: dict(zip(OUTPUTS, session.run(list(OUTPUTS), {"images": images})))
    raise ValueError(f"unknown export format {fmt!r} in {directory}/model.json")


def load(directory: str):
    """``predict(images uint8 [N, H, W, C]) -> {'logits', 'probs', 'class_ids'}`` of the export in ``directory``."""
    with open(os.path.join(directory, "model.json")) as f:
        meta = json.load(f)
    run = _runner(directory, meta)
    spec = meta["input"]

    def predict(images):
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise ValueError(f"images of dtype {images.dtype}; the model takes uint8 (0..255)")
        check_images(spec, images.shape)
        return run(np.ascontiguousarray(images))

    predict.metadata = meta
    return predict
