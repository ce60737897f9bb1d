"""How busy the rest of the machine was while something was timed.

``OtherLoad`` reads the machine's busy CPU time (/proc/stat) and this process's own CPU time
(os.times) at start and stop; the difference is what other processes used, given as a share of
all CPUs over the interval (0: nobody else, 1: every core busy elsewhere). The trainers record it
for every epoch, ``spikelfp bench`` reports the worst per method and warns above
:data:`HIGH_LOAD`; ``benchmarks/simulator.py`` records it for every timing. Where /proc/stat does
not exist (not Linux) the load reads as None ("not measured"), never as 0.
"""

from __future__ import annotations

import os
import time

HIGH_LOAD = 0.25     # other processes' share of all CPUs above which a timing is flagged as unreliable


def _busy_and_own():
    try:
        with open("/proc/stat") as fh:
            f = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None, 0.0
    busy = sum(f) - f[3] - f[4]          # all but idle and iowait, in clock ticks
    return busy, sum(os.times()[:4])     # this process and its waited-for children, in seconds


class OtherLoad:
    """``m = OtherLoad(); ...; share = m.stop()``: other processes' share of all CPUs meanwhile."""

    def __init__(self):
        self._b0, self._own0 = _busy_and_own()
        self._w0 = time.perf_counter()

    def stop(self) -> float | None:
        b1, own1 = _busy_and_own()
        wall = time.perf_counter() - self._w0
        if self._b0 is None or b1 is None or wall <= 0:
            return None
        hz = os.sysconf("SC_CLK_TCK")
        other = ((b1 - self._b0) / hz - (own1 - self._own0)) / (wall * (os.cpu_count() or 1))
        return round(min(1.0, max(0.0, other)), 3)
