"""The run table of a sweep and what each run's own records say about it.

A sweep directory holds ``sweep.json`` (the config, the overrides shared by
every run, the table of runs, the baseline) and one workdir per run,
``<variant>/seed=<S>/``, an ordinary training workdir (checkpoints/,
metrics.jsonl, config.json, environment.jsonl) plus what the sweep adds:
``run.json`` (the run's command line), ``log.txt`` (its stdout and stderr)
and ``exit.json`` (its exit status, written when the process ends).

Whether a run is finished is read from the run's own files, never from the
sweep's memory: its resolved config.json names the final step and the eval
split, and a finished run has that split's eval record at that step in
metrics.jsonl and a checkpoint of that step whose files match its checksum
list (a damaged final checkpoint makes the run partial: running the sweep
again resumes it from its newest intact step and trains it to the end).
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Optional, Sequence

from fluxseg.sweep import grid
from fluxseg.train import checksums

SWEEP_FILE = "sweep.json"
RUN_FILE = "run.json"
LOG_FILE = "log.txt"
EXIT_FILE = "exit.json"

FINISHED, PARTIAL, FAILED, NOT_STARTED = "finished", "partial", "failed", "not started"


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run: a variant (its overrides, as command-line text) and a seed."""
    variant: str                 # the variant's name, e.g. 'transpose_init=xavier'
    overrides: dict              # {config path: value text}, without the seed
    seed: int
    path: str                    # the workdir, relative to the sweep directory

    def config_args(self) -> list[str]:
        """The run's own ``--config.KEY=VALUE`` arguments (seed first)."""
        return [f"--config.{grid.SEED}={self.seed}",
                *(f"--config.{k}={v}" for k, v in self.overrides.items())]

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def plan(entries: Sequence[dict]) -> list[Run]:
    """Runs from override dicts of value text, each with a 'seed'; in the given order.

    Raises if an entry has no seed, if one run appears twice, or if two
    variants would share a directory name.
    """
    keys = [k for e in entries for k in e if k != grid.SEED]
    short = grid.short_keys(keys)
    runs, seen, names = [], set(), {}
    for e in entries:
        if grid.SEED not in e:
            raise ValueError(f"the sweep entry {e} has no seed; give --seeds (e.g. --seeds 0-4) "
                             "or set 'seed' in get_sweep()")
        overrides = {k: str(v) for k, v in e.items() if k != grid.SEED}
        seed = int(e[grid.SEED])
        ident = (tuple(sorted(overrides.items())), seed)
        if ident in seen:
            raise ValueError(f"the sweep lists the run {overrides or '(no overrides)'} seed {seed} twice")
        seen.add(ident)
        name = grid.variant_name(overrides, short)
        if names.setdefault(name, overrides) != overrides:
            raise ValueError(f"the variants {names[name]} and {overrides} would share the directory "
                             f"name {name!r}; use values that differ in letters or digits")
        runs.append(Run(variant=name, overrides=overrides, seed=seed, path=f"{name}/seed={seed}"))
    return runs


def variants(runs: Sequence[Run]) -> list[tuple[str, dict]]:
    """(name, overrides) of each variant, in the order of first appearance."""
    out: dict[str, dict] = {}
    for r in runs:
        out.setdefault(r.variant, r.overrides)
    return list(out.items())


# --- the sweep's own record ---------------------------------------------------------------

def save_sweep(root: str, record: dict) -> None:
    os.makedirs(root, exist_ok=True)
    tmp = os.path.join(root, SWEEP_FILE + ".tmp")
    with open(tmp, "w") as f:
        json.dump(record, f, indent=1)
    os.replace(tmp, os.path.join(root, SWEEP_FILE))


def load_sweep(root: str) -> dict:
    path = os.path.join(root, SWEEP_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{root} holds no {SWEEP_FILE}: it is not a sweep directory "
                                "(run `fluxseg sweep --config ... --workdir DIR` first)")
    with open(path) as f:
        record = json.load(f)
    record["runs"] = [Run(**r) for r in record["runs"]]
    return record


# --- a run's own records -------------------------------------------------------------------

def read_json(path: str) -> Optional[Any]:
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def read_metrics(workdir: str) -> list[dict]:
    """The records of metrics.jsonl; a line cut short by a killed process is skipped."""
    out = []
    try:
        with open(os.path.join(workdir, "metrics.jsonl")) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    except FileNotFoundError:
        pass
    return out


def checkpoint_steps(workdir: str) -> list[int]:
    """Steps of the completed checkpoints (Orbax renames a save's folder to its step when done)."""
    try:
        names = os.listdir(os.path.join(workdir, "checkpoints"))
    except FileNotFoundError:
        return []
    return sorted(int(n) for n in names if n.isdigit())


@dataclasses.dataclass
class Status:
    state: str                       # FINISHED | PARTIAL | FAILED | NOT_STARTED
    step: Optional[int] = None       # newest checkpoint
    total: Optional[int] = None      # num_train_steps of the resolved config
    returncode: Optional[int] = None  # of the last process, if it ended
    final: Optional[dict] = None     # the final eval record (finished runs)
    damaged: Optional[str] = None    # what is wrong with the final checkpoint, if anything

    def describe(self) -> str:
        if self.state == FAILED:
            at = f", checkpoint at step {self.step}" if self.step else ""
            return f"failed (exit status {self.returncode}{at})"
        if self.state == PARTIAL and self.damaged:
            return f"partial (its final checkpoint, step {self.total}, is damaged: {self.damaged})"
        if self.state == PARTIAL:
            return f"partial (step {self.step or 0} of {self.total or '?'})"
        return self.state


def final_eval(workdir: str, config: Optional[dict] = None) -> Optional[dict]:
    """The eval split's record at the final step, or None."""
    config = config or read_json(os.path.join(workdir, "config.json"))
    if not config:
        return None
    total, split = int(config["num_train_steps"]), config["data"]["eval_split"]
    last = None
    for r in read_metrics(workdir):
        if r.get("split") == split and int(r.get("step", -1)) == total:
            last = r  # a rerun that evaluated again appends; the newest wins
    return last


def status(workdir: str) -> Status:
    config = read_json(os.path.join(workdir, "config.json"))
    steps = checkpoint_steps(workdir)
    step = steps[-1] if steps else None
    exit_record = read_json(os.path.join(workdir, EXIT_FILE)) or {}
    rc = exit_record.get("returncode")
    total = int(config["num_train_steps"]) if config else None
    final = final_eval(workdir, config) if config else None
    if final is not None and total in steps:
        found = checksums.problems(os.path.join(workdir, "checkpoints", str(total)))
        if not found:  # [] intact, None a step saved before checksum lists existed
            return Status(FINISHED, step, total, rc, final)
        return Status(PARTIAL, step, total, rc, damaged="; ".join(found[:3]))
    if rc not in (None, 0):
        return Status(FAILED, step, total, rc)
    if step is None and not os.path.exists(os.path.join(workdir, LOG_FILE)):
        return Status(NOT_STARTED, None, total, rc)
    return Status(PARTIAL, step, total, rc)


def log_tail(workdir: str, lines: int = 15) -> str:
    try:
        with open(os.path.join(workdir, LOG_FILE), errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def write_exit(workdir: str, returncode: int, wall_s: float) -> None:
    with open(os.path.join(workdir, EXIT_FILE), "w") as f:
        json.dump({"returncode": int(returncode), "wall_s": round(float(wall_s), 1)}, f)


def clear_exit(workdir: str) -> None:
    try:
        os.remove(os.path.join(workdir, EXIT_FILE))
    except FileNotFoundError:
        pass
