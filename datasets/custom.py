"""Your own recordings: ``spikelfp train --dataset path/to/recordings.h5`` (or ``.npz``).

HDF5 layout (all times in microseconds; ``y`` and ``p`` optional)::

    /                 attrs: sensor_size = [W, H, P]  (or [n_channels] for a 1-D sensor)
                             n_classes (optional, default max label + 1), classes (optional, JSON list)
                             bin_us, n_bins, spatial_factor (optional default binning)
    /train/t          (n_events,) event times [us], per sample ascending
    /train/x          (n_events,) int, 0 <= x < W      (channel, for a 1-D sensor)
    /train/y, /train/p  optional ints, 0 <= y < H, 0 <= p < P
    /train/sample_ptr (n_samples + 1,) int: sample k is events [sample_ptr[k], sample_ptr[k+1])
    /train/labels     (n_samples,) int in [0, n_classes)
    /test/...         the same

``.npz``: the same arrays as keys ``train_t``, ``train_x``, ..., ``test_labels`` plus
``sensor_size`` (and optionally ``n_classes``). Default binning when the file gives none: 30
bins spanning the longest training recording. :func:`write_recordings` writes this layout.

An SHD/SSC-layout file (``spikes/times`` [s], ``spikes/units``, ``labels``: one split per file,
as Zenke's lab publishes them) is recognised too: ``--dataset path/shd_train.h5`` reads it with
its other split beside it (``shd_test.h5``; for SSC ``ssc_test.h5``), 700 channels, the class
names from ``extra/keys``, SHD's grid of 100 bins of 10 ms by default.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from .binning import Binning
from .spec import DatasetError, DatasetSpec

FIELDS = ("t", "x", "y", "p", "sample_ptr", "labels")


def _hsd_split(f, path) -> dict:
    try:
        times, units, labels = f["spikes/times"], f["spikes/units"], np.asarray(f["labels"][()], np.int64)
        ts = [np.asarray(t, np.float64) for t in times]
        us = [np.asarray(u, np.int64) for u in units]
    except (KeyError, OSError, TypeError, ValueError) as e:
        raise DatasetError(f"{path}: corrupt SHD/SSC-layout file ({e})") from None
    if len(ts) != labels.size or len(us) != labels.size:
        raise DatasetError(f"{path}: {len(ts)} recordings (spikes/times), {len(us)} spikes/units and "
                           f"{labels.size} labels: one of each per sample")
    if any(t.size != u.size for t, u in zip(ts, us)):
        raise DatasetError(f"{path}: a recording's spikes/times and spikes/units differ in length")
    # NaN/inf or unsorted times are refused by _Split, as for every recordings file
    lens = np.array([t.size for t in ts], np.int64)
    return {"t": np.concatenate(ts) * 1e6 if ts else np.zeros(0), "x": np.concatenate(us) if us else np.zeros(0, int),
            "sample_ptr": np.r_[0, np.cumsum(lens)], "labels": labels}


def _read_hsd(path, f) -> dict:
    """An SHD/SSC-layout file and its other split beside it."""
    import h5py

    folder, base = os.path.split(path)
    other = None
    for a, b in (("train", "test"), ("test", "train"), ("valid", "test")):
        if a in base and os.path.exists(os.path.join(folder, base.replace(a, b))):
            other = (b, os.path.join(folder, base.replace(a, b)))
            this = "train" if a == "valid" else a
            break
    if other is None:
        raise DatasetError(f"{path} is one split of an SHD/SSC-layout dataset (spikes/times, spikes/units, "
                           "labels): put its other split beside it under the same name with train/test swapped "
                           "(shd_train.h5 + shd_test.h5), or use --dataset shd / ssc with both files in "
                           "<data-root>/SHD/ (or SSC/)")
    # SHD's own grid (the registered shd/ssc sets' default): 100 bins of 10 ms
    out = {"attrs": {"sensor_size": [700], "bin_us": 10_000.0, "n_bins": 100}, "files": [path, other[1]],
           this: _hsd_split(f, path)}
    try:
        with h5py.File(other[1], "r") as g:
            out[other[0]] = _hsd_split(g, other[1])
            keys = f["extra/keys"][()] if "extra/keys" in f else None
    except OSError as e:
        raise DatasetError(f"{other[1]}: not a readable HDF5 file (truncated?): {e}") from None
    if keys is not None:
        names = [k.decode() if isinstance(k, bytes) else str(k) for k in keys]
        out["attrs"]["n_classes"] = len(names)
        out["attrs"]["classes"] = json.dumps(names)
    return out


ATTRS = ("sensor_size", "n_classes", "classes", "bin_us", "n_bins", "spatial_factor")
HDF5_MAGIC, ZIP_MAGIC = b"\x89HDF\r\n\x1a\n", b"PK\x03\x04"


def require_regular_file(path: str, what: str = "recordings file") -> None:
    """Refuse before opening what is not a regular file: a folder, a FIFO (opening one blocks
    until a writer comes), a device or a socket."""
    import stat

    if os.path.isdir(path):
        raise DatasetError(f"{path} is a folder: --dataset takes a dataset name (spikelfp datasets lists them) "
                           f"or a {what} (.h5/.npz, layout in spikelfp.datasets.custom)")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such {what}")
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise DatasetError(f"{path} is not a regular file (a FIFO, device or socket): give a {what}")


def _attr(path, name, value):
    """One known attribute as a plain Python value, or a DatasetError naming file and attribute."""
    try:
        v = value.decode() if isinstance(value, bytes) else value
        v = v.tolist() if hasattr(v, "tolist") else v
    except (TypeError, ValueError, AttributeError) as e:
        raise DatasetError(f"{path}: attribute {name!r} cannot be read ({e})") from None
    if name == "sensor_size" and isinstance(v, int) and not isinstance(v, bool):
        v = [v]
    ok = {"sensor_size": lambda x: isinstance(x, list) and 1 <= len(x) <= 3
          and all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in x),
          "n_classes": lambda x: isinstance(x, int) and not isinstance(x, bool) and x >= 1,
          "classes": lambda x: isinstance(x, str),
          "bin_us": lambda x: isinstance(x, (int, float)) and not isinstance(x, bool),
          "n_bins": lambda x: isinstance(x, (int, float)) and not isinstance(x, bool),
          "spatial_factor": lambda x: isinstance(x, int) and not isinstance(x, bool)}[name]
    if isinstance(v, list) and len(v) == 1 and name != "sensor_size":
        v = v[0]
    if not ok(v):
        expect = {"sensor_size": "1 to 3 positive integers, [W, H, P] or [n_channels]",
                  "n_classes": "one integer >= 1", "classes": "a JSON list of names (a string)",
                  "bin_us": "one number [us]", "n_bins": "one integer", "spatial_factor": "one integer"}[name]
        raise DatasetError(f"{path}: attribute {name!r} must be {expect} (got {v!r})")
    if name == "classes":
        try:
            names = json.loads(v)
        except ValueError as e:
            raise DatasetError(f"{path}: attribute 'classes' is not JSON ({e})") from None
        if not isinstance(names, list):
            raise DatasetError(f"{path}: attribute 'classes' must be a JSON list of names (got {names!r})")
    return v


def _check_array(path, where, ds, budget) -> None:
    """A dataset's declared dtype and size, before a byte of it is read."""
    kind = ds.dtype.kind
    if kind not in "iuf":
        what = {"S": "strings", "U": "strings", "O": "objects or strings", "V": "compound records"}.get(kind, kind)
        raise DatasetError(f"{path}: {where} holds {what}; it must hold numbers")
    if ds.ndim != 1:
        raise DatasetError(f"{path}: {where} must be one-dimensional (shape {ds.shape})")
    nbytes = int(ds.size) * ds.dtype.itemsize
    if nbytes > budget:
        raise DatasetError(f"{path}: {where} declares {ds.size:,} values ({nbytes / 2**30:.1f} GiB), more than the "
                           f"{budget / 2**30:.1f} GiB of memory available")


