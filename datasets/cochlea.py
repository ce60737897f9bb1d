"""A small, fast cochlea model: sound -> spikes on 700 frequency channels (numba).

Three stages per channel, the classic chain SHD's ``lauscher`` model also follows (basilar
membrane -> inner hair cell -> auditory nerve fibre), written here as pure kernels:

1. **Basilar membrane**: a 4th-order gammatone filter (Patterson/Holdsworth), centre frequencies
   spaced evenly on the ERB-rate scale (Glasberg & Moore 1990) from ``f_lo`` to ``f_hi``,
   bandwidth ``1.019 * ERB(f)``. Implemented as a complex baseband filter: the signal is shifted
   down by ``f`` and passed through four identical complex one-pole low-passes, so one sample of
   one channel costs ~30 flops.
2. **Inner hair cell**: half-wave rectification, a 1 kHz one-pole low-pass (loss of phase locking
   at high frequencies), fast divisive adaptation (the drive is divided by ``1 + m / level``
   with ``m`` its 40 ms running mean, so onsets are emphasised as in real auditory nerve fibres)
   and a saturating rate-level function ``u**2 / (1 + u**2)``, ``u = drive / level`` (fibres
   have a threshold and a ~30 dB dynamic range, which gives the spectrogram its contrast).
3. **Spike generator**: an inhomogeneous Poisson process with dead time: each fibre integrates
   its firing rate ``gain * drive`` and spikes when the integral reaches an exponentially
   distributed threshold (time-rescaling), then stays silent for the refractory period.
   Thresholds come from a seeded ``numpy.random.Generator``: same seed, same spikes.

Why not ``lauscher`` itself: its hair-cell stage is a pure-Python loop over every sample of every
channel (700 x 16,000 iterations with ``np.max`` calls per second of audio, minutes per
recording), its basilar membrane evaluates Hankel functions per channel, it draws from numpy's
global random state inside a process pool (not reproducible per seed), and it needs ``soundfile``.
The whole dataset must build in minutes on two cores; this chain takes ~0.1 s per recording.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


def erb(f):
    """Equivalent rectangular bandwidth [Hz] at frequency ``f`` [Hz] (Glasberg & Moore 1990)."""
    return 24.7 * (4.37e-3 * np.asarray(f, dtype=np.float64) + 1.0)


def erb_space(f_lo: float, f_hi: float, n: int) -> np.ndarray:
    """``n`` centre frequencies [Hz] evenly spaced on the ERB-rate scale, low to high."""
    def rate(f):
        return 21.4 * np.log10(4.37e-3 * f + 1.0)

    r = np.linspace(rate(f_lo), rate(f_hi), n)
    return (10.0 ** (r / 21.4) - 1.0) / 4.37e-3


@njit(cache=True, parallel=True)
def cochlea_spikes(x, fs, cf, bw_scale, compress, level, lp_hz, adapt_tau, gain, refrac, thresholds, max_spikes,
                   out_t, out_n):
    """Spike times of every channel for one sound.

    Parameters
    ----------
    x : float64 (N,)
        Sound pressure [arbitrary units], sampled at ``fs`` [Hz].
    cf : float64 (C,)
        Centre frequencies [Hz].
    bw_scale, compress, lp_hz, adapt_tau, gain, refrac
        Bandwidth factor of the ERB, compression exponent, hair-cell low-pass [Hz], adaptation
        time constant [s], peak rate scale [spikes/s per unit drive], dead time [s].
    thresholds : float64 (C, max_spikes + 1)
        Exp(1) draws, one per spike to come (time-rescaling thresholds).
    out_t : float64 (C, max_spikes)
        Receives the spike times [s] of channel c in ``out_t[c, :out_n[c]]``.
    """
    N = x.size
    C = cf.size
    dt = 1.0 / fs
    a_lp = math.exp(-2.0 * math.pi * lp_hz * dt)
    a_ad = math.exp(-dt / adapt_tau)
    for c in prange(C):
        f = cf[c]
        b = 2.0 * math.pi * bw_scale * 24.7 * (4.37e-3 * f + 1.0)
        a = math.exp(-b * dt)                  # pole radius of each one-pole stage
        w = 2.0 * math.pi * f * dt
        cw, sw = math.cos(w), math.sin(w)
        pr, pi = 1.0, 0.0                      # phasor exp(-i w n)
        y1r = y1i = y2r = y2i = y3r = y3i = y4r = y4i = 0.0
        lp = 0.0
        mean = 0.0
        acc = 0.0
        k = 0
        thr = thresholds[c, 0]
        dead_until = -1.0
        for n in range(N):
            # shift to baseband, four complex one-pole low-passes
            ur = x[n] * pr
            ui = x[n] * pi
            y1r = a * y1r + (1.0 - a) * ur
            y1i = a * y1i + (1.0 - a) * ui
            y2r = a * y2r + (1.0 - a) * y1r
            y2i = a * y2i + (1.0 - a) * y1i
            y3r = a * y3r + (1.0 - a) * y2r
            y3i = a * y3i + (1.0 - a) * y2i
            y4r = a * y4r + (1.0 - a) * y3r
            y4i = a * y4i + (1.0 - a) * y3i
            # back to the centre frequency: real part of y4 * exp(+i w n)
            bm = 2.0 * (y4r * pr + y4i * pi)
            # advance the phasor (renormalised now and then against drift)
            npr = pr * cw + pi * sw
            pi = pi * cw - pr * sw
            pr = npr
            if (n & 1023) == 1023:
                m = math.sqrt(pr * pr + pi * pi)
                pr /= m
                pi /= m
            # inner hair cell: rectify, compress, low-pass, adapt
            r = bm if bm > 0.0 else 0.0
            lp = a_lp * lp + (1.0 - a_lp) * r
            mean = a_ad * mean + (1.0 - a_ad) * lp
            u = (lp / (1.0 + mean / level)) / level
            u = u ** compress
            drive = u / (1.0 + u)
            # spike generator (time-rescaled Poisson with dead time)
            t = n * dt
            if t < dead_until:
                continue
            acc += gain * drive * dt
            if acc >= thr:
                if k < max_spikes:
                    out_t[c, k] = t
                    k += 1
                    thr = thresholds[c, k]
                acc = 0.0
                dead_until = t + refrac
        out_n[c] = k


def cochlea(x: np.ndarray, fs: float, rng: np.random.Generator, *, n_channels: int = 700, f_lo: float = 50.0,
            f_hi: float = 7500.0, compress: float = 2.0, level: float = 0.1, lp_hz: float = 1000.0,
            adapt_tau: float = 0.04, gain: float = 200.0, refrac: float = 1e-3, t0: float = 0.0):
    """Spikes of a 700-channel cochlea for one sound.

    Parameters
    ----------
    x : array (N,)
        Sound [arbitrary units, ~unit RMS for speech at normal level], sampled at ``fs`` [Hz].
    rng : numpy.random.Generator
        Source of the spike generator's randomness.
    t0 : float
        Time [s] of the first sample (added to every spike time).

    Returns
    -------
    times : float64 (S,) [s], units : int64 (S,)
        Sorted by time, then channel.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    cf = erb_space(f_lo, f_hi, n_channels)
    max_spikes = int(x.size / fs / refrac) + 1
    thresholds = rng.exponential(1.0, size=(n_channels, max_spikes + 1))
    out_t = np.empty((n_channels, max_spikes))
    out_n = np.zeros(n_channels, dtype=np.int64)
    cochlea_spikes(x, float(fs), cf, 1.019, compress, level, lp_hz, adapt_tau, gain, refrac, thresholds, max_spikes,
                   out_t, out_n)
    units = np.repeat(np.arange(n_channels), out_n)
    times = np.concatenate([out_t[c, :out_n[c]] for c in range(n_channels)]) + t0
    order = np.lexsort((units, times))
    return times[order], units[order]
