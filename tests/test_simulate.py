import numpy as np
import numpy_reference as ref
import pytest
from conftest import random_input, random_net

import spikelfp
from spikelfp import EventBatch, LIFLayer, Network, simulate


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("bias", [False, True])
def test_forward_matches_numpy_reference_bit_for_bit(seed, reset, bias):
    rng = np.random.default_rng(seed)
    sizes = [int(rng.integers(5, 40))] + [int(rng.integers(3, 30)) for _ in range(int(rng.integers(1, 4)))]
    net = random_net(rng, sizes, reset=reset, bias=bias)
    x = random_input(rng, 7, 23, sizes[0], density=rng.uniform(0.05, 0.5))
    rec = simulate(net, x, raster=True, membrane=True)
    want = ref.forward(net, x)
    total = 0
    for l, (r, m) in enumerate(want):
        np.testing.assert_array_equal(rec.rasters[l], r)
        np.testing.assert_array_equal(rec.membranes[l], m)       # identical bits, not just close
        np.testing.assert_array_equal(rec.counts[l], r.sum(1))
        total += r.sum()
    assert total > 0, "test network is silent: the comparison would be vacuous"



@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 127, 128, 200])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_spike_compress_lists_every_spike_in_order(n, dtype):
    """The compress packs 64 comparisons into a mask and walks its set bits: every v > theta
    (strictly: v == theta is no spike), ascending, appended after what is already listed, for
    every rate from silence to all neurons, and for whole words, partial words and the tail."""
    from spikelfp.kernels.lif import compress_spikes

    rng = np.random.default_rng(n)
    theta = dtype(0.75)
    for rate in (0.0, 0.02, 0.3, 0.97, 1.0):
        v = np.where(rng.random(n) < rate, theta + rng.random(n).astype(dtype) + dtype(1e-3),
                     theta - rng.random(n).astype(dtype)).astype(dtype)
        v[rng.random(n) < 0.1] = theta                       # exact ties: no spike
        oidx = np.full(n + 5, -7, np.int32)
        k = compress_spikes(v, theta, n, oidx, 3)
        want = np.flatnonzero(v > theta)
        assert k == 3 + want.size
        np.testing.assert_array_equal(oidx[3:k], want)
        assert (oidx[:3] == -7).all(), "entries before k were overwritten"


def test_trailing_zero_count_compiled_and_pure_python_agree():
    """The compress walks mask bits with tzcnt (an LLVM intrinsic) in compiled code and with a
    plain-Python body under NUMBA_DISABLE_JIT=1: both must count the same, up to bit 63."""
    from numba import njit

    from spikelfp.kernels.lif import _cttz

    compiled = njit(lambda x: _cttz(x))
    rng = np.random.default_rng(0)
    values = [1, 2, 3, 1 << 63, (1 << 63) | (1 << 17), 0b1011000] + [int(v) | 1 << int(b) for v, b in
                                                                      zip(rng.integers(1, 2**62, 50),
                                                                          rng.integers(0, 64, 50))]
    for x in values:
        want = (x & -x).bit_length() - 1
        assert compiled(np.uint64(x)) == want
        assert _cttz(np.uint64(x)) == want


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_wide_layers_match_numpy_reference(dtype, reset):
    """Layers of 64, 130 (two mask words and a tail) and 200 neurons, recurrent and not: the
    forward's spikes and membranes are the reference's bits."""
    rng = np.random.default_rng(5)
    net = random_net(rng, [90, 130, 64, 200, 7], reset=reset, bias=True, rec=[False, True, False, False], dtype=dtype)
    x = random_input(rng, 5, 17, 90, density=0.2)
    rec = simulate(net, x, raster=True, membrane=True)
    for (r, m), ra, ma in zip(ref.forward(net, x, dtype), rec.rasters, rec.membranes):
        np.testing.assert_array_equal(ra, r)
        np.testing.assert_array_equal(ma, m)
    rates = [r.mean() for r in rec.rasters[:3]]
    assert min(rates) > 0.01 and max(rates) < 0.9, f"test layers silent or saturated: {rates}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_fused_row_adds_are_bit_exact_for_every_group_size(dtype, reset):
    """The kernel adds 8, then 4, 2, 1 weight rows per pass over the input current: step t here
    carries exactly t input spikes (0..25, every remainder of 8), and the recurrent layer's
    own spikes of t-1 go through the same path; the bits must be those of one row at a time."""
    rng = np.random.default_rng(11)
    n_in, T = 30, 26
    net = random_net(rng, [n_in, 40, 5], reset=reset, bias=True, rec=[True, False], dtype=dtype)
    x = np.zeros((3, T, n_in), np.uint8)
    for b in range(3):
        for t in range(T):
            x[b, t, rng.choice(n_in, size=min(t, n_in), replace=False)] = 1
    assert sorted(set(x[0].sum(1))) == list(range(T))
    rec = simulate(net, x, raster=True, membrane=True)
    for (r, m), ra, ma in zip(ref.forward(net, x, dtype), rec.rasters, rec.membranes):
        np.testing.assert_array_equal(ra, r)
        np.testing.assert_array_equal(ma, m)
    hidden = rec.rasters[0].sum(2)
    assert hidden.max() >= 8 and (hidden % 8 >= 4).any(), "the recurrent path saw no 8- or 4-row group"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("rec", [None, [False, True, False]])
