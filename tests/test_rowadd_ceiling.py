"""benchmarks/rowadd_ceiling.py (the forward's row-add ceiling, issue 13): every schedule it times
must add each sample's rows in the simulator's order, or its figures would not bound the simulator."""

import os
import sys

import numpy as np
import pytest

from spikelfp import EventBatch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
import rowadd_ceiling as R  # noqa: E402


def _reference(eb, WT, n_out):
    """One row at a time in numpy, each step's sum halved first (the script's stand-in for the leak)."""
    B, T = eb.batch_size, eb.n_steps
    W = WT.reshape(-1, n_out)
    out = np.zeros((B, n_out), WT.dtype)
    for b in range(B):
        a = np.zeros(n_out, WT.dtype)
        for t in range(T):
            a *= WT.dtype.type(0.5)
            for e in range(eb.indptr[b * T + t], eb.indptr[b * T + t + 1]):
                a += W[eb.indices[e]]
        out[b] = a
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_schedule_gives_the_simulators_bits(dtype):
    rng = np.random.default_rng(3)
    B, T, n_in, n_out = 7, 9, 40, 150          # 150: two whole tiles of 64 and a partial one
    x = rng.random((B, T, n_in)) < 0.3
    x[:, 2] = x[0, 2]                          # step 2: every sample has the same channels (full sharing)
    eb = EventBatch.from_dense(x.astype(np.uint8))
    WT = rng.standard_normal(n_in * n_out).astype(dtype)
    want = _reference(eb, WT, n_out)
    for G in (1, 2, 3, 8):
        out = np.empty((B, n_out), dtype)
        R.rows_batch_major(eb.indptr, eb.indices, B, T, WT, n_in, n_out, G, 2, out)
        np.testing.assert_array_equal(out, want)
        out = np.empty((B, n_out), dtype)
        R.rows_tiled(eb.indptr, eb.indices, B, T, WT, n_out, G, 2, out)
        np.testing.assert_array_equal(out, want)
    out = np.empty((B, n_out), dtype)
    R.rows_fused(eb.indptr, eb.indices, B, T, WT, n_out, 3, out)
    np.testing.assert_array_equal(out, want)


def test_sharing_counts_samples_per_fetched_row():
    # 2 samples, 2 steps, 4 channels: step 0 both have channel 1 (shared), step 1 one has 0, other 3
    x = np.zeros((2, 2, 4), np.uint8)
    x[0, 0, 1] = x[1, 0, 1] = 1
    x[0, 1, 0] = x[1, 1, 3] = 1
    eb = EventBatch.from_dense(x)
    assert R.sharing(eb, 1) == 1.0
    assert R.sharing(eb, 2) == pytest.approx(4 / 3)     # 4 events, 3 distinct (step, channel) in the group
