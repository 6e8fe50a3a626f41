"""What fluxseg does about a checkpoint that cannot be read back: the errors and their messages,
the processes' common verdict, and moving a damaged step out of the way.

A step is damaged when its files differ from its checksum list
(fluxseg/train/checksums.py) or when reading it fails. Readers never guess:
`restore` names the step, its directory, what could not be read and the steps
that can be; resuming training falls back to the newest step that reads back
whole and moves the damaged ones to ``<workdir>/damaged_checkpoints/`` (so that
later saves of the same step numbers are not blocked; nothing is deleted).
"""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
from typing import Optional, Sequence

import jax
import numpy as np

DAMAGED_DIR = "damaged_checkpoints"
RESUME_DAMAGED = ("fallback", "error")  # values of config.resume_damaged


class DamagedCheckpointError(OSError):
    """A checkpoint step whose files cannot be read back as they were saved.

    step: the damaged step; path: its directory; intact: the steps that could
    be read instead, newest first (empty if none).
    """

    def __init__(self, message: str, *, step: Optional[int] = None, path: Optional[str] = None,
                 intact: Sequence[int] = ()):
        super().__init__(message)
        self.step, self.path, self.intact = step, path, tuple(intact)

    def __str__(self) -> str:
        return self.args[0]


class CheckpointMismatchError(ValueError):
    """A checkpoint that reads back whole but does not fit what it is read into: another model
    in the workdir, or a model whose code changed since the run was saved."""


class ItemUnreadable(Exception):
    """Reading one item of a step (variables, opt, meta) failed with ``error``."""

    def __init__(self, item: str, error: BaseException):
        super().__init__(item, error)
        self.item, self.error = item, error

    def __str__(self) -> str:
        return f"its {self.item}: {one_line(self.error)}"


@dataclasses.dataclass
class Problem:
    """Why one step could not be read."""

    what: str                   # one line: what failed, for the user
    files_intact: bool = False  # the checksum list vouches for the files: a mismatch, not damage
    files_changed: bool = False  # the checksum list shows changed files: damage for certain


def one_line(error: BaseException, limit: int = 240) -> str:
    """'Type: first line of the message', cut to ``limit`` characters (TensorStore appends pages of spec)."""
    if isinstance(error, ItemUnreadable):
        return str(error)
    text = str(error).strip().splitlines()
    line = f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def listed(found: Sequence[str], most: int = 3) -> str:
    """The checksum differences as one phrase."""
    more = f" and {len(found) - most} more file(s)" if len(found) > most else ""
    return "; ".join(found[:most]) + more


def agreed(problem: Optional[Problem]) -> Optional[Problem]:
    """Every process's verdict on a step, combined: damaged if it is damaged for any of them.

    Each process reads the step itself; a disk that fails on one host only
    must not send the processes of one run to different steps.
    """
    if jax.process_count() == 1:
        return problem
    from jax.experimental import multihost_utils

    ok = np.asarray(multihost_utils.process_allgather(np.int32(problem is None)))
    if problem is None and not ok.all():
        return Problem(f"could not be read on process(es) {np.flatnonzero(ok == 0).tolist()}")
    return problem


def barrier(name: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def aside_paths(workdir: str, steps: Sequence[int]) -> dict[int, str]:
    """Where each damaged step goes: <workdir>/damaged_checkpoints/<step>, or <step>-2, -3, ...
    when an earlier damaged copy of that step is already there."""
    root = os.path.join(os.path.abspath(workdir), DAMAGED_DIR)
    out = {}
    for step in steps:
        dest, n = os.path.join(root, str(step)), 1
        while os.path.exists(dest):
            n += 1
            dest = os.path.join(root, f"{step}-{n}")
        out[step] = dest
    return out


def move_aside(sources: dict[int, str], dests: dict[int, str]) -> None:
    """Moves each step directory to its destination (process 0; the others wait)."""
    if jax.process_index() == 0:
        for step, src in sources.items():
            os.makedirs(os.path.dirname(dests[step]), exist_ok=True)
            shutil.move(src, dests[step])
    barrier("fluxseg: damaged checkpoints moved aside")


def _same_failure(problems: Sequence[Problem]) -> bool:
    """Whether every step failed alike: code, not disks. Only the words count (the numbers,
    shapes and paths differ with the array Orbax happened to read first), and only the first
    ones (messages are cut at different places)."""
    shapes = {" ".join(re.findall(r"[A-Za-z_]+", p.what))[:80] for p in problems}
    return len(problems) > 1 and len(shapes) == 1


def restore_hint(workdir: str, step: int) -> str:
    return f"fluxseg.restore({workdir!r}, step={step}) (`--step {step}` for fluxseg eval / predict)"


def message(workdir: str, step: int, path: str, problem: Problem, intact: Sequence[int],
            others: dict[int, Problem]) -> str:
    """The one message about a damaged step: which, where, what, and what can be read instead."""
    head = f"checkpoint step {step} of {workdir} is damaged: {path} could not be read ({problem.what})."
    if intact:
        listing = ", ".join(str(s) for s in intact)
        return (f"{head} Intact steps, newest first: {listing}; load one with "
                f"{restore_hint(workdir, intact[0])}.")
    text = f"{head} No other step of the run could be read either"
    if others:
        text += " (" + "; ".join(f"step {s}: {p.what}" for s, p in others.items()) + ")"
    text += "."
    every = [problem, *others.values()]
    if _same_failure(every) and not any(p.files_changed for p in every):
        text += (" Every step fails the same way, which points to a run that no longer fits "
                 "today's code or config rather than to damaged files.")
    return text


def mismatch_message(workdir: str, step: int, path: str, problem: Problem) -> str:
    return (f"checkpoint step {step} of {workdir} is intact (its files match their checksums) but "
            f"does not fit the model its saved config builds: {problem.what}. The model's code or "
            f"its config changed since the run was saved; read it with the code that wrote it.")
