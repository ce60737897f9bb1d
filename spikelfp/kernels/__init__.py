"""The numba kernels, and a guard on their on-disk cache.

numba caches a compiled function with every jitted function it calls inlined into it, but checks
only the caller's own source file before it reuses that code: change ``lif.run_layer`` and
``feedback.temporal_feedback``, cached before, keeps running the old ``run_layer`` (numba's
documented limitation, "cache invalidation fails to recognize changes in functions defined in a
different file"). After a ``git pull`` that touched one kernel file, a clone would then compute with
a mix of old and new kernels, silently.

So the kernels' cache entries are stamped with one fingerprint of *all* the files whose jitted
functions call each other (:data:`GUARDED`), computed once when this package is imported (the code
the process runs): a change in any of them makes numba drop every cached entry of all of them and
compile again. The guard is a cache locator that numba tries before its own ones
(``CacheImpl._locator_classes``; ``_CacheImpl`` in older numba); it only changes the source stamp,
for those files, and keeps numba's choice of directory (``NUMBA_CACHE_DIR``, the source tree's
``__pycache__``, or the user-wide cache). Where a numba keeps its locators elsewhere, importing
warns and the cache stays unguarded.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_HERE = Path(__file__).resolve().parent

# the files whose jitted functions call (or inline) one another's: the kernels, and events.py (its
# spike compress inlines lif.emit_bits). A change in one must reach the cached code of every other.
# (spikelfp/loihi.py's and datasets/'s jitted functions call nothing across files: numba's own
# stamp covers them.)
GUARDED = tuple(sorted(str(p) for p in _HERE.glob("*.py"))) + (str(_HERE.parent / "events.py"),)


def fingerprint(paths) -> bytes:
    """sha256 over the names and contents of ``paths`` (in the given order)."""
    h = hashlib.sha256()
    for p in paths:
        h.update(os.path.basename(p).encode())
        with open(p, "rb") as f:
            h.update(f.read())
    return h.digest()


_GROUPS: dict = {}      # source path -> the stamp of its group


def guard_cache(paths) -> bytes:
    """Stamp the numba cache entries of the functions defined in ``paths`` with one fingerprint of
    all of them (computed now), so that a change in any file invalidates every file's entries.
    Call it before the modules' ``@njit(cache=True)`` functions are defined. Returns the stamp."""
    paths = [os.path.realpath(p) for p in paths]
    stamp = fingerprint(paths)
    for p in paths:
        _GROUPS[p] = stamp
    _install()
    return stamp


def _guarded(base):
    class Guarded(base):
        def get_source_stamp(self):
            return _GROUPS[os.path.realpath(self._py_file)]

        @classmethod
        def from_function(cls, py_func, py_file):
            if os.path.realpath(py_file) not in _GROUPS:
                return None
            return super().from_function(py_func, py_file)

    Guarded.__name__ = Guarded.__qualname__ = "Guarded" + base.__name__
    return Guarded


def _install() -> None:
    from numba.core import caching

    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)   # (older numba)
    mixin = getattr(caching, "_SourceFileBackedLocatorMixin", None)
    classes = getattr(impl, "_locator_classes", None)
    if mixin is None or not isinstance(classes, list):
        import warnings

        warnings.warn("spikelfp: this numba's cache locators are not where spikelfp looks for them, so its "
                      "kernels' cache is not guarded against stale callees; after updating spikelfp, delete "
                      "the __pycache__ folders under spikelfp/ (or set NUMBA_CACHE_DIR to a new folder)",
                      RuntimeWarning, stacklevel=3)
        return
    if any(getattr(c, "_spikelfp_guard", False) for c in classes):
        return
    guards = []
    for base in list(classes):
        if issubclass(base, mixin):      # the locators of plain source files
            g = _guarded(base)
            g._spikelfp_guard = True
            guards.append(g)
    classes[:0] = guards


STAMP = guard_cache(GUARDED)
