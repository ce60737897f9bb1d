"""SIGTERM and Ctrl-C (SIGINT), delivered reliably.

A command that gets SIGTERM or SIGINT raises KeyboardInterrupt in the main thread, so every
``finally`` block runs (checkpoints stay whole, Lava's workers are stopped). Python swallows an
exception raised while it runs certain callbacks -- an ``os.register_at_fork`` hook or a weakref
callback the garbage collector runs, for two: a SIGTERM that landed while Lava forked its workers
was silently lost ("Exception ignored in _releaseLock"), and so was a Ctrl-C that landed in a
``WeakValueDictionary`` callback during training (the run went on to its last epoch). So the
first signal also starts a 1 s interval timer whose SIGALRM raises the interrupt again until
someone :func:`acknowledge` s it (the command's top level, or the Lava runner as it starts its
cleanup); after ``GIVE_UP_S`` without acknowledgement every child is killed and the process exits
(128 + the signal: 143 after SIGTERM, 130 after Ctrl-C): nothing can hang for good.
"""

from __future__ import annotations

import os
import signal

GIVE_UP_S = 30
_state = {"signum": None, "acked": False, "ticks": 0, "installed": False, "prev": {}}


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
    """Route SIGTERM and SIGINT to a re-raised KeyboardInterrupt (main thread only; idempotent).

    SIGINT is taken only from Python's own Ctrl-C handler: an ignored SIGINT (a command started in
    the background by a non-interactive shell) stays ignored, and a caller's own handler stays."""
    if not _state["installed"]:
        ours = [signal.SIGTERM, signal.SIGALRM]
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            ours.append(signal.SIGINT)
        prev = {s: signal.getsignal(s) for s in ours}
        for s in ours:
            signal.signal(s, _on_alarm if s == signal.SIGALRM else _on_term)
        _state.update(installed=True, signum=None, acked=False, ticks=0, prev=prev)


def pending() -> int | None:
    """The signal number of a SIGTERM or SIGINT received and not yet acknowledged, else None."""
    return _state["signum"] if (_state["signum"] is not None and not _state["acked"]) else None


def acknowledge() -> None:
    """The interrupt arrived where it can be handled: stop re-raising it."""
    _state["acked"] = True
    if _state["installed"]:
        signal.setitimer(signal.ITIMER_REAL, 0)


def uninstall() -> None:
    if _state["installed"]:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for s, h in _state["prev"].items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        _state.update(installed=False, signum=None, acked=False, ticks=0, prev={})
