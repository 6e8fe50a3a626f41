"""fluxseg: image classification and semantic segmentation with convnets in JAX/Flax.

    fluxseg.models      the model zoo (`names()`, `create(name, **overrides)`)
    fluxseg.weights     converted ImageNet weights (Keras HDF5, torchvision)
    fluxseg.data        tfds builders and the input pipeline
    fluxseg.train       the config, train steps, optimisers, checkpoints, the loop
    fluxseg.restore     a trained run from its workdir, for notebooks (a damaged
                        checkpoint raises fluxseg.DamagedCheckpointError, an OSError)
    fluxseg.predict     a class-id mask (or probabilities) for an image of any size
    fluxseg.predict_batch   the same for a list of images of mixed sizes
    fluxseg.evaluate    `evaluate(workdir)`: a run's metrics on a whole split, each
                        image at its own size (what `fluxseg eval` runs)
    fluxseg.export      `export(restored, format, out)`: StableHLO, SavedModel or ONNX that
                        runs without fluxseg (what `fluxseg export` writes)
    fluxseg.tasks       what an output means and how it is scored
    fluxseg.infer       prediction, image files, evaluation and reports
    fluxseg.viz         activations, filters, Grad-CAM, drawings
    fluxseg.runtime     process and compiler settings

Submodules load on first use, so `import fluxseg` stays cheap and does not
pull TensorFlow into a process that only needs the models.
"""
import importlib

__version__ = "0.1.0"

_LAZY = {
    "restore": ("fluxseg.train.checkpoint", "restore"),
    "DamagedCheckpointError": ("fluxseg.train.checkpoint", "DamagedCheckpointError"),
    "predict": ("fluxseg.infer.prediction", "predict"),
    "predict_batch": ("fluxseg.infer.prediction", "predict_batch"),
    "evaluate": ("fluxseg.infer.evaluation", "evaluate"),
    "export": ("fluxseg.infer.export", "export"),
}
_SUBMODULES = ("models", "weights", "data", "tasks", "train", "infer", "viz", "runtime")


def __getattr__(name):
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    if name in _SUBMODULES:
        return importlib.import_module(f"fluxseg.{name}")
    raise AttributeError(f"module 'fluxseg' has no attribute {name!r}")


__all__ = ["DamagedCheckpointError", "evaluate", "export", "predict", "predict_batch", "restore", *_SUBMODULES]
