"""A run's task with its class names and colours, from its dataset when that is at hand."""
from __future__ import annotations

from typing import Optional


def run_task(config) -> tuple[object, Optional[object], Optional[str]]:
    """(the run's fluxseg.tasks.Task with the data's class names, the colormap or None,
    why the names are numbered or None).

    Reading the names prepares (or opens) the run's dataset, which imports
    TensorFlow; a dataset that is not at hand gives numbered names (task.names).
    """
    from fluxseg.train import build

    try:
        from fluxseg import data
        info = data.info(config.data)
        return build.task(config, info.class_names), info.colormap, None
    except Exception as e:  # noqa: BLE001  names are a convenience: say why they are missing
        return build.task(config), None, str(e)
