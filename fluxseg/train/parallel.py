"""The two data-parallel wrappers around the per-device steps.

``mode='pmap'``: ``jax.pmap`` over axis 'batch' on the devices of one host;
the batch is reshaped to [devices, b, ...].
``mode='jit'``: ``jax.jit`` of ``shard_map`` over a 1-D mesh with axis 'data'
spanning every device of every process; each process feeds its host-local
rows and ``jax.make_array_from_process_local_data`` assembles the global
batch. This is the one to use across hosts.

In both, the train state is one replicated array per leaf (NamedSharding
with an empty PartitionSpec), donated to the step and returned replicated, so
a state is saved and restored the same way whichever wrapper made it. (On
the CPU backend the state is not donated: see backend.donate_argnums.)
``check_vma=False`` keeps shard_map's gradient semantics those of pmap: the
step takes per-device gradients and sums them itself.
"""
from __future__ import annotations

import collections
from typing import Any, Callable, Iterable, Iterator

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from fluxseg.runtime import backend

AXIS = {"pmap": "batch", "jit": "data"}


class DataParallel:
    """Devices, data placement and the step wrapper of one parallel mode."""

    def __init__(self, mode: str, devices=None):
        if mode not in AXIS:
            raise ValueError(f"parallel must be 'pmap' or 'jit', got {mode!r}")
        if mode == "pmap" and jax.process_count() > 1:
            raise ValueError("parallel='pmap' runs on one host; with "
                             f"{jax.process_count()} processes use parallel='jit'")
        self.mode = mode
        self.axis_name = AXIS[mode]
        self.devices = list(devices) if devices is not None else jax.devices()
        self._explicit_devices = devices is not None
        self.mesh = Mesh(np.array(self.devices), (self.axis_name,))
        self.replicated = NamedSharding(self.mesh, P())
        self.sharded = NamedSharding(self.mesh, P(self.axis_name))

    @property
    def num_devices(self) -> int:
        return len(self.devices)

    def check_batch_size(self, global_batch_size: int) -> None:
        if global_batch_size % self.num_devices:
            raise ValueError(
                f"batch_size {global_batch_size} is not divisible by the {self.num_devices} "
                f"devices; use a multiple of {self.num_devices}")

    # -- placing data ------------------------------------------------------
    def init(self, fn: Callable, *args):
        """Runs fn(*args) under jit with every output replicated on the mesh."""
        return backend.jit(fn, out_shardings=self.replicated)(*args)

    def replicate(self, tree):
        """Host arrays (the same on every process) -> replicated global arrays."""
        def put(x):
            x = np.asarray(x)
            return jax.make_array_from_callback(x.shape, self.replicated, lambda idx: x[idx])
        return jax.tree_util.tree_map(put, tree)

    def put_batch(self, batch: dict) -> dict:
        """Host-local numpy batch -> device arrays in the layout the step expects."""
        if self.mode == "jit":
            return {k: jax.make_array_from_process_local_data(self.sharded, np.asarray(v))
                    for k, v in batch.items()}
        n = self.num_devices
        out = {}
        for k, v in batch.items():
            v = np.asarray(v)
            if v.shape[0] % n:
                raise ValueError(f"a batch of {v.shape[0]} rows does not split over {n} devices")
            out[k] = jax.device_put(v.reshape(n, v.shape[0] // n, *v.shape[1:]), self.sharded)
        return out

    def prefetch(self, batches: Iterable[dict], size: int = 2) -> Iterator[dict]:
        """Puts the next ``size`` batches on device ahead of the step using them."""
        queue: collections.deque = collections.deque()
        it = iter(batches)
        for b in it:
            queue.append(self.put_batch(b))
            if len(queue) > size:
                yield queue.popleft()
        while queue:
            yield queue.popleft()

    # -- wrapping steps ------------------------------------------------------
    def _wrap(self, fn: Callable, donate: bool):
        # The state is donated only where that pays (backend.donate_argnums).
        donate_argnums = backend.donate_argnums(0) if donate else ()
        if self.mode == "pmap":
            # Under jit so that the step compiles with fluxseg's backend options, as in jit mode
            # (jax.pmap takes no compiler_options; in this JAX it is jit + shard_map anyway).
            return backend.jit(jax.pmap(fn, axis_name=self.axis_name, in_axes=(None, 0), out_axes=None,
                                           donate_argnums=donate_argnums,
                                           devices=self.devices if self._explicit_devices else None),
                                  donate_argnums=donate_argnums)
        mapped = jax.shard_map(fn, mesh=self.mesh, in_specs=(P(), P(self.axis_name)),
                               out_specs=P(), check_vma=False)
        return backend.jit(mapped, donate_argnums=donate_argnums)

    def train_step(self, step_fn: Callable) -> Callable:
        """step_fn(state, batch) -> (state, metrics), per device; state donated."""
        return self._wrap(step_fn, donate=True)

    def eval_step(self, eval_fn: Callable) -> Callable:
        """eval_fn(variables, batch) -> sums (already summed over the axis)."""
        return self._wrap(eval_fn, donate=False)


def to_host(tree: Any) -> Any:
    """Numpy copy of a pytree of (replicated) arrays; works on every process."""
    def get(a):
        if isinstance(a, jax.Array) and not a.is_fully_addressable:
            a = a.addressable_data(0)
        return np.asarray(a)
    return jax.tree_util.tree_map(get, tree)
