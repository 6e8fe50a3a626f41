"""`fluxseg sweep`: a grid of training runs over seeds, and the report that compares them.

    fluxseg sweep --config experiments/NAME.py[:ARG] [--grid KEY=V1,V2 ...] [--seeds 0-4]
        [--workdir runs/NAME] [--config.KEY=VALUE ...] [--baseline KEY=VALUE]
        [--executor local|slurm] [--parallel N] [--dry-run]
        [--partition P --gpus-per-run G --time MINUTES --sbatch KEY=VALUE --setup 'module load ...']
    fluxseg sweep report runs/NAME [--baseline KEY=VALUE]

The runs are the product of the experiment's own ``get_sweep(ARG)`` (if it
has one) and each ``--grid``, times ``--seeds`` (which replace any seeds
``get_sweep`` sets). ``--config.KEY=VALUE`` applies to every run, as in
launch.py; every key is checked against the config and every value parsed
before anything starts. Each run gets its own workdir,
``<workdir>/<variant>/seed=<S>/``; running the same command again skips the
finished runs and resumes the others from their checkpoints. At the end, and
with ``fluxseg sweep report``, results.json, results.md and figures are
written to the sweep directory (fluxseg/sweep/report.py).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys

from fluxseg.sweep import grid, runs as runs_lib

PROG = "fluxseg sweep"


class UsageError(ValueError):
    """A bad sweep command: printed as one line, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[2],
                                epilog="`fluxseg sweep report DIR [--baseline K=V]` writes the report of a sweep again.")
    p.add_argument("--config", required=True, help="experiments/NAME.py[:ARG], as for launch.py")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a config key and its values; several --grid multiply")
    p.add_argument("--seeds", default=None, help="e.g. 0-4 or 0,1,7 (replaces get_sweep's seeds)")
    p.add_argument("--workdir", default=None, help="the sweep directory (default runs/<experiment>_sweep)")
    p.add_argument("--baseline", action="append", default=None, metavar="KEY=VALUE",
                   help="the variant the others are compared with (default the first)")
    p.add_argument("--executor", choices=["local", "slurm"], default="local")
    p.add_argument("--parallel", type=int, default=1,
                   help="runs at a time (local: GPUs are split between them; slurm: the array's limit)")
    p.add_argument("--dry-run", action="store_true", help="list the runs, their workdirs and status; run nothing")
    s = p.add_argument_group("slurm (--executor slurm; needs `pip install 'fluxseg[slurm]'`)")
    s.add_argument("--partition", default=None)
    s.add_argument("--gpus-per-run", type=int, default=None)
    s.add_argument("--cpus-per-run", type=int, default=None)
    s.add_argument("--time", type=int, default=60, help="time limit of one job, minutes (it requeues after)")
    s.add_argument("--sbatch", action="append", default=[], metavar="KEY=VALUE",
                   help="an extra sbatch option, e.g. --sbatch account=proj --sbatch qos=high")
    s.add_argument("--setup", action="append", default=[], metavar="SHELL",
                   help="a line run before each job, e.g. 'module load cuda'")
    return p


def _split_config(spec: str) -> tuple[str, str | None]:
    path, sep, arg = spec.partition(":")
    if not os.path.exists(path):
        raise UsageError(f"--config {spec}: no such file {path!r}")
    return path, (arg if sep else None)


def _experiment_entries(module, arg) -> list[dict]:
    """The experiment's own ``get_sweep(arg)``, or one empty entry."""
    if not hasattr(module, "get_sweep"):
        return [{}]
    entries = module.get_sweep(arg) if arg is not None else module.get_sweep()
    if not isinstance(entries, (list, tuple)) or not all(isinstance(e, dict) for e in entries):
        raise UsageError(f"get_sweep() of {module.__file__} must return a list of dicts "
                         f"(use fluxseg.sweep.grid.product/zip/sweep), got {type(entries).__name__}")
    return [{grid.config_key(k): v for k, v in e.items()} for e in entries] or [{}]


def _as_text(entries: list[dict]) -> list[dict]:
    return [{k: (v if isinstance(v, str) else grid.value_text(v)) if k != grid.SEED else v
             for k, v in e.items()} for e in entries]


