"""Dataset registry: names -> how to obtain raw events, and the binned HDF5 cache."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .base import EventDataset, read_cache, write_cache
from .binning import Binning, bin_events


def data_root(root=None) -> str:
    """Cache folder: ``root``, else ``$SPIKELFP_DATA``, else ``~/.cache/spikelfp``."""
    if root:
        return os.path.abspath(os.path.expanduser(root))
    return os.path.abspath(os.path.expanduser(os.environ.get("SPIKELFP_DATA", "~/.cache/spikelfp")))


def require_tonic():
    try:
        import tonic
    except ImportError:  # pragma: no cover - tonic is installed by `make venv`
        raise ImportError("this dataset is read through tonic: pip install tonic") from None
    return tonic


@dataclass(frozen=True)
class DatasetSpec:
    """One registered dataset.

    ``splits(root, progress) -> {"train": tonic-like dataset, "test": ...}`` where each item is
    ``(events structured array with t[, x, y, p], label)``.
    """

    name: str
    description: str
    n_classes: int
    sensor_size: tuple
    default_binning: Binning
    splits: Callable
    classes: tuple = field(default_factory=tuple)
    version: str = "1"

    def input_size(self, binning: Binning | None = None) -> int:
        return (binning or self.default_binning).n_channels(self.sensor_size)


def _digits_splits(root, progress=None, gen_seed=0):
    from .digits import build_recordings, tonic_dataset

    save_to = build_recordings(root, gen_seed, progress)
    return {"train": tonic_dataset(save_to, True), "test": tonic_dataset(save_to, False)}


DATASETS: dict[str, DatasetSpec] = {
    "digits-saccade": DatasetSpec(
        name="digits-saccade",
        description="scikit-learn's 8x8 digits swept along N-MNIST saccades (embedded, offline)",
        n_classes=10,
        sensor_size=(34, 34, 2),
        default_binning=Binning(bin_us=10_000.0, n_bins=30, spatial_factor=2),
        splits=_digits_splits,
        classes=tuple(str(k) for k in range(10)),
        version="digits-v1",
    ),
}


def get_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}") from None


def _cache_key(spec: DatasetSpec, binning: Binning, extra: dict) -> dict:
    from spikelfp import __version__

    return {"dataset": spec.name, "dataset_version": spec.version, "binning": binning.to_dict(),
            "library_version": __version__, **extra}


def bin_split(ds, spec: DatasetSpec, binning: Binning, progress=None, split="") -> EventDataset:
    """Bin every recording of a tonic-like split into an :class:`EventDataset`."""
    samples, labels = [], []
    it = range(len(ds))
    if progress is not None:
        it = progress(it, desc=f"{spec.name}: binning {split}", unit="sample")
    for k in it:
        events, label = ds[k]
        x, y, p = (events[n] if n in events.dtype.names else None for n in ("x", "y", "p"))
        samples.append(bin_events(x, y, events["t"], p, binning, spec.sensor_size))
        labels.append(int(label))
    return EventDataset.from_samples(samples, np.array(labels, dtype=np.int64), binning.n_bins,
                                     binning.n_channels(spec.sensor_size), spec.n_classes,
                                     spec.name, list(spec.classes))


def load(name: str, binning: Binning | None = None, *, root=None, progress=None, gen_seed: int = 0):
    """Load a dataset, binned: returns ``(train, test)`` :class:`EventDataset`.

    The binned result is cached in ``<root>/<name>/binned-<hash>.h5`` keyed by the dataset, its
    binning and the library version; a stale or corrupt cache is rebuilt, never used.
    """
    spec = get_spec(name)
    binning = binning or spec.default_binning
    root = data_root(root)
    key = _cache_key(spec, binning, {"gen_seed": gen_seed} if name == "digits-saccade" else {})
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    path = os.path.join(root, name, f"binned-{digest}.h5")
    cached = read_cache(path, key)
    if cached is not None and {"train", "test"} <= set(cached):
        return cached["train"], cached["test"]
    kwargs = {"gen_seed": gen_seed} if name == "digits-saccade" else {}
    raw = spec.splits(root, progress, **kwargs)
    out = {s: bin_split(raw[s], spec, binning, progress, s) for s in ("train", "test")}
    write_cache(path, out, key)
    return out["train"], out["test"]
