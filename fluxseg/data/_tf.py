"""TensorFlow, imported once and kept off the accelerators.

tf.data is only the host-side input pipeline; if TF saw the GPUs/TPUs it
would reserve their memory before JAX gets it. Device visibility can only be
set before TF initialises its runtime, so every fluxseg.data module imports
tf from here, and fluxseg.data.sources (which every dataset goes through)
imports this module before tensorflow_datasets.
"""
from __future__ import annotations

import logging

import tensorflow as tf


def _hide_accelerators() -> None:
    for kind in ("GPU", "TPU"):
        try:
            tf.config.set_visible_devices([], kind)
        except RuntimeError:
            # TF's runtime was already initialised by someone else's import;
            # too late to hide devices, so say so instead of failing.
            visible = tf.config.get_visible_devices(kind)
            if visible:
                logging.warning(
                    "fluxseg.data: TensorFlow was initialised before fluxseg.data "
                    "and can see %s; it may hold accelerator memory. Import "
                    "fluxseg.data before using TensorFlow elsewhere.", visible)
        except ValueError:
            pass  # this TF build does not know the device kind at all


_hide_accelerators()

__all__ = ["tf"]
