"""How long the training loop waits for its data, per log interval.

The train step is dispatched asynchronously, so the host's only wait for
data is inside `next(batches)`: time blocked there over the wall time of
the interval is the fraction of the run the accelerator could have been
fed faster. Near 0: the step is the bottleneck; near 1: the input pipeline.
"""
from __future__ import annotations

import time
from typing import Iterator


class DataWait:
    """Accumulates the seconds spent in `next(batches)` since the last reset."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.waited, self.start = 0.0, time.perf_counter()

    def next(self, batches: Iterator):
        t = time.perf_counter()
        batch = next(batches)
        self.waited += time.perf_counter() - t
        return batch

    def fraction(self) -> float:
        """Seconds waited / seconds since the reset (0..1)."""
        return min(self.waited / max(time.perf_counter() - self.start, 1e-9), 1.0)
