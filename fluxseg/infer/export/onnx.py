"""ONNX graph of the serving function, runnable with onnxruntime.

    session = onnxruntime.InferenceSession("model.onnx")
    logits, probs, class_ids = session.run(None, {"images": images})

Converted by fluxseg's own jaxpr converter (`jaxpr_onnx`, which says why);
batch, height and width stay dynamic where the model allows, and a side
outside the model's rule fails in a node named after the rule.
"""
from __future__ import annotations

import os

import numpy as np

from fluxseg.infer.export import jaxpr_onnx
from fluxseg.infer.export.common import INPUT, OUTPUTS

FILE = "model.onnx"


def to_model(serving):
    """The onnx.ModelProto of ``serving``."""
    input_shape = ["batch" if serving.batch is None else serving.batch]
    for label, sizes in zip(("height", "width"), serving.sizes):
        input_shape.append(sizes.offset if sizes.step == 0 else label)
    input_shape.append(serving.channels)
    outputs = serving.metadata["outputs"]
    dims = [[int(d) if d.isdigit() else d for d in outputs[k]["shape"]] for k in OUTPUTS]
    return jaxpr_onnx.convert(serving.traced(), INPUT, np.uint8, input_shape, serving.dim_rules(),
                              list(OUTPUTS), dims, doc=f"fluxseg export of {serving.metadata['model']}")


def write(serving, out_dir: str) -> dict:
    import onnx
    onnx.save(to_model(serving), os.path.join(out_dir, FILE))
    return {"model": FILE}
