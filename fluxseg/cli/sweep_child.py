"""The process a sweep starts for one run: ``fluxseg train`` with the sweep's signals.

    python -m fluxseg.cli.sweep_child --config FILE[:ARG] --workdir RUNDIR [--config.KEY=VALUE ...]

takes exactly the arguments of ``python launch.py`` and runs the same
launcher. Before that it ignores SIGINT and SIGUSR2 (the choice survives the
launcher's re-exec): Ctrl-C in the sweep's terminal reaches every process of
the group, and SLURM sends SIGUSR2 to every process of a job step, but it is
the sweep (or the SLURM job) that decides; it sends SIGTERM, on which the
training loop saves a checkpoint and exits.
"""
import signal
import sys


def main() -> int:
    for sig in (signal.SIGINT, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_IGN)
    from fluxseg.runtime import cpu_process

    cpu_process.reexec()  # glibc's malloc settings for XLA's CPU runtime; before JAX loads
    from fluxseg.cli.train import main as train

    return train(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
