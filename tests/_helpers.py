"""Helpers shared by the tests (imported as `_helpers`): tiny configs, subprocesses, references."""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile

import ml_collections

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# XLA compilation dominates these tests on CPU (a tiny U-Net's train step takes
# ~10 s to compile, and identical steps recur across tests and subprocesses),
# so the training tests share JAX's persistent compilation cache. It changes
# no numbers. FLUXSEG_TEST_JAX_CACHE=<dir> keeps it between sessions.
JAX_CACHE = os.environ.get("FLUXSEG_TEST_JAX_CACHE")
if not JAX_CACHE:
    JAX_CACHE = tempfile.mkdtemp(prefix="fluxseg-jax-")
    atexit.register(shutil.rmtree, JAX_CACHE, ignore_errors=True)  # each test process made its own
CACHE_ENV = {"JAX_COMPILATION_CACHE_DIR": JAX_CACHE,
             "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
             "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1"}


def tiny_config(data_dir: str, **overrides) -> ml_collections.ConfigDict:
    """A U-Net with 4 base channels on 32x32 shapes: compiles and runs in seconds."""
    from fluxseg.train.config import base_config

    c = base_config()
    c.model = "unet"
    c.model_kwargs = ml_collections.ConfigDict({"features": 4, "padding": "same"})
    c.data.builder_config = "small"
    c.data.data_dir = data_dir
    c.data.crop_size = (32, 32)
    c.data.num_parallel_calls = 1
    c.optim.name = "adam"
    c.optim.learning_rate = 3e-3
    c.optim.schedule = "cosine"
    c.batch_size = 8
    c.num_train_steps = 6
    c.log_every_steps = 2
    c.checkpoint_every_steps = 3
    c.num_eval_images = 2
    c.progress_bar = False
    c.async_checkpoints = False
    c.init_rng_impl = "rbg"
    for key, value in overrides.items():
        node = c
        *path, last = key.split(".")
        for p in path:
            node = node[p]
        with node.ignore_type():
            node[last] = value
    return c


def build_small_shapes(data_dir: str) -> str:
    """Prepares fluxseg_shapes/small (32x32; 48 train, 18 validation) in ``data_dir``."""
    import tensorflow_datasets as tfds
    import fluxseg.data

    fluxseg.data.register_builders()
    tfds.disable_progress_bar()
    tfds.builder("fluxseg_shapes/small", data_dir=str(data_dir)).download_and_prepare()
    return str(data_dir)


def run_python(args, *, devices: int = 1, timeout: int = 900, env=None, check=True):
    """Runs python with ``devices`` fake CPU devices (XLA_FLAGS set before jax loads)."""
    full_env = dict(os.environ, **CACHE_ENV, JAX_PLATFORMS="cpu",
                    XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
                    PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, *args], env=full_env, capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)
    if check:
        assert proc.returncode == 0, proc.stderr[-5000:]
    return proc


def saved_model_predictions(workdir: str):
    """(class ids, batch, binary) per eval batch of the run's validation split:
    the saved model applied outside the eval step and its logits turned into
    class ids with numpy, so that tests recompute the run's scores
    independently. binary: a one-channel sigmoid head (class 1 where the logit
    is positive; its targets are 0 / any id > 0)."""
    import numpy as np

    from fluxseg import data
    from fluxseg.train import checkpoint

    restored = checkpoint.restore(workdir)
    cfg = restored.config
    for batch in data.eval_iterator(cfg.data, cfg.data.eval_split,
                                    global_batch_size=int(cfg.eval_batch_size)):
        x = restored.preprocess(np.asarray(batch["image"], np.float32))
        logits = np.asarray(restored.model.apply(restored.variables, x, train=False))
        binary = logits.shape[-1] == 1
        ids = (logits[..., 0] > 0).astype(np.int64) if binary else logits.argmax(-1)
        yield ids, batch, binary


def top1_by_hand(workdir: str) -> tuple[int, int]:
    """(hits, counted) of the saved classifier on every valid validation row."""
    import numpy as np

    hits = total = 0
    for ids, batch, binary in saved_model_predictions(workdir):
        keep = np.asarray(batch["valid"])
        labels = np.asarray(batch["label"])[keep]
        hits += int(np.sum(ids[keep] == ((labels > 0) if binary else labels)))
        total += int(np.sum(keep))
    return hits, total


def isbi_errors_by_hand(workdir: str) -> tuple[float, float]:
    """(pixel error, Rand error) of the saved model on the validation slices,
    with scikit-image's adapted_rand_error on 4-connected cell components
    (Arganda-Carreras et al. 2015), averaged over slices."""
    import numpy as np
    from scipy import ndimage

    import _reference
    adapted_rand_error = _reference.need("skimage.metrics").adapted_rand_error

    pixel, rand = [], []
    for ids, batch, _ in saved_model_predictions(workdir):
        for pred, mask, valid in zip(ids, np.asarray(batch["mask"]), np.asarray(batch["valid"])):
            top, left = ((m - p) // 2 for m, p in zip(mask.shape, pred.shape))
            mask = mask[top:top + pred.shape[0], left:left + pred.shape[1]]
            scored = mask != 255
            if not valid or not scored.any():
                continue
            pixel.append(np.mean(pred[scored] != mask[scored]))
            truth = np.where(scored, ndimage.label(mask == 1)[0], 0)
            if truth.any():
                rand.append(adapted_rand_error(truth, ndimage.label(pred == 1)[0])[0])
    return float(np.mean(pixel)), float(np.mean(rand))


def hand_confusion(preds, targets, n: int, ignore: int = 255):
    """int64 [n, n] (true, predicted) counts, pixel by pixel in Python: a reference for the
    metric engine; targets equal to ``ignore`` or outside 0..n-1 never count."""
    import numpy as np

    cm = np.zeros((n, n), np.int64)
    for p, t in zip(preds, targets):
        for tv, pv in zip(np.ravel(t), np.ravel(p)):
            if tv != ignore and 0 <= tv < n:
                cm[tv, pv] += 1
    return cm


def hand_metrics(cm) -> dict:
    """pixel_acc, mean_acc, mIoU, fwIoU and the per-class 'iou' list of a confusion matrix,
    written out from mmsegmentation's definitions and Long et al. (2015)'s fwIoU."""
    import math

    import numpy as np

    n, total = len(cm), cm.sum()
    acc, iou = [], []
    for c in range(n):
        tp, gt, pr = cm[c, c], cm[c].sum(), cm[:, c].sum()
        acc.append(tp / gt if gt else math.nan)
        iou.append(tp / (gt + pr - tp) if gt + pr - tp else math.nan)
    defined = lambda xs: [x for x in xs if not math.isnan(x)]  # noqa: E731
    fw = sum(cm[c].sum() / total * iou[c] for c in range(n) if cm[c].sum())
    return {"pixel_acc": np.trace(cm) / total, "mean_acc": np.mean(defined(acc)),
            "mIoU": np.mean(defined(iou)), "fwIoU": fw, "iou": iou}


def shapes_examples(data_dir: str, split: str) -> list:
    """The examples of fluxseg_shapes/small's ``split`` as stored (numpy dicts), read with tfds alone."""
    import tensorflow_datasets as tfds

    return list(tfds.as_numpy(tfds.load("fluxseg_shapes/small", split=split, data_dir=data_dir,
                                        shuffle_files=False)))
