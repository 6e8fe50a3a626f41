"""Sweeps: grids of training runs over seeds, their executors, statistics and report.

grid.py      a sweep as a list of override dicts; product / zip / sweep; run names
runs.py      the run table (sweep.json) and each run's status read from its workdir
executors.py local execution (N runs at a time, GPUs split); child.py, a run's process
slurm.py     a SLURM job array through submitit (optional: `pip install 'fluxseg[slurm]'`)
stats.py     mean, std, Student-t intervals, Welch's test, the verdict in words
report.py    results.json / results.md; plots.py its figures

The command is `fluxseg sweep` (fluxseg/cli/sweep.py). Nothing here imports JAX.
"""
