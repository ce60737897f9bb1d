"""Binned event datasets in memory, their versioned HDF5 cache, and atomic dataset builds."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field

import numpy as np
from numba import njit, prange

from spikelfp.events import EventBatch
from spikelfp.io import _umask, atomic_path


@dataclass
class EventDataset:
    """Binned binary events of many samples, concatenated.

    Sample k occupies ``steps/channels[sample_ptr[k] : sample_ptr[k+1]]``, sorted by (step,
    channel) without repeats. ``n_steps`` (T) and ``n_in`` are shared by all samples.
    """

    steps: np.ndarray
    channels: np.ndarray
    sample_ptr: np.ndarray
    labels: np.ndarray
    n_steps: int
    n_in: int
    n_classes: int
    name: str = ""
    classes: list = field(default_factory=list)
    input_shape: tuple | None = None    # channels-last (H, W, C) of the channels, where the sensor has one
    binning: dict | None = None         # the grid it was binned on (Binning.to_dict()): a checkpoint's dt comes from it

    def __post_init__(self):
        self.steps = np.ascontiguousarray(self.steps, dtype=np.int32)
        self.channels = np.ascontiguousarray(self.channels, dtype=np.int32)
        self.sample_ptr = np.ascontiguousarray(self.sample_ptr, dtype=np.int64)
        self.labels = np.ascontiguousarray(self.labels, dtype=np.int64)
        n = self.labels.size
        if self.sample_ptr.shape != (n + 1,) or self.sample_ptr[0] != 0:
            raise ValueError(f"{self.name}: sample_ptr must have {n + 1} entries starting at 0")
        if np.any(np.diff(self.sample_ptr) < 0) or self.sample_ptr[-1] != self.steps.size:
            raise ValueError(f"{self.name}: sample_ptr is not a valid offset array")
        if self.steps.size != self.channels.size:
            raise ValueError(f"{self.name}: steps and channels differ in length")
        if self.steps.size and (self.steps.min() < 0 or self.steps.max() >= self.n_steps):
            raise ValueError(f"{self.name}: time steps outside [0, {self.n_steps})")
        if self.channels.size and (self.channels.min() < 0 or self.channels.max() >= self.n_in):
            raise ValueError(f"{self.name}: channels outside [0, {self.n_in})")
        if n and (self.labels.min() < 0 or self.labels.max() >= self.n_classes):
            raise ValueError(f"{self.name}: labels outside [0, {self.n_classes})")
        if self.input_shape is not None:
            self.input_shape = tuple(int(v) for v in self.input_shape)
            if int(np.prod(self.input_shape)) != self.n_in:
                raise ValueError(f"{self.name}: input_shape {self.input_shape} does not hold {self.n_in} channels")

    def __len__(self) -> int:
        return int(self.labels.size)

    def __getitem__(self, k):
        """Sample k as ``(spikes (T, n_in) uint8, label)``, the (frame, label) pair a torch user expects."""
        k = int(k)
        if not -len(self) <= k < len(self):
            raise IndexError(f"{self.name}: sample {k} outside [0, {len(self)})")
        k %= len(self)
        return self.to_dense([k])[0], int(self.labels[k])

    def to_dense(self, idx=None) -> np.ndarray:
        """Samples ``idx`` (default: all) as dense spikes ``(B, T, n_in)`` uint8 (channels-last
        order, :attr:`input_shape`: ``.reshape(B, T, *input_shape)`` gives (H, W, C) frames)."""
        idx = np.arange(len(self)) if idx is None else np.asarray(idx, dtype=np.int64).reshape(-1)
        if idx.size == 0:
            return np.zeros((0, self.n_steps, self.n_in), np.uint8)
        return self.batch(idx).to_dense()

    @property
    def events_per_sample(self) -> float:
        return self.steps.size / max(1, len(self))

    def batch(self, idx) -> EventBatch:
        """Gather samples ``idx`` into an :class:`EventBatch`."""
        idx = np.ascontiguousarray(idx, dtype=np.int64)
        if idx.size == 0:
            raise ValueError("empty batch")
        if idx.min() < 0 or idx.max() >= len(self):
            raise IndexError(f"{self.name}: sample index outside [0, {len(self)})")
        ptr, ch, ok = _gather(self.steps, self.channels, self.sample_ptr, idx, self.n_steps, self.n_in)
        if not ok:
            raise ValueError(f"{self.name}: events out of range or not sorted by (step, channel) without repeats")
        return EventBatch._trusted(ptr, ch, idx.size, self.n_steps, self.n_in)   # _gather checked it

    def sample_indices(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` distinct sample indices drawn with ``seed``, sorted (all of them when ``n >= len``):
        the samples ``eval --samples`` and ``export --check`` score."""
        n = min(int(n), len(self))
        return np.sort(np.random.default_rng(seed).choice(len(self), size=n, replace=False))

    def subset(self, idx) -> EventDataset:
        idx = np.ascontiguousarray(idx, dtype=np.int64)
        lens = np.diff(self.sample_ptr)[idx]
        ptr = np.zeros(idx.size + 1, dtype=np.int64)
        np.cumsum(lens, out=ptr[1:])
        sel = np.concatenate([np.arange(self.sample_ptr[k], self.sample_ptr[k + 1]) for k in idx]) \
            if idx.size else np.zeros(0, np.int64)
        return EventDataset(self.steps[sel], self.channels[sel], ptr, self.labels[idx], self.n_steps,
                            self.n_in, self.n_classes, self.name, list(self.classes), self.input_shape,
                            self.binning)

    @classmethod
    def from_samples(cls, samples, labels, n_steps, n_in, n_classes, name="", classes=()):
        """From a list of (steps, channels) pairs (each sorted by (step, channel), unique)."""
        lens = np.array([len(s) for s, _ in samples], dtype=np.int64)
        ptr = np.zeros(len(samples) + 1, dtype=np.int64)
        np.cumsum(lens, out=ptr[1:])
        steps = np.concatenate([s for s, _ in samples]) if samples else np.zeros(0, np.int32)
        chans = np.concatenate([c for _, c in samples]) if samples else np.zeros(0, np.int32)
        return cls(steps, chans, ptr, np.asarray(labels), n_steps, n_in, n_classes, name, list(classes))


