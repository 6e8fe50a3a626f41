"""Looking inside models: activations, filter patterns, Grad-CAM, pooling demos.

    >>> from fluxseg import models, viz
    >>> acts = viz.activations(model, variables, x)               # {name: [B, h, w, C]}
    >>> png = viz.activation_grid(acts["conv2d"][0])              # uint8, 16 channels per row
    >>> cam = viz.gradcam(model, variables, x, "block5_conv3", size=x.shape[1:3])
    >>> rgb = viz.overlay(image, cam[0])                          # jet, RGB order
    >>> pats = viz.filter_patterns(model, variables, "block3_conv1", range(64))

Every function takes a flax module and its variables, so it works on any
model of the zoo, on converted ImageNet weights (`fluxseg.weights.load`) and
on a trained run (`fluxseg.restore(workdir)`).
"""
from fluxseg.viz import pooling
from fluxseg.viz.activations import activations, spatial_layers
from fluxseg.viz.filters import FilterPatterns, ascent_gradient, deprocess, filter_patterns
from fluxseg.viz.gradcam import gradcam, segmentation_target, upsample
from fluxseg.viz.grid import activation_grid, standardize, tile_grid
from fluxseg.viz.overlay import colorize, jet, overlay

__all__ = [
    "FilterPatterns",
    "activation_grid",
    "activations",
    "ascent_gradient",
    "colorize",
    "deprocess",
    "filter_patterns",
    "gradcam",
    "jet",
    "overlay",
    "pooling",
    "segmentation_target",
    "spatial_layers",
    "standardize",
    "tile_grid",
    "upsample",
]
