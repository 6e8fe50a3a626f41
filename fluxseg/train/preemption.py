"""SIGTERM -> finish the current step, save a checkpoint, exit cleanly.

Cluster schedulers and preemptible cloud machines send SIGTERM some seconds
before they kill a job. With several processes the flag is only acted on at
sync points (log steps), where the processes agree on it, so all of them save
the same step.
"""
from __future__ import annotations

import logging
import signal

import jax
import numpy as np

log = logging.getLogger("fluxseg.train")


class Preemption:
    """A context manager that turns SIGTERM into a flag the loop polls."""

    def __init__(self):
        self.flag = False
        self._previous = None

    def __enter__(self) -> "Preemption":
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: no handler, no preemption saves
            self._previous = None
        return self

    def _handle(self, signum, frame):
        log.warning("SIGTERM received: saving a checkpoint and stopping")
        self.flag = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    def requested(self, at_sync_point: bool) -> bool:
        """Whether to stop now; with several processes, only where all of them agree."""
        if jax.process_count() == 1:
            return self.flag
        if not at_sync_point:
            return False
        from jax.experimental import multihost_utils
        return bool(np.any(multihost_utils.process_allgather(np.int32(self.flag))))
