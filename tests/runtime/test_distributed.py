"""Joining a multi-process run: when initialize() acts, and what it refuses."""
import pytest

from fluxseg.runtime import distributed


def test_cluster_detection_from_the_environment(monkeypatch):
    for key in ("JAX_COORDINATOR_ADDRESS", "SLURM_JOB_ID", "SLURM_NTASKS",
                "OMPI_COMM_WORLD_SIZE", "TPU_WORKER_HOSTNAMES"):
        monkeypatch.delenv(key, raising=False)
    assert distributed._cluster_in_environment() is None
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("SLURM_NTASKS", "1")           # a one-task job is not a cluster
    assert distributed._cluster_in_environment() is None
    monkeypatch.setenv("SLURM_NTASKS", "8")
    assert distributed._cluster_in_environment() == "SLURM"
    monkeypatch.delenv("SLURM_JOB_ID")
    monkeypatch.setenv("TPU_WORKER_HOSTNAMES", "t0,t1")
    assert distributed._cluster_in_environment() == "Cloud TPU pod"


def test_single_machine_does_nothing_and_partial_flags_are_refused(monkeypatch):
    monkeypatch.setattr(distributed, "_cluster_in_environment", lambda: None)
    assert distributed.initialize() is False
    assert distributed.initialize("127.0.0.1:1234", 1, 0) is False  # one process: nothing to join
    with pytest.raises(ValueError, match="process_id"):
        distributed.initialize("127.0.0.1:1234", 2)
