"""The `fluxseg_voc2012` tfds dataset; importing this package registers it."""
from fluxseg.data.voc.builder import TAR_NAME, URL, FluxsegVoc2012
from fluxseg.data.voc.classes import (CLASS_NAMES, COLORMAP, IGNORE_INDEX,
                                      NUM_CLASSES, voc_colormap)

__all__ = ["FluxsegVoc2012", "TAR_NAME", "URL", "CLASS_NAMES", "COLORMAP",
           "IGNORE_INDEX", "NUM_CLASSES", "voc_colormap"]
