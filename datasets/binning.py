"""Events -> the simulator's sparse binary input on a fixed time grid.

:class:`Binning` is a small frozen parameter object and the cache key. Its grid has a fixed start
and end, so every sample gets the same T (tonic's ``n_time_bins`` would stretch each sample
differently). Channel of an event (x, y, p) after downsampling by ``spatial_factor`` f::

    channel = ((y // f) * W' + (x // f)) * P' + p'      W' = ceil(W / f),  P' = 1 if merged else P

Several events in one (bin, channel) count once: the input is binary spikes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from numba import njit


@dataclass(frozen=True)
class Binning:
    """Fixed-grid binning parameters.

    Attributes
    ----------
    bin_us : float
        Width of one time bin [us].
    n_bins : int
        Number of bins T; the window is [start_us, start_us + n_bins * bin_us).
    start_us : float
        Start of the window [us].
    spatial_factor : int
        Downsample x and y by this factor (1 = none).
    merge_polarity : bool
        Map both polarities to one channel.
    """

    bin_us: float = 10_000.0
    n_bins: int = 30
    start_us: float = 0.0
    spatial_factor: int = 1
    merge_polarity: bool = False

    def __post_init__(self):
        if not (self.bin_us > 0 and math.isfinite(self.bin_us)):
            raise ValueError(f"bin_us must be > 0 (got {self.bin_us})")
        if int(self.n_bins) < 1:
            raise ValueError(f"n_bins must be >= 1 (got {self.n_bins})")
        if int(self.spatial_factor) < 1:
            raise ValueError(f"spatial_factor must be >= 1 (got {self.spatial_factor})")
        object.__setattr__(self, "n_bins", int(self.n_bins))
        object.__setattr__(self, "spatial_factor", int(self.spatial_factor))
        object.__setattr__(self, "bin_us", float(self.bin_us))
        object.__setattr__(self, "start_us", float(self.start_us))

    @property
    def dt(self) -> float:
        """Step length [s]."""
        return self.bin_us * 1e-6

    def out_shape(self, sensor_size) -> tuple[int, int, int]:
        """(W', H', P') after downsampling/merging, for tonic's sensor_size (W, H, P)."""
        W, H, P = (tuple(sensor_size) + (1, 1))[:3]
        f = self.spatial_factor
        return (-(-W // f), -(-H // f), 1 if self.merge_polarity else P)

    def n_channels(self, sensor_size) -> int:
        return int(np.prod(self.out_shape(sensor_size)))

    def to_dict(self) -> dict:
        return asdict(self)


def bin_events(x, y, t, p, binning: Binning, sensor_size):
    """Bin one recording. Returns (steps int32, channels int32), sorted by (step, channel), unique.

    x, y, p may be None for 1-D sensors (SHD: channel = x); t in microseconds. A sensor with one
    polarity (P = 1) ignores p (tonic gives SHD/SSC events an artificial polarity of 1).
    """
    W, H, P = (tuple(sensor_size) + (1, 1))[:3]
    if P == 1:
        p = None
    Wd, Hd, Pd = binning.out_shape(sensor_size)
    n = len(t)
    x = np.zeros(n, np.int64) if x is None else np.asarray(x, dtype=np.int64)
    y = np.zeros(n, np.int64) if y is None else np.asarray(y, dtype=np.int64)
    p = np.zeros(n, np.int64) if p is None else np.asarray(p, dtype=np.int64)
    t = np.asarray(t, dtype=np.float64)
    if n and (x.min() < 0 or x.max() >= W or y.min() < 0 or y.max() >= H or p.min() < 0 or p.max() >= P):
        raise ValueError(f"event coordinates outside the sensor {sensor_size}")
    return _bin_kernel(x, y, t, p, binning.start_us, binning.bin_us, binning.n_bins,
                       binning.spatial_factor, Wd, Wd * Hd * Pd, Pd, bool(binning.merge_polarity))


@njit(cache=True)
def _bin_kernel(x, y, t, p, start, width, T, f, Wd, nch, Pd, merge):
    n = t.size
    key = np.empty(n, dtype=np.int64)
    k = 0
    for e in range(n):
        rel = t[e] - start
        if rel < 0:
            continue
        b = int(rel // width)
        if b >= T:
            continue
        pp = 0 if merge else p[e]
        ch = ((y[e] // f) * Wd + (x[e] // f)) * Pd + pp
        key[k] = b * nch + ch
        k += 1
    key = np.unique(key[:k])
    steps = (key // nch).astype(np.int32)
    chans = (key % nch).astype(np.int32)
    return steps, chans
