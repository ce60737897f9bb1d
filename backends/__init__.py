"""Pluggable backends, chosen by name: each imports its heavy dependency lazily.

========  ==========================================================  ===================
name      what                                                        needs
========  ==========================================================  ===================
lava      Lava processes on Loihi2SimCfg, float and fixed point       lava-nc 0.10.0
nir       NIR graph export / import                                   nir
netx      lava-dl netx HDF5 export                                    h5py
========  ==========================================================  ===================

Example
-------
>>> from spikelfp import backends
>>> sorted(backends.BACKENDS)
['lava', 'netx', 'nir']
"""

from __future__ import annotations

import importlib

BACKENDS = {
    "lava": ("spikelfp.backends.lava", "lava-nc: pip install --no-deps --ignore-requires-python lava-nc==0.10.0 "
             "after its dependencies (see the README)"),
    "nir": ("spikelfp.backends.nir", "nir: pip install nir"),
    "netx": ("spikelfp.backends.netx", "h5py: pip install h5py"),
}


def get(name: str):
    """The backend module registered as ``name``; a clear error if unknown or not installed."""
    try:
        module, install = BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(sorted(BACKENDS))}") from None
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"backend {name!r} needs {install} ({e})") from None


__all__ = ["BACKENDS", "get"]