def _read(path: str, fields=FIELDS) -> dict:
    """The file's attributes and, per split, the arrays named in ``fields`` (checked as read; an
    SHD/SSC-layout file is always read whole)."""
    from spikelfp.memory import available_bytes

    require_regular_file(path)
    with open(path, "rb") as fh:
        magic = fh.read(8)
    out = {"attrs": {}, "files": [path]}
    budget = int(0.8 * available_bytes())
    if path.endswith(".npz"):
        if magic == HDF5_MAGIC:
            raise DatasetError(f"{path} is an HDF5 file named .npz: rename it to .h5")
        try:
            with np.load(path, allow_pickle=False) as z:
                for split in ("train", "test"):
                    out[split] = {}
                    for f in fields:
                        if f"{split}_{f}" in z.files:
                            a = z[f"{split}_{f}"]
                            if a.dtype.kind not in "iuf" or a.ndim != 1:
                                raise DatasetError(f"{path}: {split}_{f} must be a one-dimensional array of numbers "
                                                   f"(dtype {a.dtype}, shape {a.shape})")
                            out[split][f] = a
                for k in ATTRS:
                    if k in z.files:
                        out["attrs"][k] = _attr(path, k, z[k])
        except (OSError, EOFError) as e:
            raise DatasetError(f"{path}: not a readable .npz file ({e})") from None
        except ValueError as e:
            if isinstance(e, DatasetError):
                raise
            raise DatasetError(f"{path}: not a readable .npz file ({e})") from None
        return out
    import h5py

    if magic.startswith(ZIP_MAGIC):
        raise DatasetError(f"{path} is a zip (.npz) file named {os.path.splitext(path)[1]}: rename it to .npz")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DatasetError(f"{path}: not a readable HDF5 file (truncated?): {e}") from None
    with f:
        if "train" not in f and "spikes" in f:
            if "labels" not in f:
                raise DatasetError(f"{path}: an SHD/SSC-layout file (spikes/times, spikes/units) without /labels")
            return _read_hsd(path, f)
        try:
            for split in ("train", "test"):
                if split not in f:
                    raise DatasetError(f"{path}: no /{split} group (see spikelfp.datasets.custom for the layout)")
                if not isinstance(f[split], h5py.Group):
                    raise DatasetError(f"{path}: /{split} must be a group")
                out[split] = {}
                for k in fields:
                    if k in f[split]:
                        ds = f[split][k]
                        if not isinstance(ds, h5py.Dataset):
                            raise DatasetError(f"{path}: /{split}/{k} must be a dataset")
                        _check_array(path, f"/{split}/{k}", ds, budget)
                        out[split][k] = ds[()]
            for k in ATTRS:
                if k in f.attrs:
                    try:
                        raw = f.attrs[k]
                    except (OSError, TypeError, ValueError) as e:
                        raise DatasetError(f"{path}: attribute {k!r} cannot be read ({e})") from None
                    out["attrs"][k] = _attr(path, k, raw)
        except (OSError, KeyError) as e:
            raise DatasetError(f"{path}: corrupt recordings file ({e})") from None
    return out


