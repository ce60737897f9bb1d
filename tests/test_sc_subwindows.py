"""benchmarks/sc_subwindows.py (a measured experiment, docs/rules.md): with one sub-window it must
be the shipped spike-count rule, or its figures would not say anything about that rule."""

import os
import sys

import numpy as np
import pytest
from conftest import random_input, random_net

from spikelfp import SpikeCount

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
from sc_subwindows import SubWindowCount  # noqa: E402


@pytest.mark.parametrize("contrib", ["graded", "spikes"])
@pytest.mark.parametrize("bias", [False, True])
def test_one_subwindow_is_the_spike_count_rule(contrib, bias):
    rng = np.random.default_rng(7)
    net = random_net(rng, [18, 12, 9, 4], bias=bias, gain=3.0)
    x = random_input(rng, 6, 17, 18, density=0.3)
    y = rng.integers(0, 4, size=6)
    want = SpikeCount(contrib=contrib).feedback(net, x, y)
    got = SubWindowCount(K=1, contrib=contrib).feedback(net, x, y)
    for l in range(len(net)):
        assert np.abs(want.weight[l]).sum() > 0
        np.testing.assert_allclose(got.weight[l], want.weight[l], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(got.bias[l], want.bias[l], rtol=1e-9, atol=1e-12)
    # more sub-windows change the hidden layers' feedback, not the output layer's
    more = SubWindowCount(K=4, contrib=contrib).feedback(net, x, y)
    np.testing.assert_allclose(more.weight[-1], want.weight[-1], rtol=1e-9, atol=1e-12)
    assert not np.allclose(more.weight[0], want.weight[0])
