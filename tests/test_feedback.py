import dataclasses

import numpy as np
import numpy_reference as ref
import pytest
from conftest import check_same_without_sums, random_input, random_net

import spikelfp
from spikelfp import RateReward, SoftmaxReward, SpikeCount, Temporal, check_conservation
from spikelfp.feedback import CEReward, ConservationError, get_rule
from spikelfp.kernels.feedback import count_reward, temporal_reward

REWARDS = {"rate": RateReward(), "softmax": SoftmaxReward(tau=2.0), "ce": CEReward(tau=2.0),
           "ce-count": CEReward(tau=1.5, membrane=False)}
REF_KIND = {"rate": ("rate", 2.0, False), "softmax": ("softmax", 2.0, False), "ce": ("ce", 2.0, True),
            "ce-count": ("ce", 1.5, False)}


def _case(seed, reset, bias, n_layers):
    rng = np.random.default_rng(seed)
    sizes = [int(rng.integers(8, 30))] + [int(rng.integers(4, 16)) for _ in range(n_layers - 1)] + [4]
    net = random_net(rng, sizes, reset=reset, bias=bias, gain=3.0)
    x = random_input(rng, 6, 17, sizes[0], density=0.3)
    y = rng.integers(0, 4, size=6)
    return net, x, y


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("reward", ["rate", "softmax", "ce", "ce-count"])
@pytest.mark.parametrize("n_layers", [2, 3])
@pytest.mark.parametrize("form", ["carry", "paper"])
@pytest.mark.parametrize("contrib", ["graded", "spikes"])
def test_temporal_rule_matches_numpy_reference(seed, reset, bias, reward, n_layers, form, contrib):
    net, x, y = _case(seed, reset, bias, n_layers)
    rule = Temporal(reward=REWARDS[reward], form=form, contrib=contrib, conservation=True)
    fb = rule.feedback(net, x, y)
    check_same_without_sums(rule, net, x, y, fb)
    kind, tau, out_scale = REF_KIND[reward]
    FW, Fb, recv, passed, _ = ref.temporal_feedback(net, x, y, kind=kind, tau=tau, out_scale=out_scale, form=form,
                                                    contrib=contrib)
    for l in range(len(net)):
        assert np.abs(FW[l]).sum() > 0, "vacuous: no feedback reached this layer"
        np.testing.assert_allclose(fb.weight[l], FW[l], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(fb.bias[l], Fb[l], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fb.received, recv, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fb.passed, passed, rtol=1e-9, atol=1e-12)
    check_conservation(fb)


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_graded_credit_by_hand(reset):
    """1 input -> 2 hidden -> 1 output, T = 1. Hidden 0 (w 2) spikes, hidden 1 (w 0.5) stays at half
    its threshold; only hidden 0 drives the output (I = 0.8, silent). Rate reward, true class:
    g = 1 - sigmoid(0) = 0.5, rho_out = 0.5 / (0.8 + eps). Spikes: hidden 1 gets nothing; graded:
    it gets 0.5 (its v / theta) x 0.3 (its output weight) x rho_out. The layer above is unchanged."""
    eps = 1e-6
    hid = spikelfp.LIFLayer(np.array([[2.0], [0.5]]), beta=0.9, threshold=1.0, reset=reset)
    out = spikelfp.LIFLayer(np.array([[0.8, 0.3]]), beta=0.9, threshold=1.0, reset=reset)
    net = spikelfp.Network([hid, out])
    x = np.ones((1, 1, 1), np.uint8)
    rho_out = 0.5 / (0.8 + eps)
    g_h = {"spikes": [0.8 * rho_out, 0.0], "graded": [0.8 * rho_out, 0.5 * 0.3 * rho_out]}
    fbs = {}
    for contrib in ("spikes", "graded"):
        rule = Temporal(reward=RateReward(), contrib=contrib, eps=eps, conservation=True)
        fb = fbs[contrib] = rule.feedback(net, x, [0])
        rho_h = np.array(g_h[contrib]) / (np.array([2.0, 0.5]) + eps)
        np.testing.assert_allclose(fb.weight[0][:, 0], np.array([2.0, 0.5]) * rho_h, rtol=1e-12)
        np.testing.assert_allclose(fb.received[:2], np.abs(g_h[contrib]), rtol=1e-12)
        np.testing.assert_allclose(fb.weight[1], [[0.8 * rho_out, 0.0]], rtol=1e-12)   # silent synapse: no update
        check_conservation(fb)
    np.testing.assert_array_equal(fbs["spikes"].passed[2:], fbs["graded"].passed[2:])


def test_graded_credit_reaches_silent_neurons_only():
    """On a random net, graded credit (both rules) changes the reward of silent hidden neurons and
    nothing of the output layer's own feedback."""
    rng = np.random.default_rng(5)
    net = random_net(rng, [20, 30, 12, 4], gain=1.0)
    x, y = random_input(rng, 6, 17, 20, density=0.3), rng.integers(0, 4, size=6)
    sp = Temporal(contrib="spikes", conservation=True).feedback(net, x, y)
    gr = Temporal(contrib="graded", conservation=True).feedback(net, x, y)
    np.testing.assert_array_equal(sp.weight[-1], gr.weight[-1])
    n0 = net.layers[0].n_out
    silent = sp.counts[:, :n0].sum(0) == 0         # over the whole batch
    assert silent.any() and (gr.received[:n0][silent] > 0).any() and np.all(sp.received[:n0][silent] == 0)
    assert not np.allclose(sp.weight[0], gr.weight[0])
    with pytest.raises(ValueError, match="unknown temporal-rule contribution 'soft'"):
        Temporal(contrib="soft")
    # the spike-count rule: the same with counts (graded count = sum over t of the credit factor)
    sp = SpikeCount(contrib="spikes", conservation=True).feedback(net, x, y)
    gr = SpikeCount(contrib="graded", conservation=True).feedback(net, x, y)
    np.testing.assert_array_equal(sp.weight[-1], gr.weight[-1])
    assert (gr.received[:n0][silent] > 0).any() and np.all(sp.received[:n0][silent] == 0)
    assert not np.allclose(sp.weight[0], gr.weight[0])
    with pytest.raises(ValueError, match="unknown spike-count contribution 'soft'"):
        SpikeCount(contrib="soft")


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("reward", ["rate", "softmax", "ce-count"])
@pytest.mark.parametrize("n_layers", [2, 3])
@pytest.mark.parametrize("secant", ["bounded", "signed"])
@pytest.mark.parametrize("contrib", ["graded", "spikes"])
def test_spike_count_rule_matches_numpy_reference(seed, reset, bias, reward, n_layers, secant, contrib):
    net, x, y = _case(seed, reset, bias, n_layers)
    fb = SpikeCount(reward=REWARDS[reward], secant=secant, contrib=contrib, conservation=True).feedback(net, x, y)
    kind, tau, _ = REF_KIND[reward]
    FW, Fb, recv, passed, sums, _ = ref.spike_count_feedback(net, x, y, kind=kind, tau=tau, secant=secant,
                                                             contrib=contrib)
    for l in range(len(net)):
        assert np.abs(FW[l]).sum() > 0, "vacuous: no feedback reached this layer"
        np.testing.assert_allclose(fb.weight[l], FW[l], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(fb.bias[l], Fb[l], rtol=1e-9, atol=1e-12)
        # LRP conservation of Rule A: what a layer hands down (+ bias share) is exactly sum z*rho
        np.testing.assert_allclose(sums[l][0], sums[l][1], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(fb.received, recv, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fb.passed, passed, rtol=1e-9, atol=1e-12)
    check_conservation(fb)


def test_weight_scaling_off_drops_the_abs_w_factor():
    net, x, y = _case(3, "zero", True, 2)
    for rule in (Temporal(), SpikeCount()):
        on = rule.feedback(net, x, y)
        off = dataclasses.replace(rule, weight_scaling=False).feedback(net, x, y)
        for l, layer in enumerate(net.layers):
            np.testing.assert_allclose(on.weight[l], np.abs(layer.weight) * off.weight[l], rtol=1e-12)
            np.testing.assert_allclose(on.bias[l], np.abs(layer.bias) * off.bias[l], rtol=1e-12)


def test_zero_weights_get_zero_feedback():
    net, x, y = _case(4, "zero", False, 2)
    net.layers[0].weight[:, ::3] = 0.0
    fb = Temporal().feedback(net, x, y)
    assert np.all(fb.weight[0][:, ::3] == 0.0)


def test_feedback_is_bit_reproducible():
    net, x, y = _case(5, "zero", True, 3)
    a = Temporal().feedback(net, x, y)
    b = Temporal().feedback(net, x, y)
    np.testing.assert_array_equal(a.weight_flat, b.weight_flat)
    np.testing.assert_array_equal(a.bias_flat, b.bias_flat)


@pytest.mark.parametrize("rule", [Temporal(), SpikeCount(), Temporal(form="paper", contrib="spikes"),
                                  Temporal(reward=RateReward())])
def test_conservation_sums_only_when_asked_and_the_feedback_bits_the_same(rule):
    """The conservation sums are opt-in (they cost the temporal backward 5-10 %): without them the
    feedback is the same to the bit, and check_conservation says how to get them."""
    net, x, y = _case(7, "subtract", True, 3)
    off = rule.feedback(net, x, y)
    on = dataclasses.replace(rule, conservation=True).feedback(net, x, y)
    np.testing.assert_array_equal(off.weight_flat, on.weight_flat)
    np.testing.assert_array_equal(off.bias_flat, on.bias_flat)
    np.testing.assert_array_equal(off.counts, on.counts)
    assert off.received is None and off.passed is None
    assert on.received.shape == on.passed.shape == (sum(la.n_out for la in net.layers),) and on.received.sum() > 0
    check_conservation(on)
    with pytest.raises(ValueError, match="conservation=True"):
        check_conservation(off)


def test_conservation_check_catches_a_violation():
    net, x, y = _case(6, "zero", False, 2)
    fb = Temporal(conservation=True).feedback(net, x, y)
    check_conservation(fb)
    bad = dataclasses.replace(fb, passed=fb.received * 1.01 + 1.0)
    with pytest.raises(ConservationError, match="more reward than they receive"):
        check_conservation(bad)


def test_rewards_by_hand():
    T, y = 10, 1
    N = np.array([3.0, 5.0, 0.0])
    out = np.empty(3)
    count_reward(N, y, T, RateReward.kind, 1.0, out)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    np.testing.assert_allclose(out, [-(3 / 10) * (1 - sig(7 - 5)), 1 - sig(5 - 5), 0.0])
    count_reward(N, y, T, SoftmaxReward.kind, 2.0, out)
    p = np.exp(N / 2) / np.exp(N / 2).sum()
    np.testing.assert_allclose(out, np.eye(3)[y] - p)
    # temporal: wrong class k=0 spikes at t=2 and t=4 only; true class gets reward at every step
    optr = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2])
    oidx = np.array([0, 0], dtype=np.int32)
    g = np.empty((T, 3))
    temporal_reward(np.array([2.0, 0.0, 0.0]), optr, oidx, T, y, RateReward.kind, 1.0, g)
    want = np.zeros((T, 3))
    want[:, 1] = 1 - sig(0 - 5)
    want[[2, 4], 0] = -(1 - sig((10 - 2) - 5))
    np.testing.assert_allclose(g, want)


def test_rule_registry_and_bad_labels():
    assert isinstance(get_rule("temporal"), Temporal)
    assert isinstance(get_rule("spike-count"), SpikeCount)
    with pytest.raises(ValueError, match="unknown rule 'backprop'"):
        get_rule("backprop")
    net, x, _ = _case(0, "zero", False, 2)
    with pytest.raises(ValueError, match="labels must lie"):
        Temporal().feedback(net, x, np.full(6, 9))
    with pytest.raises(ValueError, match="labels must have shape"):
        SpikeCount().feedback(net, x, np.zeros(5, int))


def test_public_api_names():
    for name in ("Network", "LIFLayer", "simulate", "Temporal", "SpikeCount", "Trainer", "check_conservation"):
        assert hasattr(spikelfp, name)


def test_pinned_chunks_give_the_same_bits_on_any_thread_count():
    import numba

    net, x, y = _case(7, "zero", True, 3)
    rule = Temporal(n_chunks=3)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = rule.feedback(net, x, y)
        numba.set_num_threads(before)
        b = rule.feedback(net, x, y)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(a.weight_flat, b.weight_flat)
    np.testing.assert_array_equal(a.bias_flat, b.bias_flat)


@pytest.mark.parametrize("rule", [Temporal(), SpikeCount(), Temporal(contrib="spikes", form="paper")])
def test_feedback_does_not_depend_on_the_scratch_buffers_history(rule):
    """The kernels' work buffers are kept across calls (spikelfp.scratch): a call after a bigger
    batch (larger, dirty buffers) gives the same bits as one on freshly made buffers."""
    from spikelfp.scratch import release

    rng = np.random.default_rng(8)
    net = random_net(rng, [25, 18, 12, 4], reset="zero", bias=True, rec=[True, False, False])
    small = random_input(rng, 3, 11, 25, density=0.3)
    large = random_input(rng, 40, 37, 25, density=0.6)
    y_small, y_large = rng.integers(0, 4, 3), rng.integers(0, 4, 40)
    release()
    fresh = rule.feedback(net, small, y_small)
    rule.feedback(net, large, y_large)
    again = rule.feedback(net, small, y_small)
    for a, b in zip(fresh.weight + fresh.bias, again.weight + again.bias):
        np.testing.assert_array_equal(a, b)
    assert np.abs(fresh.weight_flat).sum() > 0


def test_a_too_small_workspace_is_refused_not_overrun():
    from spikelfp.kernels.feedback import temporal_feedback

    rng = np.random.default_rng(9)
    p = spikelfp.packed.pack(random_net(rng, [6, 5, 3]))
    eb = spikelfp.EventBatch.from_dense(random_input(rng, 2, 4, 6, density=0.5))
    z = np.zeros
    with pytest.raises(ValueError, match="workspace too small"):
        temporal_feedback(eb.indptr, eb.indices, np.array([0, 1]), 2, 4, p.sizes, p.w_off, p.WT, p.n_off, p.bias,
                          p.has_bias, p.beta, p.theta, p.reset, p.rec, p.conv, p.ct_ptr, p.ct_out, p.ct_k, 1e-6,
                          2, 1.0, False, 0, 1, np.array([0, 2]), z((2, 8), np.int32), z((1, p.WT.size)),
                          z((1, 8)), z((1, 8)), z((1, 8)), True, z((1, 4)), z((1, 4), p.WT.dtype), z((1, 4), np.int32),
                          *spikelfp.feedback._fixed_args(None))


def test_spike_count_rule_pins_blas_to_one_thread_whoever_calls(monkeypatch):
    """The spike-count kernel's np.dot runs on scipy's BLAS: the rule pins it to one thread itself
    (a BLAS pool fighting numba's threads made it ~9x slower, and a thread count may change the
    bits), so a caller with a multi-threaded BLAS gets the trainer's bits and speed."""
    from threadpoolctl import threadpool_info, threadpool_limits

    import spikelfp.feedback as F
    from spikelfp.blas import single_threaded_blas

    rng = np.random.default_rng(12)
    net = random_net(rng, [300, 200, 10])
    x, y = random_input(rng, 64, 20, 300, density=0.2), rng.integers(0, 10, 64)
    with single_threaded_blas():
        want = SpikeCount().feedback(net, x, y)
    real, inside = F.spike_count_feedback, []

    def spy(*a):
        inside.extend(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
        return real(*a)

    monkeypatch.setattr(F, "spike_count_feedback", spy)
    with threadpool_limits(2, "blas"):
        got = SpikeCount().feedback(net, x, y)
    assert inside and set(inside) == {1}
    np.testing.assert_array_equal(got.weight_flat, want.weight_flat)


@pytest.mark.parametrize("contrib", ["graded", "spikes"])
def test_float32_temporal_feedback_tracks_float64(contrib):
    """A float32 net runs the temporal rule with c[t], I[t], the graded pass's W^T rho and F_W in
    float32 (docs/performance.md): on a case where both dtypes spike alike, its feedback is the
    float64 reference's to float32 accuracy."""
    net, x, y = _case(5, "zero", True, 3)
    net32 = net.astype(np.float32)
    net64 = net32.astype(np.float64)              # the same weights, exactly
    r32 = spikelfp.simulate(net32, x, raster=True)
    r64 = spikelfp.simulate(net64, x, raster=True)
    for a, b in zip(r32.rasters, r64.rasters):
        np.testing.assert_array_equal(a, b)       # precondition: no spike flips between the dtypes
    fb32 = Temporal(contrib=contrib).feedback(net32, x, y)
    assert fb32.weight_flat.dtype == np.float32 and fb32.bias_flat.dtype == np.float64
    FW, Fb, _, _, _ = ref.temporal_feedback(net64, x, y, kind="ce", tau=1.0, out_scale=True, contrib=contrib)
    for l in range(len(net)):
        scale = np.abs(FW[l]).max()
        assert scale > 0
        np.testing.assert_allclose(fb32.weight[l], FW[l], rtol=1e-4, atol=1e-5 * scale)
        np.testing.assert_allclose(fb32.bias[l], Fb[l], rtol=1e-4, atol=1e-5 * np.abs(Fb[l]).max())


@pytest.mark.parametrize("rule", ["temporal", "spike-count"])
@pytest.mark.parametrize("eps", [0.0, -1e-6, float("nan"), float("inf")])
def test_a_rule_refuses_an_eps_that_cannot_keep_its_divisions_off_zero(rule, eps):
    from spikelfp import SpikeCount, Temporal

    with pytest.raises(ValueError, match="eps must be > 0"):
        (Temporal if rule == "temporal" else SpikeCount)(eps=eps)