def test_count_sums_summed_by_the_forward(dtype, rec):
    """``run_forward(count_sums=True)`` sums, in time order and in a (B, 2, n) buffer, the graded
    counts clip(v[t]/theta, 0, 1) and the feed-forward input current b + W x[t] (a recurrent
    layer's own rows left out): the same bits as summing the recorded traces step by step."""
    from spikelfp.packed import pack
    from spikelfp.simulate import run_forward

    rng = np.random.default_rng(4)
    net = random_net(rng, [20, 15, 12, 4], reset="subtract", bias=True, threshold=0.8, dtype=dtype, rec=rec)
    x = random_input(rng, 5, 17, 20, density=0.3)
    p = pack(net)
    eb = EventBatch.from_dense(x)
    counts, _, g, _ = run_forward(p, eb, count_sums=True)
    assert g.shape == (5, 2, int(p.n_off[-1])) and g.dtype == dtype
    rec_ = simulate(net, x, membrane=True, raster=True)
    inp = x
    for l, m in enumerate(rec_.membranes):
        layer = net.layers[l]
        want = np.zeros(m.shape[::2], dtype)
        z = np.zeros(m.shape[::2], dtype)
        th = p.theta[l]
        for t in range(m.shape[1]):
            want += np.clip(m[:, t] / th, 0, 1).astype(dtype)
            for b in range(x.shape[0]):
                cur = layer.bias.astype(dtype).copy()
                for i in np.flatnonzero(inp[b, t]):      # ascending i, as the kernel adds them
                    cur += layer.weight[:, i].astype(dtype)
                z[b] += cur
        lo, hi = int(p.n_off[l]), int(p.n_off[l + 1])
        np.testing.assert_array_equal(g[:, 0, lo:hi], want)
        np.testing.assert_array_equal(g[:, 1, lo:hi], z)
        spikes = rec_.counts[l]
        assert (g[:, 0, lo:hi] >= spikes).all() and (g[:, 0, lo:hi] > spikes).any()
        # z is the count-level input a W^T + T b (up to rounding)
        a = inp.sum(1).astype(np.float64)
        tol = 1e-4 if dtype == np.float32 else 1e-10
        np.testing.assert_allclose(g[:, 1, lo:hi], a @ layer.weight.astype(np.float64).T
                                   + x.shape[1] * layer.bias.astype(np.float64), rtol=tol, atol=tol)
        inp = rec_.rasters[l]
    _, _, g2, _ = run_forward(p, eb, count_sums=True, graded=False)     # z alone: the graded pass skipped
    np.testing.assert_array_equal(g2[:, 1], g[:, 1])
    assert not g2[:, 0].any()


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_float32_mode_is_bit_exact_in_float32(reset):
    rng = np.random.default_rng(3)
    net = random_net(rng, [40, 30, 10], reset=reset, bias=True).astype(np.float32)
    x = random_input(rng, 8, 30, 40)
    rec = simulate(net, x, raster=True, membrane=True)
    for (r, m), ra, ma in zip(ref.forward(net, x, np.float32), rec.rasters, rec.membranes):
        assert ma.dtype == np.float32
        np.testing.assert_array_equal(ra, r)
        np.testing.assert_array_equal(ma, m)
    # and float32 tracks float64 closely
    a = simulate(net.astype(np.float64), x, raster=True)
    for ra, rb in zip(a.rasters, rec.rasters):
        assert (ra == rb).mean() > 0.99


