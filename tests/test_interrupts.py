"""spikelfp.interrupts: a SIGINT or SIGTERM that Python swallows is raised again.

Python prints "Exception ignored" and drops a KeyboardInterrupt raised while it runs a weakref
callback (or an at-fork hook). Each script below makes its signal land inside such a callback,
then spins: the interrupt must still arrive (re-raised by the 1 s timer), else the script ends
normally and the test fails. Scripts run in subprocesses so that pytest's own handlers are
never touched."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest
from conftest import foreground_sigint

SWALLOWED = textwrap.dedent("""
    import gc, os, signal, sys, time, weakref
    from spikelfp import interrupts
    if sys.argv[1] == "install":
        interrupts.install()

    class Obj: pass

    def callback(ref):                      # the signal lands here: Python swallows what it raises
        os.kill(os.getpid(), int(sys.argv[2]))
        for _ in range(100_000):            # its handler runs at a loop's jump, however slow the machine
            pass

    o = Obj()
    r = weakref.ref(o, callback)
    try:
        del o                               # runs the callback
        t = time.time()
        while time.time() - t < 4.0:
            pass
    except KeyboardInterrupt as e:
        interrupts.acknowledge()
        print("interrupted", e, interrupts.pending())
        sys.exit(130)
    print("lost")
""")


def _run(mode, sig):
    return subprocess.run([sys.executable, "-c", SWALLOWED, mode, str(int(sig))], capture_output=True,
                          text=True, timeout=120, preexec_fn=foreground_sigint)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_swallowed_signal_is_raised_again(sig):
    r = _run("install", sig)
    assert "Exception ignored" in r.stderr          # the first raise was indeed lost in the callback
    assert r.returncode == 130, r.stdout + r.stderr
    assert r.stdout.split() == ["interrupted", "signal", str(int(sig)), "None"]


def test_without_the_guard_python_loses_the_interrupt():
    """The premise: Python's own Ctrl-C handler loses a SIGINT raised inside a weakref callback."""
    r = _run("plain", signal.SIGINT)
    assert "Exception ignored" in r.stderr
    assert r.returncode == 0 and r.stdout.strip() == "lost", r.stdout + r.stderr


def test_an_ignored_sigint_stays_ignored_and_handlers_come_back():
    code = textwrap.dedent("""
        import signal
        from spikelfp import interrupts
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        interrupts.install()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        interrupts.uninstall()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        mine = lambda s, f: None
        signal.signal(signal.SIGTERM, mine)
        interrupts.install()
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        assert signal.getsignal(signal.SIGTERM) is not mine
        interrupts.uninstall()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.getsignal(signal.SIGTERM) is mine
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
