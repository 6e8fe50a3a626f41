"""Joining a multi-process (multi-host) JAX run.

``initialize()`` is called once, before any other JAX call, by launch.py.
It connects the processes when explicit flags are given, or when the
environment shows a cluster that ``jax.distributed.initialize()`` detects on
its own (SLURM with more than one task, Cloud TPU pods, Open MPI,
JAX_COORDINATOR_ADDRESS); on a single machine it does nothing.
"""
from __future__ import annotations

import logging
import os
from typing import Optional

import jax


def _cluster_in_environment() -> Optional[str]:
    env = os.environ
    if env.get("JAX_COORDINATOR_ADDRESS"):
        return "JAX_COORDINATOR_ADDRESS"
    if env.get("SLURM_JOB_ID") and int(env.get("SLURM_NTASKS", "1")) > 1:
        return "SLURM"
    if env.get("OMPI_COMM_WORLD_SIZE") and int(env["OMPI_COMM_WORLD_SIZE"]) > 1:
        return "Open MPI"
    if env.get("TPU_WORKER_HOSTNAMES") and "," in env["TPU_WORKER_HOSTNAMES"]:
        return "Cloud TPU pod"
    return None


def initialize(coordinator_address: Optional[str] = None, num_processes: Optional[int] = None,
               process_id: Optional[int] = None, local_device_ids=None) -> bool:
    """Connects this process to the others; returns True if it did.

    Explicit arguments win (all three of address, count and id, as
    ``jax.distributed.initialize`` takes them); otherwise auto-detection runs
    only when a cluster is visible in the environment.
    """
    explicit = coordinator_address is not None or num_processes is not None
    if explicit:
        if coordinator_address is None or num_processes is None or process_id is None:
            raise ValueError("multi-process flags need all of coordinator_address, "
                             "num_processes and process_id")
        if int(num_processes) <= 1:
            return False
        jax.distributed.initialize(coordinator_address=coordinator_address,
                                   num_processes=int(num_processes),
                                   process_id=int(process_id),
                                   local_device_ids=local_device_ids)
    else:
        source = _cluster_in_environment()
        if source is None:
            return False
        logging.info("fluxseg: joining a multi-process run detected from %s", source)
        jax.distributed.initialize()
    logging.info("fluxseg: process %d of %d, %d local / %d global devices",
                 jax.process_index(), jax.process_count(), jax.local_device_count(),
                 jax.device_count())
    return True


def sum_over_processes(tree):
    """A pytree of host numpy arrays summed over all processes, exactly.

    Each process's arrays travel as their raw bytes, so int64 and float64 sums
    keep every digit (JAX without x64 would round them to 32 bits on the way).
    """
    if jax.process_count() == 1:
        return tree
    import numpy as np
    from jax.experimental import multihost_utils

    def one(x):
        x = np.ascontiguousarray(x)
        raw = x.reshape(-1).view(np.int32)  # 4- and 8-byte dtypes
        every = np.asarray(multihost_utils.process_allgather(raw))  # [processes, 2 n]
        return every.view(x.dtype).sum(axis=0).reshape(x.shape).astype(x.dtype)

    return jax.tree_util.tree_map(one, tree)
