"""Progress reporting: tqdm bars on a terminal, periodic plain lines otherwise (logs, pipes, CI).

:func:`progress_bar` has tqdm's small API (``progress_bar(iterable, desc=..., unit=...)`` or
``progress_bar(total=..., desc=...)``, then ``update``/``close`` or iteration), so callers need
not care where their output goes.
"""

from __future__ import annotations

import sys
import time


class PlainProgress:
    """One line on stderr at the start, every ``every`` seconds (or every 10 % of the total, at most
    one line per 5 s) and at the end."""

    def __init__(self, iterable=None, total=None, desc: str = "", unit: str = "it", initial: int = 0,
                 every: float = 30.0, **_):
        self.iterable = iterable
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.desc, self.unit, self.n, self.every = desc, unit, initial, every
        self.t0 = self._last = time.monotonic()
        self._last_frac = 0.0
        self._closed = False
        self._line("started")

    def _line(self, what: str) -> None:
        total = f"/{self.total}" if self.total else ""
        try:
            print(f"{self.desc}: {self.n}{total} {self.unit} ({what}, {time.monotonic() - self.t0:.0f} s)",
                  file=sys.stderr, flush=True)
        except (BrokenPipeError, ValueError):     # stderr closed: progress is not worth dying for
            pass

    def update(self, k: int = 1) -> None:
        self.n += k
        now = time.monotonic()
        frac = self.n / self.total if self.total else 0.0
        if now - self._last >= self.every or (frac - self._last_frac >= 0.1 and now - self._last >= 5.0):
            self._last, self._last_frac = now, frac
            self._line("running")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._line("done")

    def __iter__(self):
        try:
            for x in self.iterable:
                yield x
                self.update(1)
        finally:
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def progress_bar(*args, **kwargs):
    """A tqdm bar when stderr is a terminal, else :class:`PlainProgress`."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(*args, **kwargs)
    return PlainProgress(*args, **kwargs)
