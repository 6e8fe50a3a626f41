"""TensorFlow, imported once and kept off the accelerators; the tf.data options of every pipeline.

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


def pipeline_options() -> tf.data.Options:
    """What every fluxseg tf.data pipeline runs with (training, eval, header scans)."""
    opts = tf.data.Options()
    opts.deterministic = True  # order must not depend on thread timing
    # No autotuning thread. Destroying an iterator waits for that thread, which
    # may be asleep on its timer: each epoch (a new iterator) then stalled the
    # training loop for 1-10 s, 13-30 s of the default run's ~100
    # (benchmarks/README.md, "The training loop"). Without it
    # num_parallel_calls=-1 is one call per core, as fast on these pipelines.
    opts.autotune.enabled = False
    return opts


__all__ = ["pipeline_options", "tf"]
