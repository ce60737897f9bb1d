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
        return sorted(k for k in f.keys() if k.startswith("case"))


def _conv_cases():
    with h5py.File(GOLDEN, "r") as f:
        return sorted(k for k in f.keys() if k.startswith("conv"))


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
    assert len(_cases()) >= 4 and len(_conv_cases()) >= 2


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


def _load_conv(name):
    from spikelfp import ConvLayer
    from spikelfp.network import pool_layer

    with h5py.File(GOLDEN, "r") as f:
        g = f[name]
        L = int(g.attrs["n_layers"])
        layers, fw = [], []
        for l in range(L):
            beta, thr = float(g[f"layer{l}/beta"][()]), float(g[f"layer{l}/threshold"][()])
            w = g[f"layer{l}/weight"][()]
            if l < L - 1:
                shape = tuple(int(v) for v in g[f"layer{l}/in_shape"][()])
                if g[f"layer{l}/pool"][()]:
                    la = pool_layer(shape, int(w.shape[2]), beta=beta, threshold=thr, reset="subtract")
                    assert np.array_equal(la.weight, w)            # lfprop ran spikelfp's own pooling synapses
                else:
                    la = ConvLayer(w, shape, int(g[f"layer{l}/stride"][()]), 0, None, beta, thr, "subtract")
            else:
                la = LIFLayer(w, None, beta=beta, threshold=thr, reset="subtract")
            layers.append(la)
            fw.append(g[f"layer{l}/feedback_weight"][()] if f"layer{l}/feedback_weight" in g else None)
        x = np.ascontiguousarray(g["x"][()].transpose(1, 0, 2))
        return Network(layers), x, g["labels"][()], g["spikes"][()], fw, float(f.attrs["eps"])


@pytest.mark.parametrize("case", _conv_cases() if os.path.exists(GOLDEN) else [])
def test_paper_form_matches_lfprop_on_conv_and_pooling(case):
    """Conv layers (strided too) and spike pooling (lfprop runs it as the SpikingLayer of its fixed
    Conv2d): the same spikes and every trained layer's F_W as the authors' code."""
    net, x, labels, spikes, fw, eps = _load_conv(case)
    rec = simulate(net, x, raster=True)
    np.testing.assert_array_equal(rec.rasters[-1].transpose(1, 0, 2), spikes)
    assert spikes.sum() > 0 and all(r.sum() > 0 for r in rec.rasters)
    fbk = Temporal(eps=eps, reward=RateReward(), form="paper", contrib="spikes", n_chunks=1).feedback(net, x, labels)
    checked = 0
    for l in range(len(net)):
        if fw[l] is None:
            continue
        assert np.abs(fw[l]).max() > 0
        np.testing.assert_allclose(fbk.weight[l], fw[l], rtol=1e-9, atol=1e-9 * np.abs(fw[l]).max())
        checked += 1
    assert checked >= 2
