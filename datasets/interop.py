"""Your own data, the tonic / torch way: events or frames in, :class:`EventDataset` out.

* :func:`from_events` takes a tonic dataset (its ``transform`` applied as tonic does), any
  sequence of ``(events, label)`` with tonic's structured event dtype (fields ``t`` [us] and
  ``x``, optionally ``y``, ``p``), a torch ``Dataset`` of such samples, or a ``DataLoader`` over one
  (its dataset is read sample by sample: collating structured events is not possible). The
  channel of an event is spikelfp's channels-last ``(y * W + x) * P + p`` for the sensor size
  ``(W, H, P)`` (tonic's order), taken from the dataset's ``sensor_size``, never guessed.
* :func:`from_frames` takes dense frames, ``(B, T, P, H, W)`` (tonic's ``ToFrame``), ``(B, T, H, W,
  P)`` or ``(B, T, n)``, or a list of per-sample ``(T, ...)`` arrays; the layout is given by name
  and reordered to channels-last. Counts above 1 are an error unless ``counts="clip"`` (any count
  is one spike: the simulator's input is binary).
* :func:`as_event_datasets` is what :meth:`spikelfp.train.Trainer.fit` calls: train and test with
  one binning, the train set's.
"""

from __future__ import annotations

import math

import numpy as np

from .base import EventDataset
from .binning import Binning
from .spec import DatasetSpec

LAYOUTS = {"TPHW": (0, 2, 3, 1), "TCHW": (0, 2, 3, 1), "THWP": (0, 1, 2, 3), "THWC": (0, 1, 2, 3)}


def _samples(ds) -> list:
    """The (events, label) samples of ``ds`` (a DataLoader gives its dataset's samples)."""
    if hasattr(ds, "dataset") and hasattr(ds, "batch_size") and hasattr(ds, "collate_fn"):    # torch DataLoader
        ds = ds.dataset
    if hasattr(ds, "__len__") and hasattr(ds, "__getitem__"):
        return [ds[k] for k in range(len(ds))]
    return list(ds)


def _label(v) -> int:
    a = np.asarray(v)
    if a.size != 1 or not (np.issubdtype(a.dtype, np.integer) or (np.issubdtype(a.dtype, np.floating)
                                                                   and float(a) == int(a))):
        raise ValueError(f"a label must be one whole number (got {v!r})")
    return int(a.reshape(()))


def _sensor(ds, sensor_size):
    size = sensor_size if sensor_size is not None else getattr(ds, "sensor_size", None)
    if size is None and hasattr(ds, "dataset"):
        size = getattr(ds.dataset, "sensor_size", None)
    if size is None:
        raise ValueError("the sensor size is needed to number the channels: pass sensor_size=(W, H, P) "
                         "(tonic's order, e.g. (34, 34, 2) for N-MNIST, (700, 1, 1) for SHD)")
    size = tuple(int(v) for v in size)
    if not 1 <= len(size) <= 3 or min(size) < 1:
        raise ValueError(f"sensor_size must be (W,), (W, H) or (W, H, P) with sizes >= 1 (got {size})")
    return (size + (1, 1))[:3]


def default_binning(samples, n_bins: int = 30) -> Binning:
    """``n_bins`` bins spanning the longest recording (from t = 0)."""
    span = max(float(np.max(ev["t"])) if len(ev) else 0.0 for ev, _ in samples)
    return Binning(bin_us=max(1.0, math.ceil((span + 1.0) / n_bins)), n_bins=n_bins)


def _checked(ds, name: str) -> list:
    """The samples of ``ds`` as validated ``(structured events, int label)`` pairs."""
    samples = _samples(ds)
    if not samples:
        raise ValueError(f"{name}: no samples")
    out = []
    for s in samples:
        if not (isinstance(s, (tuple, list)) and len(s) == 2):
            raise ValueError(f"{name}: a sample must be (events, label); got {type(s).__name__}")
        ev = s[0]
        names = getattr(getattr(ev, "dtype", None), "names", None)
        if not names or "t" not in names or "x" not in names:
            shape = getattr(ev, "shape", None)
            raise ValueError(f"{name}: samples are not structured events with fields t and x (got "
                             f"{type(ev).__name__}{'' if shape is None else f' of shape {shape}'}); a ToFrame "
                             "transform gives dense frames: pass them to spikelfp.datasets.from_frames, or drop "
                             "the transform (spikelfp bins events itself)")
        out.append((ev, _label(s[1])))
    return out


def _classes(ds, classes):
    """Class names: given, else the dataset's ``classes`` (a list, a tuple or, as tonic's SHD
    keeps them, an array of bytes), else its wrapped dataset's; None when there are none."""
    if classes is None:
        classes = getattr(ds, "classes", None)
        if classes is None or len(classes) == 0:
            classes = getattr(getattr(ds, "dataset", None), "classes", None)
    if classes is None or len(classes) == 0:
        return None
    return [c.decode() if isinstance(c, bytes) else str(c) for c in np.asarray(classes).tolist()]