def _splits(path, sensor) -> dict:
    """Both splits of a recordings file, read whole and checked (on a cache miss only)."""
    raw = _read(path)
    return {s: _Split(path, s, raw[s], sensor) for s in ("train", "test")}


class _Split:
    """tonic-like view of one split: ``ds[k] -> (events, label)``."""

    def __init__(self, path, split, arrays, sensor):
        self.path, self.split = path, split
        for f in ("t", "x", "sample_ptr", "labels"):
            if f not in arrays:
                raise DatasetError(f"{path}: /{split}/{f} is missing (see spikelfp.datasets.custom)")
        for f in ("x", "y", "p", "sample_ptr", "labels"):
            if f in arrays and np.asarray(arrays[f]).size and np.asarray(arrays[f]).dtype.kind not in "iu":
                raise DatasetError(f"{path}: /{split}/{f} holds {np.asarray(arrays[f]).dtype} values; it must be "
                                   "integers")
        t = np.asarray(arrays["t"])
        if t.size and t.dtype.kind not in "iuf":
            raise DatasetError(f"{path}: /{split}/t holds {t.dtype} values; it must be numbers [us]")
        if t.size and not np.all(np.isfinite(t)):
            raise DatasetError(f"{path}: /{split}/t has NaN or infinite event times")
        if t.size and t.min() < 0:
            raise DatasetError(f"{path}: /{split}/t has negative event times (min {t.min()})")
        ptr = np.asarray(arrays["sample_ptr"], dtype=np.int64)
        n_ev = len(arrays["t"])
        for f in ("x", "y", "p"):
            if f in arrays and len(arrays[f]) != n_ev:
                raise DatasetError(f"{path}: /{split}/{f} has {len(arrays[f])} entries, /{split}/t has {n_ev}")
        if ptr.ndim != 1 or ptr.size != len(arrays["labels"]) + 1 or ptr[0] != 0 or ptr[-1] != n_ev \
                or np.any(np.diff(ptr) < 0):
            raise DatasetError(f"{path}: /{split}/sample_ptr must have n_samples + 1 non-decreasing entries "
                               f"from 0 to {n_ev}")
        if n_ev:
            d = np.diff(t.astype(np.float64))
            d[ptr[1:-1] - 1] = 0.0                  # sample boundaries may step back
            if np.any(d < 0):
                k = int(np.searchsorted(ptr, int(np.argmax(d < 0)) + 1, side="right") - 1)
                raise DatasetError(f"{path}: /{split}/t is not ascending within sample {k}")
        self.ptr, self.arrays, self.sensor = ptr, arrays, sensor
        names = [f for f in ("t", "x", "y", "p") if f in arrays]
        self.dtype = np.dtype([(f, np.float64 if f == "t" else np.int64) for f in names])

    def __len__(self):
        return self.ptr.size - 1

    def __getitem__(self, k):
        lo, hi = self.ptr[k], self.ptr[k + 1]
        ev = np.empty(hi - lo, dtype=self.dtype)
        for f in self.dtype.names:
            ev[f] = self.arrays[f][lo:hi]
        return ev, int(self.arrays["labels"][k])

    @property
    def data(self):
        return [f"{self.path} [{self.split} sample {k}]" for k in range(len(self))]


