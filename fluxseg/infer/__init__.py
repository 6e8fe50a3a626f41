"""Using a trained run: prediction at any size, image files, whole-split evaluation, reports.

    prediction  predict / predict_batch / predict_logits (tiling, overlap-tile, TTA)
    io          reading and checking image files
    evaluation  evaluate(workdir): a run's metrics on a whole split, each image at its own size
    report      the JSON and markdown reports of an evaluation
    classes     a run's class names and colours
    export      the run as StableHLO, a SavedModel or ONNX (fluxseg.export; imported on use)
"""
from fluxseg.infer.prediction import (input_channels, mirror_pad, output_size, predict, predict_batch,
                                      predict_logits, window_starts)

__all__ = ["input_channels", "mirror_pad", "output_size", "predict", "predict_batch", "predict_logits",
           "window_starts"]