def _bin(samples, size, binning, n_classes, names, name, progress) -> EventDataset:
    from .registry import _shaped, bin_split

    if n_classes is None:
        n_classes = len(names) if names else max(y for _, y in samples) + 1
    spec = DatasetSpec(name, "", int(n_classes), size, binning, splits=lambda *a: None,
                       classes=tuple(str(c) for c in (names or ())))
    return _shaped(bin_split(samples, spec, binning, progress=progress, split=""), spec, binning)


def from_events(ds, *, sensor_size=None, binning: Binning | None = None, n_classes: int | None = None,
                classes=None, name: str = "events", progress=None) -> EventDataset:
    """Bin a tonic-style event dataset (see the module docstring). ``binning`` defaults to 30 bins
    over the longest recording; ``n_classes`` to ``len(ds.classes)`` or the largest label + 1."""
    size = _sensor(ds, sensor_size)
    samples = _checked(ds, name)
    return _bin(samples, size, binning or default_binning(samples), n_classes, _classes(ds, classes), name,
                progress)


def from_frames(frames, labels, *, layout: str = "TPHW", counts: str = "error", n_classes: int | None = None,
                name: str = "frames") -> EventDataset:
    """Dense frames to an :class:`EventDataset` (see the module docstring). ``layout`` names the
    axes of one sample: ``TPHW`` (tonic's ``ToFrame``), ``THWP`` or ``TN`` (already flat; no input
    shape)."""
    if layout not in (*LAYOUTS, "TN"):
        raise ValueError(f"unknown frame layout {layout!r}; choose one of {', '.join([*LAYOUTS, 'TN'])}")
    if counts not in ("error", "clip"):
        raise ValueError(f"counts must be 'error' or 'clip' (got {counts!r})")
    per = [np.asarray(f) for f in frames]
    y = np.array([_label(v) for v in labels], dtype=np.int64)
    if len(per) != y.size or not per:
        raise ValueError(f"{name}: {len(per)} samples but {y.size} labels")
    want = 2 if layout == "TN" else 4
    shapes = {f.shape for f in per}
    if len(shapes) != 1 or len(next(iter(shapes))) != want:
        raise ValueError(f"{name}: every sample must be one {want}-D array in layout {layout} of one shape "
                         f"(got {sorted(shapes)[:3]})")
    samples, input_shape = [], None
    for k, f in enumerate(per):
        if not (np.issubdtype(f.dtype, np.integer) or np.issubdtype(f.dtype, np.bool_)
                or np.all(np.isfinite(f) & (f == np.round(f)))):
            raise ValueError(f"{name} sample {k}: frames must hold whole spike counts")
        if f.size and f.min() < 0:
            raise ValueError(f"{name} sample {k}: negative counts")
        if f.size and f.max() > 1 and counts == "error":
            raise ValueError(f"{name} sample {k}: counts up to {f.max():g} per (step, channel), but the simulator's "
                             "input is binary spikes: pass counts='clip' to treat any count as one spike, or bin "
                             "the events themselves with spikelfp.datasets.from_events")
        if layout != "TN":
            f = f.transpose(LAYOUTS[layout])            # channels-last (T, H, W, P)
            input_shape = f.shape[1:]
            f = f.reshape(f.shape[0], -1)
        t, c = np.nonzero(f > 0)                        # row-major: sorted by (step, channel)
        samples.append((t.astype(np.int32), c.astype(np.int32)))
    T, n = per[0].shape[0], int(np.prod(per[0].shape[1:]))
    out = EventDataset.from_samples(samples, y, T, n, int(n_classes or y.max() + 1), name)
    out.input_shape = input_shape
    return out


def as_event_datasets(train, test, *, sensor_size=None, binning: Binning | None = None, n_classes=None,
                      progress=None) -> tuple[EventDataset, EventDataset, dict | None]:
    """``(train, test, binning)``: EventDatasets pass through (binning None); raw event data goes
    through :func:`from_events`, both splits on one grid, the train set's (its dict is returned,
    for the checkpoint: NIR export takes dt from it)."""
    if isinstance(train, EventDataset) and isinstance(test, EventDataset):
        return train, test, None
    if isinstance(train, EventDataset) or isinstance(test, EventDataset):
        raise ValueError("train and test must both be EventDatasets, or both raw event data (one binning for both)")
    size = _sensor(train, sensor_size)
    tr_s, te_s = _checked(train, "train"), _checked(test, "test")
    binning = binning or default_binning(tr_s)
    names = _classes(train, None)
    if n_classes is None:
        n_classes = len(names) if names else max(y for _, y in tr_s + te_s) + 1
    tr = _bin(tr_s, size, binning, n_classes, names, "train", progress)
    te = _bin(te_s, size, binning, n_classes, names, "test", progress)
    return tr, te, binning.to_dict()


__all__ = ["from_events", "from_frames", "as_event_datasets", "default_binning"]