@njit(cache=True, parallel=True)
def _gather(steps, channels, sample_ptr, idx, T, n_in):
    """CSR (indptr, indices) of samples ``idx``, and whether every event lies in range and each
    (sample, step) row's channels are strictly ascending (EventBatch's contract), checked on the way.
    Samples are copied in parallel, each into its own slice (the result does not depend on threads)."""
    B = idx.size
    start = np.empty(B + 1, dtype=np.int64)
    start[0] = 0
    for k in range(B):
        start[k + 1] = start[k] + sample_ptr[idx[k] + 1] - sample_ptr[idx[k]]
    ptr = np.zeros(B * T + 1, dtype=np.int64)
    ch = np.empty(start[B], dtype=np.int32)
    good = np.ones(B, dtype=np.bool_)
    for k in prange(B):
        prev_t = -1
        prev_c = -1
        e = start[k]
        row = ptr[k * T + 1: (k + 1) * T + 1]
        for q in range(sample_ptr[idx[k]], sample_ptr[idx[k] + 1]):
            st = steps[q]
            c = channels[q]
            if st < 0 or st >= T or c < 0 or c >= n_in or st < prev_t or (st == prev_t and c <= prev_c):
                good[k] = False
                break
            row[st] += 1
            ch[e] = c
            e += 1
            prev_t = st
            prev_c = c
    for r in range(B * T):
        ptr[r + 1] += ptr[r]
    return ptr, ch, good.all()


# ----------------------------------------------------------------------------- HDF5 cache

CACHE_FORMAT = 1


def write_cache(path, splits: dict, key: dict) -> None:
    """Write {split: EventDataset} to ``path`` atomically, tagged with ``key`` (a JSON-able dict)."""
    import h5py

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["kind"] = "spikelfp-binned-events"
            f.attrs["cache_format"] = CACHE_FORMAT
            f.attrs["key"] = json.dumps(key, sort_keys=True)
            for split, ds in splits.items():
                g = f.create_group(split)
                for name in ("steps", "channels", "sample_ptr", "labels"):
                    g.create_dataset(name, data=getattr(ds, name), compression="gzip",
                                     compression_opts=1, shuffle=True)
                g.attrs["n_steps"] = ds.n_steps
                g.attrs["n_in"] = ds.n_in
                g.attrs["n_classes"] = ds.n_classes
                g.attrs["name"] = ds.name
                g.attrs["classes"] = json.dumps(list(ds.classes))
            f.attrs["complete"] = 1


def read_cache(path, key: dict) -> dict | None:
    """Load a cache written by :func:`write_cache`; None if absent, stale (other key) or corrupt."""
    import h5py

    if not os.path.exists(path):
        return None
    try:
        with h5py.File(path, "r") as f:
            if (f.attrs.get("kind") != "spikelfp-binned-events" or int(f.attrs.get("complete", 0)) != 1
                    or int(f.attrs.get("cache_format", -1)) != CACHE_FORMAT
                    or json.loads(f.attrs["key"]) != json.loads(json.dumps(key, sort_keys=True))):
                return None
            out = {}
            for split in f:
                g = f[split]
                out[split] = EventDataset(
                    g["steps"][()], g["channels"][()], g["sample_ptr"][()], g["labels"][()],
                    int(g.attrs["n_steps"]), int(g.attrs["n_in"]), int(g.attrs["n_classes"]),
                    str(g.attrs["name"]), json.loads(g.attrs["classes"]))
            return out
    except Exception:  # truncated/corrupt file, bad arrays: the caller rebuilds it
        return None


class _Build:
    note = ""


@contextlib.contextmanager
def build_folder(final: str):
    """Build a dataset folder atomically: yields an object whose ``.path`` is a temporary folder
    beside ``final``; when the block succeeds, ``COMPLETE`` (holding ``.note``) is written and the
    folder renamed to ``final``; on any error or interrupt it is removed. Temporary folders of
    builds whose process is gone (killed) are removed first: ``.building-<pid>-*``."""
    from spikelfp.io import remove_orphaned_dirs

    parent = os.path.dirname(final)
    os.makedirs(parent, exist_ok=True)
    remove_orphaned_dirs(parent, ".building-")
    b = _Build()
    b.path = tempfile.mkdtemp(prefix=f".building-{os.getpid()}-", dir=parent)
    try:
        yield b
        with open(os.path.join(b.path, "COMPLETE"), "w") as fh:
            fh.write(b.note + "\n")
        os.chmod(b.path, 0o777 & ~_umask())     # mkdtemp makes 0700: give the folder the usual mode
        if os.path.exists(final):
            shutil.rmtree(final)
        os.replace(b.path, final)
    except BaseException:
        shutil.rmtree(b.path, ignore_errors=True)
        raise
