"""`jax.export` artifact: serialized StableHLO that runs with jax alone.

    exported = jax.export.deserialize(bytearray(open("model.jaxexport", "rb").read()))
    out = exported.call(images)          # {'class_ids', 'logits', 'probs'}

Lowered for the CPU, CUDA and TPU platforms, so one file serves each
(`PLATFORMS`); a side the symbolic shape does not allow is refused by jax's
shape assertions before anything runs ("Input shapes do not match the
polymorphic shapes specification...").
"""
from __future__ import annotations

import os

import jax

from fluxseg.runtime.backend import plain_forms

FILE = "model.jaxexport"
PLATFORMS = ("cpu", "cuda", "tpu")


def serialize(serving) -> bytes:
    with plain_forms():
        exported = jax.export.export(jax.jit(serving.fn), platforms=PLATFORMS)(serving.input_spec())
    return exported.serialize()


def write(serving, out_dir: str) -> dict:
    with open(os.path.join(out_dir, FILE), "wb") as f:
        f.write(serialize(serving))
    return {"model": FILE}
