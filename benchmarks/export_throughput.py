"""Images/s of each exported format's runtime beside fluxseg's in-JAX prediction, same batch, same process.

    python benchmarks/export_throughput.py [--model unet] [--kwargs '{"padding": "valid"}']
        [--size 188,188] [--batch 2] [--reps 7] [--json out.json]
    fluxseg bench export [same options]

The model gets random weights (the numbers do not depend on them) and is
exported with `fluxseg.export` to StableHLO, a SavedModel and ONNX. Then, on
one uint8 batch, interleaved (A B C D A B C D ...) so that a busy machine
slows every runtime alike, one call each of:

  jax (fluxseg)  the model jitted as fluxseg.predict runs it (fluxseg.runtime.backend.jit,
                 the CPU op forms on a CPU), preprocessing included
  stablehlo      jax.export.deserialize(...).call: the plain ops, jax's default options
  savedmodel     tf.saved_model.load(...).signatures['serving_default']
  onnx           onnxruntime.InferenceSession(model.onnx), CPUExecutionProvider

Reported: median images/s over --reps calls after one warm-up call each, and
each runtime's ratio to jax (fluxseg). The first call (compilation, graph
loading) is not counted.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from fluxseg.runtime import cpu_process  # noqa: E402  (imports no framework)

FORMATS = ("stablehlo", "savedmodel", "onnx")
# Idle seconds before each timed call: onnxruntime's and TensorFlow's pools keep their
# threads spinning for a while after a call, which took CPU from whichever runtime
# came next (the in-JAX model ran 15% slower right after onnxruntime on two cores).
PAUSE = 0.5


def _restored(model_name: str, kwargs: dict, size, channels: int):
    import jax
    import jax.numpy as jnp

    from fluxseg import models
    from fluxseg.train.checkpoint import Restored
    from fluxseg.train.config import base_config
    from fluxseg.weights import preprocess

    config = base_config()
    config.model, config.data.task = model_name, "segmentation"
    config.model_kwargs.update(kwargs)
    config.data.crop_size, config.data.channels = tuple(size), channels
    model = models.create(model_name, **kwargs)
    variables = model.init(jax.random.key(0), jnp.zeros((1, *size, channels)), train=False)
    config.num_classes = int(jax.eval_shape(lambda: model.apply(variables, jnp.zeros((1, *size, channels))))
                             .shape[-1])
    return Restored(model=model, variables=variables, config=config, preprocess=preprocess.get("unit"),
                    step=0, workdir="")


def _runners(restored, out: str, batch: int):
    import jax
    import jax.numpy as jnp
    import onnxruntime as ort
    import tensorflow as tf
    from jax import export as jax_export

    import fluxseg
    from fluxseg.runtime import backend

    model, pre = restored.model, restored.preprocess
    apply = backend.jit(lambda v, x: model.apply(v, pre(x.astype(jnp.float32)), train=False))
    runners = {"jax (fluxseg)": lambda x: jax.block_until_ready(apply(restored.variables, x))}
    dirs = {fmt: fluxseg.export(restored, fmt, os.path.join(out, fmt), batch="dynamic", verify=False)
            for fmt in FORMATS}
    with open(os.path.join(dirs["stablehlo"], "model.jaxexport"), "rb") as f:
        exported = jax_export.deserialize(bytearray(f.read()))
    runners["stablehlo"] = lambda x: jax.block_until_ready(exported.call(x))
    serve = tf.saved_model.load(os.path.join(dirs["savedmodel"], "saved_model")).signatures["serving_default"]
    runners["savedmodel"] = lambda x: {k: v.numpy() for k, v in serve(images=tf.constant(x)).items()}
    session = ort.InferenceSession(os.path.join(dirs["onnx"], "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    runners["onnx"] = lambda x: session.run(None, {"images": x})
    return runners


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="unet")
    p.add_argument("--kwargs", default='{"padding": "valid"}', help="JSON of model options")
    p.add_argument("--size", default="188,188", help="H,W of the images")
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    cpu_process.reexec()  # fluxseg's malloc settings, as `fluxseg` runs under; before JAX loads
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    size = tuple(int(v) for v in args.size.split(","))
    restored = _restored(args.model, json.loads(args.kwargs), size, args.channels)
    images = np.random.RandomState(0).randint(0, 256, (args.batch, *size, args.channels)).astype(np.uint8)
    with tempfile.TemporaryDirectory() as out:
        runners = _runners(restored, out, args.batch)
        for run in runners.values():
            run(images)  # compile / load
        times = {name: [] for name in runners}
        for _ in range(args.reps):
            for name, run in runners.items():
                time.sleep(PAUSE)
                t = time.perf_counter()
                run(images)
                times[name].append(time.perf_counter() - t)
    rates = {name: args.batch / statistics.median(ts) for name, ts in times.items()}
    base = rates["jax (fluxseg)"]
    print(f"{args.model} {json.loads(args.kwargs)} {size[0]}x{size[1]}x{args.channels}, batch {args.batch}, "
          f"median of {args.reps} interleaved calls")
    print(f"{'runtime':<16}{'img/s':>10}{'÷ jax':>8}")
    for name, rate in rates.items():
        print(f"{name:<16}{rate:>10.2f}{rate / base:>8.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "img_per_s": rates, "seconds": times}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
