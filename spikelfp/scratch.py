"""Reusable scratch buffers for the kernels: no large allocation per batch.

A kernel that allocated its work arrays on every call paid for them in page faults: numba's
worker threads free them into per-thread malloc arenas that hand the pages back to the system,
so the next batch faults them in again. Measured on digits-saccade (578-256-10, T = 30, batch 32),
the temporal rule's epoch took 0.30 s that way after a spike-count run in the same process (and
0.14-0.15 s in a fresh one) against 0.11 s with the buffers kept (docs/performance.md).

:func:`scratch` keeps one array per name and dtype for each Python thread and grows it when a
call needs more; kernels read only the part they need, so results never depend on its size.
"""

from __future__ import annotations

import threading

import numpy as np

_local = threading.local()


def scratch(name: str, rows: int, cols: int, dtype) -> np.ndarray:
    """A C-contiguous (>= rows, >= cols) array of ``dtype``, reused across calls of this thread
    (contents undefined)."""
    dtype = np.dtype(dtype)
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    key = (name, dtype.str)
    a = cache.get(key)
    if a is None or a.shape[0] < rows or a.shape[1] < cols:
        shape = (max(rows, 0 if a is None else a.shape[0]), max(cols, 1, 0 if a is None else a.shape[1]))
        a = cache[key] = np.empty(shape, dtype)
    return a


def release() -> None:
    """Drop this thread's scratch buffers (they are made again on the next call)."""
    _local.cache = {}