def one(w, **kw):
    return Network([LIFLayer(np.array([[w]], dtype=float), **kw)])


def drive(T, steps=None):
    x = np.zeros((1, T, 1), dtype=np.uint8)
    x[0, steps if steps is not None else slice(None), 0] = 1
    return x


def test_v_equal_threshold_does_not_spike_zero_reset():
    rec = simulate(one(0.5, beta=1.0, threshold=1.0), drive(6), raster=True, membrane=True)
    # v: 0.5, 1.0 (== theta: no spike), 1.5 spike, then reset to zero: 0.5, 1.0, 1.5 spike
    assert rec.rasters[0][0, :, 0].tolist() == [0, 0, 1, 0, 0, 1]
    assert rec.membranes[0][0, :, 0].tolist() == [0.5, 1.0, 1.5, 0.5, 1.0, 1.5]


def test_subtract_reset_keeps_the_excess():
    rec = simulate(one(0.5, beta=1.0, reset="subtract"), drive(7), raster=True, membrane=True)
    # v: .5, 1.0, 1.5 spike; then 1.5 + .5 - 1 = 1.0 (no spike), 1.5 spike, 1.0, 1.5 spike
    assert rec.membranes[0][0, :, 0].tolist() == [0.5, 1.0, 1.5, 1.0, 1.5, 1.0, 1.5]
    assert rec.rasters[0][0, :, 0].tolist() == [0, 0, 1, 0, 1, 0, 1]


def test_leak_and_single_input():
    rec = simulate(one(0.8, beta=0.5), drive(4, [0]), raster=True, membrane=True)
    assert rec.membranes[0][0, :, 0].tolist() == [0.8, 0.4, 0.2, 0.1]
    assert rec.counts[0].sum() == 0


def test_zero_reset_drops_the_carry_after_a_spike():
    # w = 1.2 spikes at once; next step v = I only (0 carry) -> 1.2 again
    rec = simulate(one(1.2, beta=0.9), drive(3), raster=True, membrane=True)
    assert rec.membranes[0][0, :, 0].tolist() == [1.2, 1.2, 1.2]
    assert rec.rasters[0][0, :, 0].tolist() == [1, 1, 1]


def test_silence_and_bias():
    silent = simulate(one(5.0, bias=np.array([-0.3])), np.zeros((2, 5, 1), np.uint8), membrane=True)
    assert silent.counts[0].sum() == 0
    np.testing.assert_allclose(silent.membranes[0][0, :, 0], [-0.3, -0.57, -0.813, -1.0317, -1.22853])
    biased = simulate(one(0.0, bias=np.array([0.6]), beta=1.0), np.zeros((1, 6, 1), np.uint8), raster=True)
    assert biased.rasters[0][0, :, 0].tolist() == [0, 1, 0, 1, 0, 1]


def test_readout_ties_go_to_lowest_index():
    counts = np.array([[0, 0, 0], [2, 5, 5], [1, 0, 3]])
    assert spikelfp.predict(counts).tolist() == [0, 1, 2]
    assert spikelfp.tie_rate(counts) == pytest.approx(2 / 3)


@pytest.mark.parametrize("bad, msg", [
    (np.zeros((2, 3)), "shape"),
    (np.full((1, 2, 3), np.nan), "NaN"),
    (np.full((1, 2, 3), 2.0), "binary"),
    (np.zeros((1, 2, 4)), "expects 3"),
])
def test_bad_input_is_refused(bad, msg):
    net = Network([LIFLayer(np.ones((2, 3)))])
    with pytest.raises(ValueError, match=msg):
        simulate(net, bad)


