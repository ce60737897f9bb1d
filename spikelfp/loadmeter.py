"""How busy the rest of the machine was while something was timed.

``OtherLoad`` reads the machine's busy CPU time (/proc/stat) and this process's own CPU time
(os.times) at start and stop; the difference is what other processes used, given as a share of
all CPUs over the interval (0: nobody else, 1: every core busy elsewhere). The trainers record it
for every epoch, ``spikelfp bench`` reports the worst per method and warns above
:data:`HIGH_LOAD`; ``benchmarks/simulator.py`` records it for every timing. Where /proc/stat does
not exist (not Linux), or the interval is too short to tell, the load reads as None ("not
measured"), never as 0.
"""

from __future__ import annotations

import os
import time

HIGH_LOAD = 0.25     # other processes' share of all CPUs above which a timing is flagged as unreliable
MIN_TICKS = 30       # shortest interval measured, in clock ticks (0.3 s at the usual 100 Hz)


def _busy_and_own():
    try:
        with open("/proc/stat") as fh:
            f = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None, 0.0
    busy = sum(f) - f[3] - f[4]          # all but idle and iowait, in clock ticks
    return busy, sum(os.times()[:4])     # this process and its waited-for children, in seconds


class OtherLoad:
    """Other processes' share of all CPUs while this meter ran.

    ``m = OtherLoad(); ...; share = m.stop()``. A meter can be started and stopped again: it sums
    its intervals (the trainers time each epoch and report the whole run, whose epochs may each
    be too short to tell on their own).
    """

    def __init__(self, start: bool = True):
        self.busy_ticks = 0
        self.own_s = 0.0
        self.wall_s = 0.0
        self.available = True
        self._t0 = None
        if start:
            self.start()

    def start(self) -> None:
        b0, own0 = _busy_and_own()
        self.available = self.available and b0 is not None
        self._t0 = (b0, own0, time.perf_counter())

    def stop(self) -> float | None:
        """End the current interval; returns :meth:`share` over all intervals so far."""
        if self._t0 is not None:
            b0, own0, w0 = self._t0
            b1, own1 = _busy_and_own()
            self.available = self.available and b1 is not None
            if self.available:
                self.busy_ticks += b1 - b0
                self.own_s += own1 - own0
            self.wall_s += time.perf_counter() - w0
            self._t0 = None
        return self.share()

    def share(self) -> float | None:
        """Other processes' share of all CPUs over the measured intervals; None where it cannot be
        told: no /proc/stat, or less than :data:`MIN_TICKS` clock ticks measured in all (the
        counters advance in ticks of 10 ms: over a few ticks one tick of rounding reads as 0.3 CPUs)."""
        hz = os.sysconf("SC_CLK_TCK")
        if not self.available or self.wall_s * hz < MIN_TICKS:
            return None
        other = (self.busy_ticks / hz - self.own_s) / (self.wall_s * (os.cpu_count() or 1))
        return round(min(1.0, max(0.0, other)), 3)
