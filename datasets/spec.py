"""What every dataset module needs and nothing else: the dataset description, its error type,
the cache folder and the tonic import check. The lowest module of the package: the registry,
the custom-file reader and the tonic sets import it, it imports none of them."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from .binning import Binning


class DatasetError(ValueError):
    """Bad dataset content (truncated file, wrong layout, labels out of range, empty recording)."""


def data_root(root=None) -> str:
    """Cache folder: ``root``, else ``$SPIKELFP_DATA``, else ``~/.cache/spikelfp``. An empty
    ``SPIKELFP_DATA=`` counts as unset (it once put a whole dataset build in the working folder)."""
    path = os.path.abspath(os.path.expanduser(root or os.environ.get("SPIKELFP_DATA") or "~/.cache/spikelfp"))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"dataset cache {path} (--data-root or $SPIKELFP_DATA) is a file, not a folder")
    return path


def source_fingerprint(paths) -> str:
    """A digest of every file under ``paths`` (files or folders): relative name, size and
    modification time, in sorted order. Deleting, adding, replacing or editing a recording
    changes it; reading 70,000 N-MNIST files' metadata takes a fraction of a second."""
    h = hashlib.sha1()
    for top in paths:
        top = os.path.abspath(top)
        if os.path.isfile(top):
            entries = [(top, "")]
        elif os.path.isdir(top):
            entries = []
            for dp, dirs, files in os.walk(top):
                dirs.sort()
                entries += [(os.path.join(dp, f), os.path.relpath(os.path.join(dp, f), top)) for f in sorted(files)]
        else:
            h.update(f"missing {top}\n".encode())
            continue
        h.update(f"{top}\n".encode())
        for full, rel in entries:
            try:
                st = os.stat(full)
            except OSError:
                continue
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def require_tonic():
    try:
        import tonic
    except ImportError:  # pragma: no cover - tonic is installed by `make venv`
        raise ImportError("this dataset is read through tonic: pip install tonic") from None
    return tonic


@dataclass(frozen=True)
class DatasetSpec:
    """One registered dataset.

    ``splits(root, progress, download) -> {"train": ds, "test": ds}`` where ``ds[k]`` is
    ``(events structured array with t [us] and x[, y, p], label)`` and ``len(ds)`` works (tonic's
    datasets are exactly that).
    """

    name: str
    description: str
    n_classes: int
    sensor_size: tuple
    default_binning: Binning
    splits: Callable
    classes: tuple = field(default_factory=tuple)
    version: str = "1"
    offline: bool = False          # generated here, never downloaded
    present: Callable = None       # root -> bool (raw files on disk)
    raw_folder: str = ""           # folder of the raw files under the root (tonic's class name)
    archives: tuple = ()           # ((split, filename, md5, url), ...) a user places by hand offline
    sources: Callable = None       # (root, **build kwargs) -> paths whose files the cache is keyed on

    def input_size(self, binning: Binning | None = None) -> int:
        return (binning or self.default_binning).n_channels(self.sensor_size)

    def input_shape(self, binning: Binning | None = None) -> tuple:
        """Channels-last (H, W, C) of the binned channels (channel = (y * W + x) * C + c)."""
        W, H, C = (binning or self.default_binning).out_shape(self.sensor_size)
        return (int(H), int(W), int(C))