@pytest.mark.parametrize("kwargs, msg", [
    (dict(weight=np.array([[np.nan]])), "NaN"),
    (dict(weight=np.ones(3)), "2-D"),
    (dict(weight=np.ones((2, 3)), bias=np.ones(3)), "bias must have shape"),
    (dict(weight=np.ones((2, 3)), beta=1.5), "beta"),
    (dict(weight=np.ones((2, 3)), threshold=0.0), "threshold"),
    (dict(weight=np.ones((2, 3)), reset="hard"), "unknown reset"),
])
def test_bad_layers_are_refused(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        LIFLayer(**kwargs)


def test_mismatched_layers_are_refused():
    with pytest.raises(ValueError, match="expects 4 inputs"):
        Network([LIFLayer(np.ones((3, 2))), LIFLayer(np.ones((2, 4)))])
    with pytest.raises(ValueError, match="at least one layer"):
        Network([])


def test_event_batch_validation():
    with pytest.raises(ValueError, match="ascending"):
        EventBatch(np.array([0, 2]), np.array([3, 1]), 1, 1, 5)
    with pytest.raises(ValueError, match="channels must lie"):
        EventBatch(np.array([0, 1]), np.array([7]), 1, 1, 5)
    with pytest.raises(ValueError, match="indptr"):
        EventBatch(np.array([0, 1, 1]), np.array([1]), 1, 1, 5)


@pytest.mark.parametrize("dtype", [np.uint8, np.bool_, np.int64, np.float32, np.float64])
def test_dense_to_events_matches_numpy(dtype):
    """The compiled dense -> CSR conversion against np.nonzero: empty and full rows, every dtype,
    a non-contiguous view (snntorch's (T, B, n) swapped); widths below, at and past the 64-channel
    blocks the conversion compresses by."""
    rng = np.random.default_rng(3)
    for shape, dens in (((3, 7, 70), 0.3), ((1, 1, 1), 1.0), ((2, 5, 65), 0.02), ((4, 3, 130), 0.9),
                        ((2, 4, 64), 0.5), ((3, 2, 128), 1.0), ((2, 3, 63), 0.97)):
        x = (rng.random(shape) < dens).astype(dtype)
        x[0, 0] = 0
        if shape[1] > 1:
            x[-1, -1] = 1
        for a in (x, np.swapaxes(np.swapaxes(x, 0, 1).copy(), 0, 1)):
            eb = EventBatch.from_dense(a)
            flat = np.asarray(a).reshape(-1, shape[2]) != 0
            np.testing.assert_array_equal(eb.indices, np.nonzero(flat)[1])
            np.testing.assert_array_equal(np.diff(eb.indptr), flat.sum(axis=1))
            assert eb.indptr[0] == 0 and eb.indices.dtype == np.int32 and eb.indptr.dtype == np.int64
            assert (eb.batch_size, eb.n_steps, eb.n_in) == shape
            np.testing.assert_array_equal(eb.to_dense(), np.asarray(a, dtype=np.uint8))


@pytest.mark.parametrize("bad, msg", [
    (np.array([[[0.0, 1.0, -1.0]]]), "binary"), (np.array([[[0, 3]]], dtype=np.int8), "binary"),
    (np.array([[[0.0, np.inf]]]), "NaN or inf"), (np.array([[[0.5]]], dtype=np.float32), "binary"),
    (np.zeros((0, 3, 2)), ">= 1"), (np.array([[["a"]]]), "dtype"),
])
def test_dense_to_events_refuses_non_spikes(bad, msg):
    with pytest.raises(ValueError, match=msg):
        EventBatch.from_dense(bad)


def test_time_first_layout_is_explicit():
    rng = np.random.default_rng(11)
    net = spikelfp.Network.random([7, 5, 3], seed=1, gain=3.0)
    x = (rng.random((4, 9, 7)) < 0.4).astype(np.uint8)            # (B, T, n)
    a = spikelfp.simulate(net, x, raster=True)
    b = spikelfp.simulate(net, np.swapaxes(x, 0, 1).copy(), raster=True, time_first=True)
    for ra, rb in zip(a.rasters, b.rasters):
        np.testing.assert_array_equal(ra, rb)
    fa = spikelfp.Temporal(n_chunks=1).feedback(net, x, np.arange(4) % 3)
    fb = spikelfp.Temporal(n_chunks=1).feedback(net, np.swapaxes(x, 0, 1), np.arange(4) % 3, time_first=True)
    np.testing.assert_array_equal(fa.weight_flat, fb.weight_flat)
    with pytest.raises(ValueError, match=r"\(T, B, n_in\)"):
        spikelfp.simulate(net, x[0], time_first=True)
