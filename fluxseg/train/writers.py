"""What a researcher watches: JSON lines, TensorBoard events, PNG pictures.

Only process 0 writes (``enabled=False`` elsewhere makes every call a no-op).
<workdir>/metrics.jsonl   one JSON object per line: {"step", "split", ...}
<workdir>/tensorboard/    tf.summary scalars per split, prediction images
<workdir>/predictions_<step>.png   image | ground truth | prediction rows
"""
from __future__ import annotations

import json
import math
import os
from typing import Optional

import numpy as np

class Writer:
    def __init__(self, workdir: str, enabled: bool = True):
        self.workdir = workdir
        self.enabled = enabled
        self._tb = None
        if enabled:
            os.makedirs(workdir, exist_ok=True)
            self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")

    def _summary(self):
        if self._tb is None:
            from fluxseg.data._tf import tf  # TF kept off the accelerators
            self._tb = tf.summary.create_file_writer(os.path.join(self.workdir, "tensorboard"))
        return self._tb

    def scalars(self, step: int, split: str, values: dict) -> None:
        if not self.enabled:
            return
        clean = {k: _py(v) for k, v in values.items()}
        self._jsonl.write(json.dumps({"step": int(step), "split": split, **clean}) + "\n")
        self._jsonl.flush()
        from fluxseg.data._tf import tf
        with self._summary().as_default(step=int(step)):
            for k, v in clean.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    tf.summary.write(f"{split}/{k}", tf.constant(float(v), tf.float32),
                                     metadata=_metadata("scalars"))

    def image(self, step: int, name: str, grid: np.ndarray) -> Optional[str]:
        """Writes a uint8 [H,W,3] picture to TensorBoard and as a PNG; returns its path."""
        if not self.enabled:
            return None
        from PIL import Image
        from fluxseg.data._tf import tf
        path = os.path.join(self.workdir, f"{name}_{int(step)}.png")
        Image.fromarray(grid).save(path)
        h, w = grid.shape[:2]
        png = tf.io.encode_png(grid)
        with self._summary().as_default(step=int(step)):
            tf.summary.write(name, tf.stack([tf.as_string(w), tf.as_string(h), png]),
                             metadata=_metadata("images"))
        return path

    def flush(self) -> None:
        if self.enabled and self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self.enabled:
            self.flush()
            self._jsonl.close()


def _metadata(plugin: str) -> bytes:
    # tf.summary.write with TensorBoard's plugin tag: what tf.summary.scalar /
    # image produce, without needing the tensorboard package installed.
    from tensorflow.core.framework import summary_pb2
    md = summary_pb2.SummaryMetadata()
    md.plugin_data.plugin_name = plugin
    return md.SerializeToString()


def _py(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, np.ndarray) and v.ndim == 0:
        return v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no NaN/Inf
    return v