def expand(config: str, grids: list[str], seeds: str | None, overrides: list[str]) -> list[runs_lib.Run]:
    """The runs of a sweep command, every key and value checked against the config.

    Raises UsageError naming the key or value at fault; nothing has started then.
    """
    from absl.flags import IllegalFlagValueError

    from fluxseg.cli.train import config_from_args
    from fluxseg.train.config import load_config_file, unknown_key_message

    path, arg = _split_config(config)
    module = load_config_file(path)
    base = module.get_config(arg) if arg is not None else module.get_config()
    shared = {}
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("-")
        message = unknown_key_message(base, key[len("config."):])
        if message:
            raise UsageError(f"--{message}")
        shared[key[len("config."):]] = o
    if any(grid.config_key(g.split("=", 1)[0].strip()) == grid.SEED for g in grids):
        raise UsageError("give the seeds with --seeds (e.g. --seeds 0-4), not --grid seed=...")
    try:
        entries = _experiment_entries(module, arg)
        for g in grids:
            entries = grid.product(entries, grid.parse_grid(g))
        entries = grid.with_seeds(entries, grid.parse_seeds(seeds) if seeds else None)
    except ValueError as e:
        raise UsageError(str(e)) from None
    texts = _as_text(entries)
    source = {k: "--grid" for g in grids for k in [grid.config_key(g.split("=", 1)[0].strip())]}
    for key in dict.fromkeys(k for e in texts for k in e):
        flag = f"{source.get(key, 'get_sweep()')} {key}"
        message = unknown_key_message(base, key)
        if message:
            # The message names config.KEY; the user wrote KEY after --grid or in get_sweep().
            raise UsageError(f"{flag}{message[len('config.' + key):]}")
        if key in shared:
            raise UsageError(f"{shared[key]} sets a key the sweep varies ({flag}); drop one of them")
    try:
        planned = runs_lib.plan(texts)
    except ValueError as e:
        raise UsageError(str(e)) from None
    for r, wanted in zip(planned, entries):  # parsed as launch.py parses: a typo fails here, not in run 7
        try:
            parsed = config_from_args(config, [*overrides, *r.config_args()])
        except (IllegalFlagValueError, ValueError, TypeError) as e:
            raise UsageError(f"run {r.path}: {e}") from None
        _check_round_trip(r, parsed, wanted)
    return planned


def _check_round_trip(run: runs_lib.Run, parsed, wanted: dict) -> None:
    """A get_sweep() value travels to its run as command-line text; it must parse back to itself
    (None, for one, cannot reach a string-valued key that way)."""
    for key, value in wanted.items():
        if key == grid.SEED or isinstance(value, str):
            continue
        node = parsed
        for part in key.split("."):
            node = node[part]
        if not _same(node, value):
            raise UsageError(f"run {run.path}: get_sweep() sets {key}={value!r}, which reaches the "
                             f"run as --config.{key}={run.overrides[key]} and parses as {node!r}; "
                             "use a value of the config's type for that key")


def _same(parsed, value) -> bool:
    if isinstance(value, (list, tuple)):
        return isinstance(parsed, (list, tuple)) and tuple(parsed) == tuple(value)
    if value is None or isinstance(value, bool):
        return parsed is value
    return parsed == value


def _check_workdir(root: str, config: str, overrides: list[str], planned, launch) -> None:
    """A sweep directory serves one config and one set of shared overrides; each run
    directory one command line."""
    import json

    path = os.path.join(root, runs_lib.SWEEP_FILE)
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
        if old.get("config") != config or list(old.get("overrides", [])) != list(overrides):
            raise UsageError(
                f"{root} holds a sweep of {old.get('config')} {' '.join(old.get('overrides', []))}; "
                f"this command is {config} {' '.join(overrides)}; use another --workdir")
    for r in planned:
        record = runs_lib.read_json(os.path.join(launch.workdir(r), runs_lib.RUN_FILE))
        if record and record.get("args") != launch.args(r)[2:]:
            raise UsageError(f"{launch.workdir(r)} was started with other arguments "
                             f"({' '.join(record.get('args', []))}); use another --workdir")


def _baseline(flags: list[str] | None, planned) -> dict:
    """{key: value text} of the baseline variant; the first variant by default."""
    variants = runs_lib.variants(planned)
    if not flags:
        return dict(variants[0][1])
    keys = list(variants[0][1])
    short = grid.short_keys(keys)
    out = {}
    for f in flags:
        name, sep, value = f.partition("=")
        match = [k for k in keys if k == name or short[k] == name or k.endswith("." + name)]
        if not sep or len(match) != 1:
            raise UsageError(f"--baseline {f!r}: expected KEY=VALUE with KEY one of the swept keys "
                             f"({', '.join(keys) or 'none: the sweep has one variant'})")
        values = sorted({o[match[0]] for _, o in variants})
        if value not in values:
            raise UsageError(f"--baseline {f!r}: the sweep's values of {match[0]} are {', '.join(values)}")
        out[match[0]] = value
    return out


