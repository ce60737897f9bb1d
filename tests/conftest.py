import os
import sys

import numpy as np
import pytest

# needs lfprop, which is never installed here (see the script): not a test module
collect_ignore = ["fixtures/make_lfprop_golden.py"]

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(scope="session", autouse=True)
def _private_config(tmp_path_factory):
    """Tests never touch the user's ~/.config (the sweep signing key lives there)."""
    old = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config"))
    yield
    if old is None:
        os.environ.pop("XDG_CONFIG_HOME", None)
    else:
        os.environ["XDG_CONFIG_HOME"] = old


def foreground_sigint():
    """``preexec_fn`` for a command a test interrupts with SIGINT: the child gets SIGINT's default
    disposition, as a foreground command has. A test run started in the background by a
    non-interactive shell ignores SIGINT, its children inherit that, and Python (spikelfp with it)
    then keeps ignoring SIGINT, as a backgrounded command should."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def random_net(rng, sizes, reset="zero", bias=False, gain=2.5, beta=None, threshold=1.0, dtype=np.float64,
               rec=None):
    """A random dense net; ``rec`` (one flag per layer) adds recurrent weights V ~ U(-1.2, 1.0),
    drawn after the layer's W and b (nets without ``rec`` draw exactly as before)."""
    import spikelfp

    layers = []
    for k in range(len(sizes) - 1):
        bound = gain / np.sqrt(sizes[k])
        w = rng.uniform(-bound, bound * 1.3, size=(sizes[k + 1], sizes[k]))
        b = rng.uniform(-0.2, 0.3, size=sizes[k + 1]) if bias else None
        v = rng.uniform(-1.2, 1.0, size=(sizes[k + 1], sizes[k + 1])) if rec is not None and rec[k] else None
        layers.append(spikelfp.LIFLayer(w.astype(dtype), None if b is None else b.astype(dtype),
                                        beta=rng.uniform(0.5, 1.0) if beta is None else beta,
                                        threshold=threshold, reset=reset,
                                        recurrent=None if v is None else v.astype(dtype)))
    return spikelfp.Network(layers)


def run_nir_model(model, x, shape=None):
    """Step a model from snntorch's NIR importer through x (B, T, n) 0/1, in float64: its output
    spikes (B, T, n_out); ``shape`` (H, W, C) feeds a conv net images."""
    from spikelfp.backends.nir import run_snntorch_model

    return run_snntorch_model(model, x, shape)


def check_snntorch_mirror(net, x, rtol=1e-12):
    """``to_snntorch(net)`` (float64) on x (B, T, n): spikes identical to spikelfp's, membranes to
    ``rtol`` (torch sums the inputs in another order). Returns (spikelfp's Record, the model)."""
    import torch
    from spikelfp.backends import snntorch as bsn

    import spikelfp

    want = spikelfp.simulate(net, x, raster=True, membrane=True)
    model = bsn.to_snntorch(net)
    with torch.no_grad():
        _, spikes, mems = model(torch.from_numpy(x.transpose(1, 0, 2).astype(np.float64)), record=True)
    for l, (s, r) in enumerate(zip(spikes, want.rasters)):
        np.testing.assert_array_equal(s.numpy().transpose(1, 0, 2), r)
        np.testing.assert_allclose(mems[l].numpy().transpose(1, 0, 2), want.membranes[l], rtol=rtol, atol=1e-12)
    return want, model


def check_same_without_sums(rule, net, x, y, fb):
    """``rule`` without the conservation sums gives ``fb``'s feedback to the bit. The kernels take
    another path then (the temporal rule folds a spike-only reward into the carry instead of reading
    a dense g), so every reference test that turns the sums on also checks the path users run."""
    import dataclasses

    off = dataclasses.replace(rule, conservation=False).feedback(net, x, y)
    np.testing.assert_array_equal(off.weight_flat, fb.weight_flat)
    np.testing.assert_array_equal(off.bias_flat, fb.bias_flat)
    np.testing.assert_array_equal(off.counts, fb.counts)


def random_input(rng, B, T, n, density=0.2):
    return (rng.random((B, T, n)) < density).astype(np.uint8)


@pytest.fixture(scope="session")
def data_root(tmp_path_factory):
    """A private dataset cache for the whole session (never the user's)."""
    root = tmp_path_factory.mktemp("spikelfp-data")
    os.environ["SPIKELFP_DATA"] = str(root)
    return str(root)


@pytest.fixture(scope="session")
def digits(data_root):
    from spikelfp import datasets

    return datasets.load("digits-saccade", root=data_root)


@pytest.fixture(scope="session")
def small_digits(digits):
    """A small, fixed subset for fast end-to-end tests."""
    train, test = digits
    return train.subset(np.arange(0, len(train), 6)), test.subset(np.arange(0, len(test), 3))
