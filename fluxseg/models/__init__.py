"""The fluxseg model zoo.

    >>> from fluxseg import models
    >>> models.names()
    >>> model = models.create("fcn_resnet18", variant="8s")
    >>> variables = model.init(jax.random.key(0), x, train=False)
    >>> logits, feats = models.features(model, variables, x, ["backbone/layer3"])

Conventions: NHWC float input, logits out, `train` switches BatchNorm and
dropout, BatchNorm statistics live in the 'batch_stats' collection, dropout
draws from the 'dropout' rng. Layers come from the `layers.Ops` factories.
"""
from fluxseg.models.layers import DEFAULT_OPS, Ops, bilinear_kernel
from fluxseg.models.registry import ModelSpec, create, names, spec
from fluxseg.models.inspect import count_params, features, frozen_patterns
from fluxseg.models.parts import Part, pretrained_parts

__all__ = [
    "DEFAULT_OPS",
    "ModelSpec",
    "Ops",
    "bilinear_kernel",
    "count_params",
    "create",
    "features",
    "frozen_patterns",
    "names",
    "Part",
    "pretrained_parts",
    "spec",
]
