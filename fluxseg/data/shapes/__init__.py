"""The `fluxseg_shapes` tfds dataset; importing this package registers it."""
from fluxseg.data.shapes.builder import FluxsegShapes, ShapesConfig
from fluxseg.data.shapes.draw import (CLASS_NAMES, COLORMAP, NUM_CLASSES,
                                      OBJECT_CLASS_NAMES, draw_example)

__all__ = ["FluxsegShapes", "ShapesConfig", "CLASS_NAMES", "OBJECT_CLASS_NAMES",
           "NUM_CLASSES", "COLORMAP", "draw_example"]
