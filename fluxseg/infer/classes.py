"""A run's class names and colours, from its dataset when that is at hand."""
from __future__ import annotations

from typing import Optional


def class_meta(config) -> tuple[tuple, Optional[object], Optional[str]]:
    """(class names, colormap or None, why the names are numbered or None).

    Reading them prepares (or opens) the run's dataset, which imports
    TensorFlow; a dataset that is not at hand gives numbered names.
    """
    try:
        from fluxseg import data
        info = data.info(config.data)
        return tuple(info.class_names), info.colormap, None
    except Exception as e:  # noqa: BLE001  names are a convenience: say why they are missing
        return tuple(str(i) for i in range(max(int(config.num_classes), 2))), None, str(e)
