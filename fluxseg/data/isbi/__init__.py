"""`fluxseg_isbi2012`: the ISBI 2012 EM segmentation challenge (Arganda-Carreras et al. 2015)."""
from fluxseg.data.isbi.builder import FILES, FluxsegIsbi2012, IsbiConfig, check_manual_dir  # noqa: F401
