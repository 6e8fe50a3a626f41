"""Model, variables and preprocessing for the `fluxseg viz` commands: converted weights, random, or a restored run."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Optional

import jax
import numpy as np

from fluxseg.runtime import backend

# The layer Grad-CAM looks at by default: the last convolutional feature map
# before the classifier (Selvaraju et al. 2017 §3; DLwP uses block5_conv3).
GRADCAM_LAYERS = {
    "vgg16": "block5_conv3",
    "resnet18": "layer4", "resnet34": "layer4", "resnet50": "layer4", "resnet101": "layer4",
    "resnet50_keras": "conv5_block3_out",
    "hybrid_vgg16_resnet50": "resnet50/conv5_block3_out",
    "cnn_small": "conv2d_3",
    "gap_classifier": None,  # depends on the backbone: the last map before 'pooled'
    "fcn_resnet18": "backbone/layer4",
    "fcn_vgg16": "vgg16/block5_conv3",
    "unet": "bottom",
    "unet_resnet50": "encoder/conv5_block3_out",
}


# With random weights, the preprocessing the model's usual weights expect.
RANDOM_PREPROCESS = {"vgg16": "caffe", "resnet50_keras": "caffe", "hybrid_vgg16_resnet50": "caffe", "fcn_vgg16": "caffe",
                     "unet_resnet50": "caffe", "cnn_small": "unit", "unet": "unit"}


@dataclasses.dataclass
class Loaded:
    model: object
    variables: dict
    preprocess: Callable
    name: str
    input_hw: tuple[int, int]
    task: str
    note: str  # where the weights came from, for titles


def from_run(restored) -> Loaded:
    """A trained run (``fluxseg.restore(workdir)``): its model, weights, preprocessing and crop size."""
    c = restored.config
    hw = tuple(int(v) for v in c.data.crop_size)
    return Loaded(restored.model, restored.variables, restored.preprocess, str(c.model), hw, str(c.data.task),
                  f"run {restored.workdir}, step {restored.step}")


def load(name: Optional[str], weights: Optional[str], seed: int = 0) -> Loaded:
    """--model NAME with --weights keras|torchvision|random|PATH."""
    from fluxseg import models
    from fluxseg.weights import preprocess as prep

    if not name:
        raise ValueError("give --model NAME (see `fluxseg models`) or --workdir RUN")
    spec = models.spec(name)
    hw = spec.input_shape[:2]
    if weights in (None, "random"):
        model = models.create(name)
        variables = backend.jit(lambda x: model.init(jax.random.key(seed), x, train=False))(np.zeros((1, *spec.input_shape), np.float32))
        pre = prep.get(RANDOM_PREPROCESS.get(name, "torch"))
        return Loaded(model, variables, pre, name, hw, spec.task, "random weights")
    from fluxseg import weights as W

    if weights in ("keras", "torchvision"):
        pre = W.load(name, weights)
    else:
        path = Path(weights).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"--weights {weights}: no such file; use keras, torchvision, random or a weight file path")
        text = path.name
        source = "keras" if text.endswith(".h5") or "_keras" in text else "torchvision" if text.endswith((".pth", ".pt")) or "_torchvision" in text else None
        if source is None:
            raise ValueError(f"cannot tell the source of {path.name}: expected a Keras .h5, a torchvision .pth, or a converted <model>_<source>.fluxseg.msgpack")
        pre = W.load(name, source, path=path)
    kw = {} if pre.include_top else {"include_top": False}
    top = pre.variables["params"].get("predictions", pre.variables["params"].get("fc"))
    if top is not None and top["kernel"].shape[-1] != 1000:
        kw["num_classes"] = int(top["kernel"].shape[-1])
    return Loaded(models.create(name, **kw), pre.variables, pre.preprocess_fn, name, hw, spec.task, f"{pre.source} weights ({pre.path.name})")


def gradcam_layer(loaded: Loaded, x) -> str:
    from fluxseg.viz.activations import spatial_layers

    layer = GRADCAM_LAYERS.get(loaded.name)
    names = spatial_layers(loaded.model, loaded.variables, x)
    if layer in names:
        return layer
    if "pooled" in _taps(loaded, x):  # gap_classifier: the map it pools
        return [n for n in names if n.startswith("backbone/")][-1]
    raise ValueError(f"no default Grad-CAM layer for {loaded.name}; pass --layer, one of: {', '.join(names)}")


def _taps(loaded, x):
    from fluxseg import models

    return jax.eval_shape(lambda v, x: models.features(loaded.model, v, x)[1], loaded.variables, x)


def read_image(path: str, hw: tuple[int, int]) -> np.ndarray:
    """RGB uint8 [H, W, 3] resized (bilinear) to hw; grey images are repeated to three channels."""
    from PIL import Image

    img = Image.open(path).convert("RGB").resize((hw[1], hw[0]), Image.BILINEAR)
    return np.asarray(img)