def _table(planned, launch) -> str:
    rows = []
    for r in planned:
        st = runs_lib.status(launch.workdir(r))
        rows.append(f"  {r.path:<44} {st.describe()}")
    return "\n".join(rows)


def run_sweep(argv: list[str]) -> int:
    p = _parser()
    args, rest = p.parse_known_args(argv)
    bad = [a for a in rest if not a.startswith("--config.")]
    if bad:
        p.error(f"unrecognized arguments: {' '.join(bad)} (only --config.KEY=VALUE passes to the runs)")
    if any("=" not in a for a in rest):
        p.error("write overrides as --config.KEY=VALUE (with '=')")
    from fluxseg.sweep import executors

    name = os.path.splitext(os.path.basename(args.config.split(":")[0]))[0]
    root = os.path.abspath(args.workdir or os.path.join("runs", f"{name}_sweep"))
    try:
        planned = expand(args.config, args.grid, args.seeds, rest)
        launch = executors.Launch(root=root, config=args.config, overrides=tuple(rest))
        _check_workdir(root, args.config, rest, planned, launch)
        baseline = _baseline(args.baseline, planned)
    except UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    n_var = len(runs_lib.variants(planned))
    print(f"{PROG}: {len(planned)} runs ({n_var} variant{'s' * (n_var > 1)} x seeds) of {args.config} in {root}")
    print(_table(planned, launch))
    if args.dry_run:
        return 0
    runs_lib.save_sweep(root, {"config": args.config, "overrides": list(rest),
                               "runs": [r.to_json() for r in planned], "baseline": baseline,
                               "command": "fluxseg sweep " + " ".join(argv)})
    todo = [r for r in planned if runs_lib.status(launch.workdir(r)).state != runs_lib.FINISHED]
    if len(todo) < len(planned):
        print(f"{PROG}: {len(planned) - len(todo)} runs already finished; running {len(todo)}")
    try:
        if args.executor == "local":
            with _only_sweep_in(root):
                executors.LocalExecutor(launch, args.parallel).run(todo)
        else:
            from fluxseg.sweep import slurm
            slurm.submit(launch, todo, partition=args.partition, gpus_per_run=args.gpus_per_run,
                         cpus_per_run=args.cpus_per_run, time_min=args.time,
                         sbatch=dict(_pair(s) for s in args.sbatch), setup=args.setup,
                         parallel=args.parallel, wait=True)
    except (ValueError, ImportError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    return _finish(root, planned, launch)


@contextlib.contextmanager
def _only_sweep_in(root: str):
    """Holds <root>/.lock while runs execute: two sweeps in one directory would train
    the same runs twice. The kernel releases it when the process dies, however it dies."""
    import fcntl

    with open(os.path.join(root, ".lock"), "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"another fluxseg sweep is running in {root}; wait for it or stop it") from None
        yield


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f"--sbatch {text!r}: expected KEY=VALUE, e.g. account=myproject")
    return key, value


def _finish(root, planned, launch) -> int:
    failed = []
    for r in planned:
        st = runs_lib.status(launch.workdir(r))
        if st.state != runs_lib.FINISHED:
            failed.append((r, st))
    for r, st in failed:
        log = os.path.join(launch.workdir(r), runs_lib.LOG_FILE)
        if st.state == runs_lib.FAILED:  # the end of its log says why
            print(f"\n{PROG}: {r.path}: {st.describe()}; log {log}:\n{runs_lib.log_tail(launch.workdir(r))}",
                  file=sys.stderr)
        else:
            print(f"{PROG}: {r.path}: {st.describe()}", file=sys.stderr)
    code = report_main([root])
    if failed:
        print(f"{PROG}: {len(failed)} of {len(planned)} runs did not finish; run the same command "
              "again to resume them", file=sys.stderr)
    return 1 if failed else code


def report_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog=f"{PROG} report",
                                description="Writes results.json, results.md and figures of a sweep directory.")
    p.add_argument("root", help="the sweep directory (holds sweep.json)")
    p.add_argument("--baseline", action="append", default=None, metavar="KEY=VALUE",
                   help="compare with this variant instead of the sweep's baseline")
    args = p.parse_args(argv)
    from fluxseg.sweep import report

    try:
        record = runs_lib.load_sweep(args.root)
        baseline = _baseline(args.baseline, record["runs"]) if args.baseline else None
        files = report.write(args.root, baseline=baseline)
    except (UsageError, FileNotFoundError, ValueError) as e:
        print(f"{PROG} report: error: {e}", file=sys.stderr)
        return 2
    print(f"{PROG} report: " + ", ".join(files))
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["report"]:
        return report_main(argv[1:])
    return run_sweep(argv)
