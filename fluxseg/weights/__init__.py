"""ImageNet weights for fluxseg models, converted from Keras HDF5 files and torchvision state dicts.

    >>> from fluxseg import weights
    >>> pre = weights.load("resnet18", "torchvision")        # finds resnet18-f37072fd.pth offline
    >>> logits = model.apply(pre.variables, pre.preprocess_fn(images_0_255))
    >>> variables, prep, report = weights.init_from_pretrained(
    ...     "fcn_resnet18", model.init(rng, x), "torchvision")
    >>> print(report)

Conversion: `convert_keras_h5(path, model_name)` (vgg16, resnet50_keras),
`convert_torchvision(path_or_state_dict, model_name)` (resnet18/34/50/101,
vgg16). Both return {'params', 'batch_stats'} of float32 numpy arrays and
check every leaf against the fluxseg model's shapes.

Preprocessing belongs to the weights: Keras files are 'caffe' (RGB->BGR,
minus the ImageNet BGR mean, 0..255 scale), torchvision files 'torch'
(/255, ImageNet mean/std); see `fluxseg.weights.preprocess`.

BatchNorm: epsilon and momentum follow the source's model definition —
torchvision ResNets eps 1e-5 and PyTorch momentum 0.1 (= Flax momentum 0.9:
PyTorch weighs the new batch statistic by its momentum, Flax weighs the old
running value by its own), Keras ResNet50 eps 1.001e-5 and momentum 0.99
(Keras and Flax use the same convention). One known difference while
training: PyTorch updates running_var with the unbiased batch variance, Flax
with the biased one.

Files are looked up offline (see `fluxseg.weights.hub`); `fluxseg weights
convert` writes a converted file that later loads read directly.
"""
from fluxseg.weights.hub import Pretrained, load, save_converted
from fluxseg.weights.imagenet import CLASSES as IMAGENET_CLASSES
from fluxseg.weights.imagenet import decode_predictions
from fluxseg.weights.keras_h5 import convert_keras_h5
from fluxseg.weights.merge import LoadReport
from fluxseg.weights.pretrained import init_from_pretrained
from fluxseg.weights.torchvision import convert_torchvision

__all__ = [
    "IMAGENET_CLASSES",
    "LoadReport",
    "Pretrained",
    "convert_keras_h5",
    "convert_torchvision",
    "decode_predictions",
    "init_from_pretrained",
    "load",
    "save_converted",
]
