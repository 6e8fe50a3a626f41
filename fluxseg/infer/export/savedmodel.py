"""TensorFlow SavedModel through jax2tf's native serialization, with a serving signature.

    serve = tf.saved_model.load(DIR).signatures["serving_default"]
    out = serve(images=tf.constant(images))   # {'logits', 'probs', 'class_ids'}

The model is the same StableHLO as the `stablehlo` format, held in an
XlaCallModule op. TensorFlow itself does not check a symbolic side before
that op runs (a wrong one fails deep inside XLA's shape refinement), so the
signature checks each dynamic side against its rule first and fails with a
message naming it.
"""
from __future__ import annotations

import os

from fluxseg.infer.export.common import INPUT, OUTPUTS
from fluxseg.runtime.backend import plain_forms

DIR = "saved_model"


def _size_checks(tf, serving, images):
    shape = tf.shape(images)
    checks = []
    for axis, label, sizes in zip((1, 2), ("height", "width"), serving.sizes):
        if sizes.step <= 1 and not sizes.offset:
            continue  # any side, or fixed (the signature's static shape refuses others)
        rest = shape[axis] - sizes.offset
        ok = tf.logical_and(tf.equal(rest % sizes.step, 0), rest >= sizes.step)
        checks.append(tf.debugging.Assert(ok, [f"fluxseg export: image {label} must be "
                                               f"{sizes.describe()}; got", shape[axis]]))
    return checks


def write(serving, out_dir: str) -> dict:
    import tensorflow as tf
    from jax.experimental import jax2tf

    with plain_forms():
        converted = jax2tf.convert(serving.fn, polymorphic_shapes=[f"({serving.symbolic_shape()})"],
                                   with_gradient=False)
    static = [serving.batch] + [s.offset if s.step == 0 else None for s in serving.sizes]

    @tf.function(input_signature=[tf.TensorSpec([*static, serving.channels], tf.uint8, name=INPUT)],
                 autograph=False)
    def serve(images):
        with tf.control_dependencies(_size_checks(tf, serving, images)):
            images = tf.identity(images)
        with plain_forms():
            out = converted(images)
        return {k: tf.identity(out[k], name=k) for k in OUTPUTS}

    module = tf.Module()
    module.serve = serve
    tf.saved_model.save(module, os.path.join(out_dir, DIR), signatures={"serving_default": serve})
    return {"model": DIR}
