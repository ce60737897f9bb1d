"""The kernels' numba cache is invalidated by a change in any kernel file (spikelfp.kernels)."""

import os
import subprocess
import sys
import textwrap

import numpy as np


def test_kernels_are_cached_under_one_stamp_of_all_their_files():
    import spikelfp
    from spikelfp.kernels import GUARDED, STAMP, feedback, fingerprint, lif

    net = spikelfp.Network.random([4, 3, 2], seed=0, gain=3.0)
    spikelfp.simulate(net, np.ones((1, 3, 4), np.uint8))
    assert STAMP == fingerprint(GUARDED)
    assert {os.path.basename(p) for p in GUARDED} >= {"lif.py", "feedback.py", "loihi.py", "events.py"}
    for disp in (lif.forward, feedback.temporal_feedback):
        locator = disp._cache._impl.locator
        assert type(locator).__name__.startswith("Guarded")
        assert locator.get_source_stamp() == STAMP


def _run(d, guarded):
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(d)!r})
        if {guarded}:
            from spikelfp.kernels import guard_cache
            guard_cache([{str(d / 'inner.py')!r}, {str(d / 'outer.py')!r}])
        import outer
        print(outer.f())
    """)
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.split()[-1])


def test_a_change_in_a_called_file_reaches_the_cached_caller(tmp_path):
    """numba alone keeps the caller's cached code when only the callee's file changed (the
    unguarded run returns the old value); under the guard the caller compiles again."""
    for guarded in (False, True):
        d = tmp_path / ("guarded" if guarded else "plain")
        d.mkdir()
        (d / "inner.py").write_text("from numba import njit\n\n@njit(cache=True)\ndef g():\n    return 1\n")
        (d / "outer.py").write_text("from numba import njit\nfrom inner import g\n\n"
                                    "@njit(cache=True)\ndef f():\n    return g() + 10\n")
        assert _run(d, guarded) == 11
        assert _run(d, guarded) == 11                     # from the cache
        assert any(n.endswith(".nbi") for n in os.listdir(d / "__pycache__"))
        (d / "inner.py").write_text("from numba import njit\n\n@njit(cache=True)\ndef g():\n    return 2\n")
        assert _run(d, guarded) == (12 if guarded else 11)


def test_an_unknown_numba_layout_warns_instead_of_failing(monkeypatch):
    """Where numba keeps its cache locators elsewhere, importing spikelfp still works and says
    the cache is not guarded (what to delete after an update)."""
    import pytest
    from numba.core import caching

    from spikelfp import kernels

    monkeypatch.delattr(caching, "CacheImpl", raising=False)
    monkeypatch.delattr(caching, "_CacheImpl", raising=False)
    with pytest.warns(RuntimeWarning, match="not guarded"):
        kernels._install()
