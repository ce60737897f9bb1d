"""The temporal rule's ``form="paper"`` against the authors' own code (lfprop 1.0.0).

``tests/fixtures/lfprop_golden.h5`` holds lfprop's feedback for small random nets, written by
``tests/fixtures/make_lfprop_golden.py`` in an environment with lfprop installed (see its
docstring); this test needs only the file.
"""

import os

import h5py
import numpy as np
import pytest

from spikelfp import LIFLayer, Network, Temporal, simulate
from spikelfp.feedback import RateReward

GOLDEN = os.path.join(os.path.dirname(__file__), "fixtures", "lfprop_golden.h5")


def _cases():
    with h5py.File(GOLDEN, "r") as f:
        return sorted(f.keys())


def _load(name):
    with h5py.File(GOLDEN, "r") as f:
        g = f[name]
        L = len(g.attrs["sizes"]) - 1
        layers, fw, fb = [], [], []
        for l in range(L):
            has_b = f"layer{l}/bias" in g
            layers.append(LIFLayer(g[f"layer{l}/weight"][()], g[f"layer{l}/bias"][()] if has_b else None,
                                   beta=float(g[f"layer{l}/beta"][()]), threshold=float(g[f"layer{l}/threshold"][()]),
                                   reset="subtract"))
            fw.append(g[f"layer{l}/feedback_weight"][()])
            fb.append(g[f"layer{l}/feedback_bias"][()] if has_b else None)
        x = np.ascontiguousarray(g["x"][()].transpose(1, 0, 2))        # (T, B, n) -> (B, T, n)
        return Network(layers), x, g["labels"][()], g["spikes"][()], fw, fb, float(f.attrs["eps"])


def test_golden_file_is_in_the_repository():
    assert os.path.exists(GOLDEN), "run tests/fixtures/make_lfprop_golden.py with lfprop installed"
    assert len(_cases()) >= 4


@pytest.mark.parametrize("case", _cases() if os.path.exists(GOLDEN) else [])
def test_paper_form_matches_lfprop(case):
    net, x, labels, spikes, fw, fb, eps = _load(case)
    # same forward: our output spikes are lfprop's
    rec = simulate(net, x, raster=True)
    np.testing.assert_array_equal(rec.rasters[-1].transpose(1, 0, 2), spikes)
    assert spikes.sum() > 0
    fbk = Temporal(eps=eps, reward=RateReward(), form="paper", contrib="spikes", n_chunks=1).feedback(net, x, labels)
    for l in range(len(net)):
        assert np.abs(fw[l]).max() > 0
        np.testing.assert_allclose(fbk.weight[l], fw[l], rtol=1e-9, atol=1e-9 * np.abs(fw[l]).max())
        if fb[l] is not None:
            np.testing.assert_allclose(fbk.bias[l], fb[l], rtol=1e-9, atol=1e-9 * np.abs(fb[l]).max())


@pytest.mark.parametrize("case", _cases()[:1] if os.path.exists(GOLDEN) else [])
@pytest.mark.parametrize("form, contrib", [("carry", "spikes"), ("paper", "graded")])
def test_other_forms_differ_from_lfprop(case, form, contrib):
    """The shipped default (carry denominator, graded credit) is a different rule, and so is each of
    its two departures alone: the golden files can tell them apart."""
    net, x, labels, _, fw, _, eps = _load(case)
    fbk = Temporal(eps=eps, reward=RateReward(), form=form, contrib=contrib, n_chunks=1).feedback(net, x, labels)
    assert not all(np.allclose(fbk.weight[l], fw[l], rtol=1e-6) for l in range(len(net)))
