"""Launches a fluxseg training run (one host or many).

    python launch.py                                    # the default experiment
    python launch.py --config experiments/NAME.py[:ARG] --workdir DIR \\
        [--config.KEY=VALUE ...] [--mode train|eval]

Multi-host: run the same command on every host. The processes find each
other from SLURM / Cloud TPU / Open MPI / JAX_COORDINATOR_ADDRESS, or from
--coordinator_address HOST:PORT --num_processes N --process_id I.
Re-running a command in the same workdir resumes it. SIGTERM saves a
checkpoint and exits with status 0.
"""
if __name__ == "__main__":
    from fluxseg.runtime import cpu_process

    cpu_process.reexec()  # glibc's malloc settings for XLA's CPU runtime; before JAX loads
    from fluxseg.cli.train import run

    run()
