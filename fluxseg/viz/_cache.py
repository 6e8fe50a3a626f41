"""One compiled function per (model, what it computes), kept for the process.

Flax modules are rebuilt cheaply but `jax.jit` keys its cache on the Python
function, so a fresh closure per call would recompile every time. Entries
hold the module itself, so an id() is never reused while its entry lives.
"""
from __future__ import annotations

from typing import Any, Callable, Hashable

_CACHE: dict[tuple, tuple[Any, Callable]] = {}
_MAX = 64


def cached(model, key: Hashable, build: Callable[[], Callable]) -> Callable:
    k = (id(model), key)
    hit = _CACHE.get(k)
    if hit is not None and hit[0] is model:
        return hit[1]
    if len(_CACHE) >= _MAX:
        _CACHE.pop(next(iter(_CACHE)))
    fn = build()
    _CACHE[k] = (model, fn)
    return fn
