"""Exporting a trained run: ``export(restored, format, out)`` -> a directory that runs without fluxseg.

    stablehlo   model.jaxexport: `jax.export` serialized StableHLO (jax alone)
    savedmodel  saved_model/: TensorFlow SavedModel, signature 'serving_default'
    onnx        model.onnx: an ONNX graph (onnxruntime)

Each directory also holds model.json (classes, the sides the model takes,
the preprocessing, output shapes, the parity check made at export) and
fluxseg_loader.py, a loader that imports no fluxseg (`load(DIR)(images)`).
The artifact takes uint8 images [N, H, W, C] and returns logits, probs and
class_ids (common.py says how).
"""
from __future__ import annotations

import importlib
import os
import shutil
from typing import Optional, Sequence, Union

import numpy as np

from fluxseg.infer.export.common import FORMATS, METADATA, ExportError, build_serving, write_metadata

LOADER = "fluxseg_loader.py"
EXTRA = "pip install 'fluxseg[export]'"
# format -> (packages it needs to write, packages it needs to run)
NEEDS = {"stablehlo": ((), ()), "savedmodel": (("tensorflow",), ("tensorflow",)),
         "onnx": (("onnx",), ("onnxruntime",))}
# The export's own parity check: worst |artifact - JAX| / max |JAX| over the logits.
TOLERANCE = 1e-4


def _require(fmt: str, verify: bool) -> None:
    write, run = NEEDS[fmt]
    for package in write + (run if verify else ()):
        try:
            importlib.import_module(package)
        except ImportError:
            raise ExportError(f"the {fmt} export needs the {package} package, which is not installed; "
                              f"install the export extra: {EXTRA}") from None


def _probe_side(rule: dict, trained: int) -> int:
    """The trained side if the artifact takes it, else its smallest side."""
    from fluxseg.infer.export.loader import side_ok
    if rule["step"] == 0 or side_ok(rule, trained):
        return rule["offset"] if rule["step"] == 0 else trained
    return rule["step"] + rule["offset"]


def _check_parity(serving, out_dir: str, dtype: str) -> dict:
    """Runs the artifact through its loader on random images and compares with JAX."""
    import jax

    from fluxseg.infer.export import loader
    from fluxseg.runtime.backend import plain_forms

    spec = serving.metadata["input"]
    h, w = (_probe_side(spec[axis], t) for axis, t in zip(("height", "width"), spec["trained_size"]))
    n = spec["batch"] or 2
    images = np.random.RandomState(0).randint(0, 256, (n, h, w, spec["channels"])).astype(np.uint8)
    got = loader.load(out_dir)(images)
    with plain_forms():
        want = jax.jit(serving.fn)(images)
    ref = np.asarray(want["logits"], np.float64)
    rel = float(np.max(np.abs(got["logits"] - ref)) / max(np.max(np.abs(ref)), 1e-12))
    same = float(np.mean(got["class_ids"] == np.asarray(want["class_ids"])))
    if dtype == "float32" and rel > TOLERANCE:
        raise ExportError(f"the {serving.metadata['format']} artifact in {out_dir} disagrees with JAX: "
                          f"logits differ by {rel:.2e} of their range (tolerance {TOLERANCE:g})")
    return {"images": list(images.shape), "logits_max_rel_diff": rel, "class_ids_equal": same}


def export(restored, format: str, out: str, *, batch: Union[int, str] = "dynamic",
           size: Union[Sequence[int], str] = "dynamic", dtype: str = "float32",
           class_names: Optional[Sequence[str]] = None, verify: bool = True) -> str:
    """Writes ``restored`` (from `fluxseg.restore`) as ``format`` into directory ``out``; returns ``out``.

    batch: 'dynamic' or a fixed N. size: 'dynamic' (every side the model's
    arithmetic allows: model.json states the rule) or (H, W). dtype: compute
    dtype of the artifact ('float32' unless asked: bfloat16-trained runs are
    exported in float32). class_names: default the run's dataset's, if at hand.
    verify: run the artifact once on random images and compare with JAX
    (needs the format's runtime; the result is written into model.json).
    """
    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}; choose from: {', '.join(FORMATS)}")
    _require(format, verify)
    if class_names is None:
        from fluxseg.infer.classes import run_task
        class_names = run_task(restored.config)[0].names
    serving = build_serving(restored, batch=batch, size=size, dtype=dtype, class_names=class_names)
    serving.metadata["format"] = format
    os.makedirs(out, exist_ok=True)
    writer = importlib.import_module(f"fluxseg.infer.export.{format}")
    files = writer.write(serving, out)
    shutil.copyfile(os.path.join(os.path.dirname(__file__), "loader.py"), os.path.join(out, LOADER))
    write_metadata(out, serving.metadata, format, files)
    if verify:
        serving.metadata["parity_check"] = _check_parity(serving, out, dtype)
        write_metadata(out, serving.metadata, format, files)
    return out


__all__ = ["FORMATS", "METADATA", "ExportError", "export"]
