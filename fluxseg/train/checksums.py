"""The checksum list of a checkpoint step: size and CRC-32 of each file its items hold.

Orbax notices most damage to a checkpoint by itself (unreadable metadata, a
broken compressed chunk, a missing or truncated file), but not every kind: a
few flipped bits inside an array's stored bytes load as wrong numbers without
any error (benchmarks/README.md, "Damaged checkpoints"). So each step gets
``fluxseg_checksums.json`` beside its items, written once the items are
complete and before Orbax gives the step its final name, and readers compare
the files against it before they trust them.
"""
from __future__ import annotations

import json
import os
import zlib
from typing import Iterable, Optional

FILE = "fluxseg_checksums.json"
# Orbax's markers say that a directory was committed; they carry no data, and
# Orbax may write them around the time the list is taken.
_SKIPPED = ("commit_success.txt",)


def _digest(path: str) -> list[int]:
    """[size in bytes, CRC-32] of a file, read in 4 MiB blocks (zlib releases the GIL on each)."""
    crc, size = 0, 0
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            crc = zlib.crc32(block, crc)
            size += len(block)
    return [size, crc]


def _files(step_dir: str, items: Iterable[str]) -> list[str]:
    """Paths relative to ``step_dir`` of every file under its ``items``, '/'-separated."""
    out = []
    for item in items:
        for root, _, names in os.walk(os.path.join(step_dir, item)):
            for name in names:
                if name not in _SKIPPED:
                    out.append(os.path.relpath(os.path.join(root, name), step_dir).replace(os.sep, "/"))
    return sorted(out)


def write(step_dir: str, items: Iterable[str]) -> None:
    """Records every file of ``items`` under ``step_dir`` in ``step_dir/FILE`` (replaced atomically)."""
    entries = {rel: _digest(os.path.join(step_dir, rel)) for rel in _files(step_dir, items)}
    path = os.path.join(step_dir, FILE)
    with open(path + ".tmp", "w") as f:
        json.dump({"algorithm": "crc32", "files": entries}, f)
    os.replace(path + ".tmp", path)


def problems(step_dir: str, items: Optional[Iterable[str]] = None) -> Optional[list[str]]:
    """What differs from the list in the files of ``items`` (None: every file the list
    records): [] if nothing, None if the step has no list (saved before lists existed, or
    stopped before its list was written)."""
    path = os.path.join(step_dir, FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            recorded = json.load(f)["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return [f"its checksum list {FILE} is unreadable ({type(e).__name__})"]
    items = None if items is None else tuple(items)
    out = []
    for rel, (size, crc) in sorted(recorded.items()):
        if items is not None and rel.split("/")[0] not in items:
            continue
        full = os.path.join(step_dir, rel)
        if not os.path.exists(full):
            out.append(f"{rel} is missing")
            continue
        got_size, got_crc = _digest(full)
        if got_size != size:
            out.append(f"{rel} has {got_size} bytes, {size} were written")
        elif got_crc != crc:
            out.append(f"{rel} differs from what was written (CRC-32)")
    return out