def custom_spec(path: str) -> DatasetSpec:
    """A :class:`DatasetSpec` for a recordings file (validated on the way)."""
    path = os.path.abspath(path)
    # what the spec needs is read now (attributes, labels, the content hash); the events only when the
    # binned cache has to be built (a DVS-Gesture-sized file: 2 GB of events, read once, not per load)
    raw = _read(path, fields=("labels",))
    a = raw["attrs"]
    if "sensor_size" not in a:
        raise DatasetError(f"{path}: the sensor_size attribute ([W, H, P] or [n_channels]) is missing")
    sensor = tuple(int(v) for v in np.atleast_1d(a["sensor_size"])) + (1, 1)
    sensor = sensor[:3]
    labels = np.concatenate([np.asarray(raw[s].get("labels", []), dtype=np.int64) for s in ("train", "test")])
    if labels.size == 0:
        raise DatasetError(f"{path}: no labelled samples")
    n_classes = int(a.get("n_classes", int(labels.max()) + 1))
    if labels.min() < 0 or labels.max() >= n_classes:
        raise DatasetError(f"{path}: labels must lie in [0, {n_classes}); found {labels.min()}..{labels.max()}")
    if "bin_us" in a and "n_bins" in a:
        try:
            binning = Binning(bin_us=float(a["bin_us"]), n_bins=int(a["n_bins"]),
                              spatial_factor=int(a.get("spatial_factor", 1)))
        except (TypeError, ValueError) as e:
            raise DatasetError(f"{path}: the stored default binning is not valid ({e})") from None
    else:
        t = _read(path, fields=("t",))["train"].get("t")
        if t is None:
            raise DatasetError(f"{path}: /train/t is missing (see spikelfp.datasets.custom)")
        t = np.asarray(t, dtype=np.float64)
        if t.size and not np.all(np.isfinite(t)):
            raise DatasetError(f"{path}: /train/t holds NaN or infinite times")
        span = float(t.max()) + 1.0 if t.size else 1.0
        binning = Binning(bin_us=max(1.0, np.ceil(span / 30.0)), n_bins=30)
    h = hashlib.sha1()
    for file in raw["files"]:
        with open(file, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    classes = a.get("classes")
    if isinstance(classes, str):
        classes = tuple(json.loads(classes))
    else:   # default names; none for absurd class counts (the memory check refuses those runs)
        classes = tuple(str(k) for k in range(n_classes)) if n_classes <= 100_000 else ()
    name = os.path.basename(path)
    return DatasetSpec(name=name, description=f"recordings file {path}", n_classes=n_classes, sensor_size=sensor,
                       default_binning=binning, splits=lambda root, progress=None, download=True: _splits(path, sensor),
                       classes=classes, version=f"custom:{h.hexdigest()[:16]}", offline=False,
                       present=lambda root: True)


def write_recordings(path, splits: dict, sensor_size, n_classes=None, classes=None) -> None:
    """Write ``{"train": [(events, label), ...], "test": [...]}`` in the HDF5 layout above.

    ``events`` is a structured array (or dict) with ``t`` [us], ``x`` and optional ``y``, ``p``.
    """
    import h5py

    from spikelfp.io import atomic_path

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["sensor_size"] = np.asarray(sensor_size, dtype=np.int64)
        if n_classes is not None:
            f.attrs["n_classes"] = int(n_classes)
        if classes is not None:
            f.attrs["classes"] = json.dumps(list(classes))
        for split, items in splits.items():
            g = f.create_group(split)
            ptr = np.zeros(len(items) + 1, dtype=np.int64)
            np.cumsum([len(ev["t"]) for ev, _ in items], out=ptr[1:])
            g.create_dataset("sample_ptr", data=ptr)
            g.create_dataset("labels", data=np.array([int(lab) for _, lab in items], dtype=np.int64))
            names = items[0][0].dtype.names if hasattr(items[0][0], "dtype") else tuple(items[0][0])
            for fld in ("t", "x", "y", "p"):
                if fld in names:
                    g.create_dataset(fld, data=np.concatenate([np.asarray(ev[fld]) for ev, _ in items]))
