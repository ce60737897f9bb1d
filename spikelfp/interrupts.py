"""SIGTERM as Ctrl-C, delivered reliably.

A command that gets SIGTERM raises KeyboardInterrupt in the main thread, so every ``finally``
block runs (checkpoints stay whole, Lava's workers are stopped). Python swallows an exception
raised while it runs certain callbacks -- an ``os.register_at_fork`` hook, for one: a SIGTERM that
lands while Lava forks its workers was silently lost ("Exception ignored in _releaseLock"). So the
first SIGTERM also starts a 1 s interval timer whose SIGALRM raises the interrupt again until
someone :func:`acknowledge` s it (the command's top level, or the Lava runner as it starts its
cleanup); after ``GIVE_UP_S`` without acknowledgement every child is killed and the process exits
(143): nothing can hang for good.
"""

from __future__ import annotations

import os
import signal

GIVE_UP_S = 30
_state = {"signum": None, "acked": False, "ticks": 0, "installed": False}


def _raise(signum):
    raise KeyboardInterrupt(f"signal {signum}")


def _on_term(signum, frame):
    if _state["signum"] is None:
        _state["signum"] = signum
        signal.setitimer(signal.ITIMER_REAL, 1.0, 1.0)
    _raise(signum)


def _on_alarm(signum, frame):
    if _state["acked"] or _state["signum"] is None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        return
    _state["ticks"] += 1
    if _state["ticks"] >= GIVE_UP_S:
        _kill_children()
        os._exit(128 + int(_state["signum"]))
    _raise(_state["signum"])


def _kill_children() -> int:
    """SIGKILL every multiprocessing child still alive (Lava's workers); returns how many."""
    import multiprocessing

    n = 0
    for p in multiprocessing.active_children():
        try:
            p.kill()
            n += 1
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
    return n


def install() -> None:
    """Route SIGTERM to KeyboardInterrupt (main thread only; idempotent)."""
    if not _state["installed"]:
        signal.signal(signal.SIGTERM, _on_term)
        signal.signal(signal.SIGALRM, _on_alarm)
        _state.update(installed=True, signum=None, acked=False, ticks=0)


def pending() -> int | None:
    """The signal number of a SIGTERM received and not yet acknowledged, else None."""
    return _state["signum"] if (_state["signum"] is not None and not _state["acked"]) else None


def acknowledge() -> None:
    """The interrupt arrived where it can be handled: stop re-raising it."""
    _state["acked"] = True
    if _state["installed"]:
        signal.setitimer(signal.ITIMER_REAL, 0)


def uninstall() -> None:
    if _state["installed"]:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        _state.update(installed=False, signum=None, acked=False, ticks=0)
