"""Training for Loihi: LFP through the fixed-point forward (``TrainConfig.quantize = "loihi"``).

The feedback is checked against the numpy reference of the fixed-point forward plus the rule; a
trained model's accuracy in fixed point is its training-time accuracy exactly; pruned weights stay
exactly zero; re-quantization keeps every parameter in Loihi's ranges."""

import numpy as np
import numpy_reference as ref
import pytest
from conftest import random_input, random_net

from spikelfp import Temporal
from spikelfp.feedback import CEReward, RateReward
from spikelfp.loihi import (
    BIAS_MANT_MAX,
    VTH_MAX,
    W_MAX_INT,
    evaluate_fixed,
    pack_fixed,
    quantize,
    quantized_training_pair,
    simulate_fixed,
)
from spikelfp.packed import pack
from spikelfp.train import TrainConfig, Trainer

REWARDS = {"rate": (RateReward(), ("rate", 2.0, False)), "ce": (CEReward(tau=2.0), ("ce", 2.0, True))}


def _case(seed, bias, rec, n_layers=2):
    rng = np.random.default_rng(seed)
    sizes = [int(rng.integers(10, 24))] + [int(rng.integers(5, 14)) for _ in range(n_layers - 1)] + [4]
    net = random_net(rng, sizes, bias=bias, gain=3.0, rec=[rec] + [False] * (n_layers - 1))
    x = random_input(rng, 5, 15, sizes[0], density=0.35)
    return net, x, rng.integers(0, 4, size=5)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("rec", [False, True])
@pytest.mark.parametrize("reward", sorted(REWARDS))
@pytest.mark.parametrize("contrib", ["graded", "spikes"])
def test_quantized_feedback_matches_the_reference_on_the_integer_run(seed, bias, rec, reward, contrib):
    net, x, y = _case(seed, bias, rec, n_layers=3 if seed == 2 else 2)
    rule = Temporal(reward=REWARDS[reward][0], contrib=contrib, conservation=True)
    p = pack(net)
    pq, fx = quantized_training_pair(p, net)
    fb = rule.reduce(pq, rule.parts(pq, spikelfp_batch(x), y, rule.bounds(len(y)), fixed=fx))
    q = quantize(net)
    want = simulate_fixed(q, x)                                   # the counts are the integer run's
    np.testing.assert_array_equal(fb.output_counts, want.counts[-1])
    kind, tau, out_scale = REWARDS[reward][1]
    FW, Fb, recv, passed, FV = ref.temporal_feedback(ref.dequantized_net(q), x, y, kind=kind, tau=tau,
                                                     out_scale=out_scale, contrib=contrib, fixed=q)
    _assert_reference(fb, FW, Fb, recv, passed, FV)


def _assert_reference(fb, FW, Fb, recv, passed, FV):
    """The kernel's feedback equals the numpy reference's, layer by layer (and never vacuously)."""
    for l in range(len(FW)):
        assert np.abs(FW[l]).sum() > 0, "vacuous: no feedback reached this layer"
        np.testing.assert_allclose(fb.weight[l], FW[l], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(fb.bias[l], Fb[l], rtol=1e-9, atol=1e-12)
        if FV[l] is not None:
            np.testing.assert_allclose(fb.recurrent[l], FV[l], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fb.received, recv, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fb.passed, passed, rtol=1e-9, atol=1e-12)


def spikelfp_batch(x):
    from spikelfp import EventBatch

    return EventBatch.from_dense(x)


def test_the_integer_run_differs_from_the_float_run():
    """Precondition of the tests above: the fixed-point forward is not the float one (else the
    check would not tell them apart)."""
    import spikelfp

    diffs = 0
    for seed in range(3):
        net, x, _ = _case(seed, True, False)
        a = spikelfp.simulate(net, x, raster=True).rasters
        b = simulate_fixed(quantize(net), x, raster=True).rasters
        diffs += sum(int((u != v).sum()) for u, v in zip(a, b))
    assert diffs > 0


def test_requantization_stays_in_loihi_ranges_and_keeps_zeros():
    net, _, _ = _case(4, True, True)
    net.layers[0].weight[:, ::3] = 0.0                    # "pruned"
    net.layers[0].weight[0, 1] = 1e-9                     # rounds to zero in 8 bits
    q = quantize(net)
    for la in q.layers:
        assert np.all(np.abs(la.weight) <= 256) and np.all(la.weight % 2 == 0)
        assert -8 <= la.weight_exp <= 7 and 1 <= la.vth <= VTH_MAX and 0 <= la.dv < 4096
        assert np.all(np.abs(la.bias_mant) <= BIAS_MANT_MAX + 1) and 0 <= la.bias_exp <= 7
    assert np.all(q.layers[0].weight[:, ::3] == 0) and q.layers[0].weight[0, 1] == 0
    la = q.layers[0]                                      # W and V share one scale: their largest is 254
    assert max(int(np.abs(la.weight).max()), int(np.abs(la.recurrent).max())) == W_MAX_INT
    fx = pack_fixed(q)
    pq, _ = quantized_training_pair(pack(net), net)
    assert np.array_equal(pq.WT == 0, fx.WT == 0)                 # the float view has the same zeros


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 7, 8])
def test_fewer_weight_bits_give_the_integers_lava_keeps(bits):
    """At n weight bits (Lava's ``num_weight_bits``, mixed sign) the integers are multiples of
    2^(9-n) in [-256, 256 - 2^(9-n)], the layer's clip level (max |W|, |V| at 8 bits) on the top
    level: exactly what Lava's Dense keeps when it clips and truncates to n bits, so Lava changes
    none of them. The training step's conversion gives the same integers, a held quantization
    keeps its bits."""
    from lava.utils.weightutils import SignMode, clip_weights, truncate_weights

    from spikelfp.loihi import fixed_of, weight_clip, weight_step, weight_top
    from spikelfp.packed import unpack

    net, _, _ = _case(6, True, True)
    net.layers[0].weight[:, ::4] = 0.0                     # pruned: stays zero at any precision
    q = quantize(net, bits=bits)
    step, top = weight_step(bits), weight_top(bits)
    assert (step, top) == (2 ** (9 - bits), 256 - 2 ** (9 - bits))
    for la in q.layers:
        assert la.weight_bits == bits
        for w in (la.weight, la.recurrent):
            if w is None:
                continue
            assert np.all(w % step == 0) and w.min() >= -256 and w.max() <= top
            lava = truncate_weights(clip_weights(w, SignMode.MIXED, num_bits=8), SignMode.MIXED, bits)
            np.testing.assert_array_equal(lava, w)          # Lava keeps every value
        big = max(int(np.abs(a).max()) for a in (la.weight, la.recurrent) if a is not None)
        assert big == top if bits == 8 else big in (top, 256)          # below 8 bits the clip saturates some
    assert np.all(q.layers[0].weight[:, ::4] == 0)
    # the rounding: step * round(W s / step), s = top / clip
    W = net.layers[1].weight.astype(np.float64)
    s = top / weight_clip([net.layers[1].weight], bits)
    np.testing.assert_array_equal(q.layers[1].weight, np.clip(step * np.round(W * s / step), -256, top))
    if bits == 8:                                           # the default is 8 bits, as before
        for a, b in zip(quantize(net).layers, q.layers):
            assert np.array_equal(a.weight, b.weight) and a.scale == b.scale
    p = pack(net)
    _assert_same_fixed(fixed_of(p, net, bits=bits), pack_fixed(quantize(unpack(p, dt=net.dt, like=net), bits=bits),
                                                               structure=p))
    assert network_bits(quantize(net, hold=q)) == bits      # a held quantization keeps its bits
    other = 4 if bits != 4 else 5
    with pytest.raises(ValueError, match=f"{bits}-bit weights, not {other}"):
        quantize(net, hold=q, bits=other)


def _clip_reference(w, bits):
    """weight_clip, slowly: every candidate k/64 of max |w| scored on the magnitudes in a shuffled
    order, the least error kept (ties: the larger clip); 8 bits: max |w|."""
    from spikelfp.loihi import weight_step, weight_top

    m = np.abs(np.asarray(w, np.float64)).ravel()
    m = m[m > 0][np.random.default_rng(0).permutation(int(np.count_nonzero(m)))]
    if bits == 8:
        return m.max()
    step, top = weight_step(bits), weight_top(bits)
    errs = {}
    for k in range(64, 0, -1):
        c = m.max() * k / 64
        q = np.array([min(step * round(v * top / c / step), top) * c / top for v in m])
        errs[c] = float(np.sum((q - m) ** 2))
    return min(errs, key=lambda c: (errs[c], -c))


@pytest.mark.parametrize("bits", [3, 4, 8])
def test_weight_clip_is_the_least_error_clip_level(bits):
    """The clip level against a slow reference (another order of the magnitudes), below the max
    at few bits for LFP-like heavy-tailed weights, and no worse in squared error than max |W|."""
    from spikelfp.loihi import weight_clip, weight_step, weight_top

    rng = np.random.default_rng(bits)
    w = (rng.laplace(0, 0.02, size=(40, 30)) * (rng.random((40, 30)) < 0.8)).astype(np.float32)
    w[0, 0] = 0.5                                        # one outlier, as LFP's largest weights are
    c = weight_clip([w], bits)
    assert np.isclose(c, _clip_reference(w, bits), rtol=0, atol=0)
    if bits == 8:
        assert c == np.abs(w).max()
        return
    assert c < 0.5 * np.abs(w).max()
    step, top = weight_step(bits), weight_top(bits)

    def err(clip):
        s = top / clip
        return float(np.sum((np.clip(step * np.round(w * s / step), -256, top) / s - w) ** 2))

    assert err(c) < err(float(np.abs(w).max()))
    assert weight_clip([w[::-1].T.copy()], bits) == c            # layout-free: the values decide


def network_bits(q):
    from spikelfp.loihi import network_weight_bits

    return network_weight_bits(q)


@pytest.mark.parametrize("bits", [0, 1, 9, 2.5])
def test_weight_bits_out_of_range_are_refused(bits):
    net, _, _ = _case(6, False, False)
    with pytest.raises(ValueError, match="weight bits must be one of 2, 3"):
        quantize(net, bits=bits)
    with pytest.raises(ValueError, match="weight_bits must be one of 2, 3"):
        TrainConfig(quantize="loihi", weight_bits=bits)


def test_held_scales_are_kept_and_saturate_grown_weights():
    net, _, _ = _case(5, True, True)
    q0 = quantize(net)
    same = quantize(net, hold=q0)                                # holding its own scales changes nothing
    for a, b in zip(q0.layers, same.layers):
        assert np.array_equal(a.weight, b.weight) and np.array_equal(a.recurrent if a.recurrent is not None else 0,
                                                                     b.recurrent if b.recurrent is not None else 0)
        assert (a.weight_exp, a.vth, a.scale, a.bias_exp) == (b.weight_exp, b.vth, b.scale, b.bias_exp)
        assert np.array_equal(a.bias_mant, b.bias_mant)
    grown = net.copy()
    grown.layers[1].weight[0, 0] = 3.0 * float(np.abs(net.layers[1].weight).max())   # past the held range
    grown.layers[1].weight[1, 0] = -3.0 * float(np.abs(net.layers[1].weight).max())
    h = quantize(grown, hold=q0)
    for a, b in zip(q0.layers, h.layers):
        assert (a.weight_exp, a.vth, a.scale) == (b.weight_exp, b.vth, b.scale)
        assert np.all(np.abs(b.weight) <= 256) and np.all(b.weight % 2 == 0)
    la, s = h.layers[1], q0.layers[1].scale / (2.0 ** q0.layers[1].weight_exp * 64)
    assert la.weight[0, 0] == W_MAX_INT and la.weight[1, 0] == -256             # saturated, not rescaled
    expect = np.clip(2 * np.round(grown.layers[1].weight * s / 2), -256, W_MAX_INT)
    np.testing.assert_array_equal(la.weight, expect)
    assert not np.array_equal(quantize(grown).layers[1].weight, la.weight)    # recomputing would rescale
    with pytest.raises(ValueError, match="number of layers"):
        quantize(net, hold=quantize(random_net(np.random.default_rng(0), [4, 3, 2, 2])))


def _assert_same_fixed(a, b):
    for name in ("WT", "wexp", "du", "dv", "vth", "bias", "scale"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fixed_of_is_quantize_then_pack(dtype):
    """A training step's conversion works on the packed arrays (``fixed_of``); it must give the
    integers of the one definition, ``pack_fixed(quantize(unpack(p)))``: dense with biases,
    recurrent, a conv layer with a bias and a pooling layer; recomputed and held scales, a held
    scale the weights have outgrown (saturation), pruned zeros, a bias that needs an exponent."""
    import spikelfp
    from spikelfp.loihi import fixed_of
    from spikelfp.packed import unpack

    rng = np.random.default_rng(11)
    dense = random_net(rng, [7, 6, 5, 3], bias=True, rec=[False, True, False], dtype=dtype)
    conv = spikelfp.Network.from_arch("c4k3s1-p2-d8", (6, 6, 2), 3, seed=2, gain=3.0, dtype=dtype)
    conv.layers[0].bias = rng.uniform(-0.3, 0.3, size=4).astype(dtype)
    dense.layers[0].bias[0] = 0.9                                      # the largest bias exponent
    dense.layers[1].weight[:, ::2] = 0.0                               # pruned
    for net in (dense, conv):
        p = pack(net)
        hold = quantize(unpack(p, dt=net.dt, like=net))
        for h in (None, hold):
            _assert_same_fixed(fixed_of(p, net, h), pack_fixed(quantize(unpack(p, dt=net.dt, like=net), hold=h),
                                                               structure=p))
        grown = p.WT.copy()                                            # a step later, past the held range
        grown *= dtype(1.7)
        g = p._replace(WT=grown, bias=p.bias * dtype(1.3))
        _assert_same_fixed(fixed_of(g, net, hold), pack_fixed(quantize(unpack(g, dt=net.dt, like=net), hold=hold),
                                                              structure=g))
        assert int(np.abs(fixed_of(g, net, hold).WT).max()) in (W_MAX_INT, 256)   # saturated


def test_refresh_hold_rederives_only_the_layers_that_outgrew_their_scale():
    """A held layer whose largest weight has grown past the range its scale covers is re-derived
    (as quantize() derives it from the current weights); the others keep their held format, and a
    hold nothing has outgrown comes back as it is."""
    from spikelfp.loihi import refresh_hold
    from spikelfp.packed import unpack

    net, _, _ = _case(2, True, True, n_layers=3)                   # layer 0 recurrent: W and V, one scale
    p = pack(net)
    hold = quantize(net)
    assert refresh_hold(p, net, hold) is hold                      # its own weights: nothing outgrown
    shrunk = p._replace(WT=p.WT * 0.5)
    assert refresh_hold(shrunk, net, hold) is hold                 # smaller weights fit the held range
    grown = p.WT.copy()
    lo, hi = int(p.w_off[0]), int(p.w_off[1])
    grown[hi - 1] = -1.5 * float(np.abs(p.WT[lo:hi]).max())       # a recurrent weight past the range
    g = p._replace(WT=grown)
    h = refresh_hold(g, net, hold)
    fresh = quantize(unpack(g, dt=net.dt, like=net))
    assert h.layers[1] is hold.layers[1] and h.layers[2] is hold.layers[2]
    assert h.layers[0].scale == fresh.layers[0].scale != hold.layers[0].scale
    assert h.layers[0].weight_exp == fresh.layers[0].weight_exp
    q = quantize(unpack(g, dt=net.dt, like=net), hold=h)           # no weight saturates under it
    np.testing.assert_array_equal(q.layers[0].recurrent, fresh.layers[0].recurrent)
    np.testing.assert_array_equal(q.layers[0].weight, fresh.layers[0].weight)
    assert int(np.abs(q.layers[0].recurrent).max()) == W_MAX_INT


def test_refresh_hold_below_8_bits_holds_the_clip_for_the_epoch():
    """Below 8 bits the clip saturates a layer's largest weights by design: a held format is kept
    however the weights grow, until the next epoch derives it again."""
    from spikelfp.loihi import refresh_hold

    net, _, _ = _case(2, True, True, n_layers=3)
    p = pack(net)
    hold = quantize(net, bits=4)
    assert refresh_hold(p._replace(WT=p.WT * 3.0), net, hold) is hold
    h8 = quantize(net)
    assert refresh_hold(p._replace(WT=p.WT * 3.0), net, h8) is not h8              # 8 bits: re-derived



@pytest.mark.parametrize("bits", [8, 4, 2])
def test_hold_of_derives_what_quantize_derives(bits):
    """The trainer's hold (``hold_of``, from the packed weights, no integer weights) has every
    layer's exponent and scale exactly as ``quantize`` derives them (dense with a bias, recurrent W
    and V under one clip, conv and pooling layers); held, either gives the same integers."""
    import spikelfp
    from spikelfp.loihi import fixed_of, hold_of
    from spikelfp.packed import unpack

    rng = np.random.default_rng(5)
    dense = random_net(rng, [9, 7, 6, 3], bias=True, rec=[False, True, False])
    conv = spikelfp.Network.from_arch("c4k3s1-p2-d8", (6, 6, 2), 3, seed=4, gain=3.0)
    for net in (dense, conv):
        p = pack(net)
        q, h = quantize(net, bits=bits), hold_of(p, net, bits)
        assert [(la.weight_exp, la.scale, la.weight_bits) for la in q.layers] == list(h.layers)
        assert [la.weight_scale for la in q.layers] == [la.weight_scale for la in h.layers]
        grown = p._replace(WT=p.WT * 1.5)
        _assert_same_fixed(fixed_of(grown, net, h), fixed_of(grown, net, q))
        np.testing.assert_array_equal(quantize(unpack(grown, like=net), hold=h).layers[0].weight,
                                      quantize(unpack(grown, like=net), hold=q).layers[0].weight)

def test_held_scale_training_holds_the_epoch_start_scales(small_digits, monkeypatch):
    """--quantize-scale epoch (the default): the steps of an epoch run the scales quantize() gave
    the weights that epoch started from, except that a layer whose weights outgrow its held range is
    re-derived at that step (so no weight ever saturates); "step" recomputes them every step."""
    import spikelfp.train as train_mod

    train, test = small_digits
    seen = []
    real = train_mod.quantized_training_pair

    def spy(p, like, hold=None, bits=None):
        out = real(p, like, hold, bits)
        wmax = [float(np.abs(p.WT[p.w_off[l]: p.w_off[l + 1]]).max()) for l in range(len(p.w_off) - 1)]
        seen.append((None if hold is None else tuple(la.scale for la in hold.layers), tuple(out[1].scale),
                     tuple(out[1].wexp), wmax))
        return out

    monkeypatch.setattr(train_mod, "quantized_training_pair", spy)
    cfg = TrainConfig(hidden=[24], epochs=3, seed=0, quantize="loihi", quantize_scale="epoch", batch_size=64,
                      lr=0.01)
    Trainer(cfg, progress=False).fit(train, test)
    steps = -(-len(train) // 64)
    held = seen[-3 * steps:]                                  # (the warm-up's call comes first)
    changed, kept = 0, 0
    for e in range(3):
        epoch = held[e * steps:(e + 1) * steps]
        for k, (h, used, wexp, wmax) in enumerate(epoch):
            assert h == used                                  # every step runs the held scales
            for l, (sc, ex, m) in enumerate(zip(used, wexp, wmax)):
                s = sc / (2.0 ** ex * 64)
                assert m * s <= W_MAX_INT * (1 + 1e-9)       # no weight past the held range
                if k and sc != epoch[k - 1][1][l]:           # re-derived only where the weights outgrew it
                    prev = epoch[k - 1][1][l] / (2.0 ** epoch[k - 1][2][l] * 64)
                    assert m * prev > W_MAX_INT
                    changed += 1
                elif k:
                    kept += 1
    assert changed > 0 and kept > 0           # (this run's weights do outgrow, and stay inside: both tested)
    assert held[0][0] != held[steps][0]                                  # the next epoch takes new ones
    seen.clear()
    cfg = TrainConfig(hidden=[24], epochs=1, seed=0, quantize="loihi", quantize_scale="step", batch_size=64)
    Trainer(cfg, progress=False).fit(train, test)
    per_step = [used for h, used, *_ in seen[-steps:]]
    assert all(h is None for h, *_ in seen) and len(set(per_step)) > 1     # recomputed as the weights move


def test_quantized_training_accuracy_is_the_fixed_point_accuracy(small_digits, tmp_path):
    from spikelfp.io import load_checkpoint

    train, test = small_digits
    cfg = TrainConfig(hidden=[24], epochs=2, seed=0, quantize="loihi")
    m = Trainer(cfg, progress=False).fit(train, test, str(tmp_path / "q"))
    ck = load_checkpoint(tmp_path / "q" / "model.h5")
    assert ck.config["quantize"] == "loihi"
    fx = pack_fixed(quantize(ck.network))
    ev = evaluate_fixed(fx, test)
    assert ev["accuracy"] == m["test_accuracy"] == ck.history[-1]["test_accuracy"]    # exactly
    assert m["test_accuracy"] > 0.25                                  # learns: chance is 0.1
    # a float run of the same recipe is a different run (the forward really is the integer one)
    f = Trainer(TrainConfig(hidden=[24], epochs=2, seed=0), progress=False).fit(train, test)
    assert f["history"][0]["running_train_accuracy"] != m["history"][0]["running_train_accuracy"] or \
        f["test_accuracy"] != m["test_accuracy"]


def test_training_at_fewer_weight_bits_is_scored_at_those_bits(small_digits, tmp_path):
    """``weight_bits`` = 3: the forward of every step and the evaluation run the 3-bit integers; the
    checkpoint records the bits, and its fixed-point accuracy at 3 bits is the trained one."""
    from spikelfp.io import load_checkpoint
    from spikelfp.train import evaluate

    train, test = small_digits
    cfg = TrainConfig(hidden=[24], epochs=2, seed=0, quantize="loihi", weight_bits=3)
    m = Trainer(cfg, progress=False).fit(train, test, str(tmp_path / "q3"))
    ck = load_checkpoint(tmp_path / "q3" / "model.h5")
    assert ck.config["weight_bits"] == 3
    assert evaluate(ck.network, test, quantize="loihi", weight_bits=3)["accuracy"] == m["test_accuracy"]
    assert all(np.all(la.weight % 64 == 0) for la in quantize(ck.network, bits=3).layers)
    assert m["test_accuracy"] > 0.25                                  # learns: chance is 0.1
    m8 = Trainer(TrainConfig(hidden=[24], epochs=2, seed=0, quantize="loihi"), progress=False).fit(train, test)
    assert m8["history"][0]["running_train_accuracy"] != m["history"][0]["running_train_accuracy"] or \
        m8["test_accuracy"] != m["test_accuracy"]                     # another integer run


def test_quantized_fine_tuning_keeps_pruned_weights_exactly_zero(small_digits):
    from spikelfp.prune import prune

    train, test = small_digits
    base = Trainer(TrainConfig(hidden=[24], epochs=1, seed=0), progress=False)
    base.fit(train, test)
    sparse, _ = prune(base.network, 0.8)
    zeros = [la.weight == 0 for la in sparse.layers]
    t = Trainer(TrainConfig(hidden=[24], epochs=1, seed=0, quantize="loihi", frozen_zeros=True), progress=False)
    t.fit(train, test, start=sparse)
    for z, la in zip(zeros, t.network.layers):
        assert np.all(la.weight[z] == 0)
    q = quantize(t.network)
    assert all(np.all(ql.weight[z] == 0) for z, ql in zip(zeros, q.layers))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("rec", [False, True])
@pytest.mark.parametrize("contrib", ["graded", "spikes"])
@pytest.mark.parametrize("secant", ["bounded", "signed"])
def test_quantized_spike_count_feedback_matches_the_reference(seed, bias, rec, contrib, secant):
    from spikelfp import SpikeCount
    from spikelfp.feedback import SoftmaxReward

    net, x, y = _case(seed, bias, rec, n_layers=3 if seed == 2 else 2)
    rule = SpikeCount(reward=SoftmaxReward(tau=2.0), contrib=contrib, secant=secant, conservation=True)
    p = pack(net)
    pq, fx = quantized_training_pair(p, net)
    fb = rule.reduce(pq, rule.parts(pq, spikelfp_batch(x), y, rule.bounds(len(y)), fixed=fx))
    q = quantize(net)
    np.testing.assert_array_equal(fb.output_counts, simulate_fixed(q, x).counts[-1])
    FW, Fb, recv, passed, _, FV = ref.spike_count_feedback(ref.dequantized_net(q), x, y, kind="softmax", tau=2.0,
                                                           secant=secant, contrib=contrib, fixed=q)
    _assert_reference(fb, FW, Fb, recv, passed, FV)


def test_a_checkpoint_from_before_the_scale_choice_resumes_per_step():
    """Quantized runs written before --quantize-scale existed recomputed the scale every step."""
    old = TrainConfig(quantize="loihi").to_dict()
    del old["quantize_scale"]
    assert TrainConfig.from_dict(old).quantize_scale == "step"
    assert TrainConfig.from_dict(TrainConfig(quantize="loihi").to_dict()).quantize_scale == "epoch"


def test_quantize_settings_are_checked():
    with pytest.raises(ValueError, match="reset=zero"):
        TrainConfig(quantize="loihi", reset="subtract")
    with pytest.raises(ValueError, match="unknown quantize"):
        TrainConfig(quantize="truenorth")
    with pytest.raises(ValueError, match="unknown quantize_scale"):
        TrainConfig(quantize="loihi", quantize_scale="batch")
    TrainConfig(quantize="loihi", rule="spike-count")              # both rules


def test_cli_quantized_run_eval_export_and_resume(tmp_path, data_root, digits, capsys):
    import json

    from spikelfp.cli import main

    out = tmp_path / "q"
    assert main(["train", "--quantize", "loihi", "--quantize-scale", "step", "--hidden", "24", "--epochs", "2",
                 "--out", str(out), "--no-progress", "--data-root", data_root]) == 0
    m = json.loads((out / "metrics.json").read_text())
    import tomllib

    toml = tomllib.loads((out / "config.toml").read_text())
    assert toml["quantize"] == "loihi" and toml["quantize-scale"] == "step"     # --config reruns it so
    assert main(["eval", str(out / "model.h5"), "--json", str(tmp_path / "e.json"), "--predictions",
                 str(tmp_path / "p.csv"), "--data-root", data_root]) == 0
    ev = json.loads((tmp_path / "e.json").read_text())
    assert ev["accuracy"] == m["test_accuracy"] and ev["quantize"] == "loihi" and "float_accuracy" in ev
    import csv

    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    assert np.mean([r["label"] == r["prediction"] for r in rows]) == m["test_accuracy"]
    assert main(["export", str(out / "model.h5"), "--to", "nir", "--json", str(tmp_path / "x.json"),
                 "--data-root", data_root]) == 0
    x = json.loads((tmp_path / "x.json").read_text())
    assert x["trained_quantized"] == {"quantize": "loihi", "weight_bits": 8, "test_accuracy": m["test_accuracy"]}
    # pruning a quantized model scores it in fixed point, and fine-tunes it quantized with the mask kept
    assert main(["prune", str(out / "model.h5"), "--amount", "0.5", "--finetune", "1", "--out", str(tmp_path / "p.h5"),
                 "--json", str(tmp_path / "pr.json"), "--no-progress", "--data-root", data_root]) == 0
    pr = json.loads((tmp_path / "pr.json").read_text())
    assert pr["test_accuracy_before"] == m["test_accuracy"]
    from spikelfp.io import load_checkpoint
    from spikelfp.train import evaluate

    pk = load_checkpoint(tmp_path / "p.h5")
    assert pk.config["quantize"] == "loihi" and pk.config["frozen_zeros"]
    assert pr["test_accuracy"] == pk.history[-1]["test_accuracy"] == evaluate(pk.network, digits[1],
                                                                               quantize="loihi")["accuracy"]
    capsys.readouterr()
    assert main(["train", "--out", str(out), "--resume", "--epochs", "3", "--no-progress",
                 "--data-root", data_root]) == 0                       # the stored --quantize carries on
    assert main(["train", "--out", str(out), "--resume", "--epochs", "4", "--quantize", "loihi", "--no-progress",
                 "--data-root", data_root]) == 0


def test_resume_refuses_a_changed_quantize(tmp_path, data_root, digits, capsys):
    from spikelfp.cli import main

    out = tmp_path / "f"
    assert main(["train", "--hidden", "16", "--epochs", "1", "--out", str(out), "--no-progress",
                 "--data-root", data_root]) == 0
    capsys.readouterr()
    assert main(["train", "--out", str(out), "--resume", "--epochs", "2", "--quantize", "loihi", "--no-progress",
                 "--data-root", data_root]) == 2
    assert "--quantize (run: None, asked: 'loihi')" in capsys.readouterr().err
    assert main(["train", "--out", str(out), "--resume", "--epochs", "2", "--quantize-scale", "step",
                 "--no-progress", "--data-root", data_root]) == 2
    assert "--quantize-scale (run: 'epoch', asked: 'step')" in capsys.readouterr().err
    q = tmp_path / "q4"
    assert main(["train", "--quantize", "loihi", "--weight-bits", "4", "--hidden", "16", "--epochs", "1",
                 "--out", str(q), "--no-progress", "--data-root", data_root]) == 0
    capsys.readouterr()
    assert main(["train", "--out", str(q), "--resume", "--epochs", "2", "--weight-bits", "3", "--no-progress",
                 "--data-root", data_root]) == 2
    assert "--weight-bits (run: 4, asked: 3)" in capsys.readouterr().err
    assert main(["train", "--weight-bits", "4", "--hidden", "16", "--epochs", "1", "--out", str(tmp_path / "x"),
                 "--no-progress", "--data-root", data_root]) == 2             # a float run has no weight bits
    assert "weight_bits sets the precision of quantize=loihi" in capsys.readouterr().err


@pytest.mark.lava
@pytest.mark.parametrize("bits", ["8", "3"])
def test_a_quantized_trained_model_runs_bit_exactly_in_lava(tmp_path, data_root, digits, bits):
    """Lava fixed_pt runs the trained integers: spikes identical to the training-time forward on
    the checked samples, and the full test set's fixed-point accuracy is the trained accuracy; at
    fewer weight bits too (Lava's processes get that ``num_weight_bits``)."""
    import json
    import subprocess
    import sys

    out = tmp_path / "q"
    r = subprocess.run([sys.executable, "-m", "spikelfp", "train", "--quantize", "loihi", "--hidden", "32",
                        "--weight-bits", bits,
                        "--epochs", "2", "--out", str(out), "--no-progress", "--data-root", data_root],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    r = subprocess.run([sys.executable, "-m", "spikelfp", "export", str(out / "model.h5"), "--to", "lava",
                        "--check", "24", "--json", str(tmp_path / "lava.json"), "--data-root", data_root],
                       capture_output=True, text=True, timeout=600, start_new_session=True)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((tmp_path / "lava.json").read_text())
    assert rep["fixed_vs_spikelfp_fixed_agreement"]["overall"] == 1.0            # bit-exact spikes
    assert rep["fixed_accuracy"] == rep["spikelfp_fixed_accuracy"]
    assert rep["trained_quantized"]["full_test_set_fixed_accuracy"] == m["test_accuracy"]    # 0.0 pp drop
    assert f"trained in Loihi fixed point (--quantize loihi, {bits}-bit weights)" in r.stdout
    assert {d["weight_bits"] for d in rep["layers"]["fixed"]} == {int(bits)}
    from spikelfp.backends.lava import read_parameters

    params = read_parameters(out / "model.lava.h5", "fixed")
    assert {p["dense"]["num_weight_bits"] for p in params} == {int(bits)}


def test_bench_quantize_measures_every_method_in_fixed_point(small_digits, tmp_path):
    from spikelfp.bench import LOIHI_METHOD, markdown_table, run_bench

    train, test = small_digits
    cfg = TrainConfig(hidden=[16], epochs=1, seed=0, quantize="loihi")
    r = run_bench(train, test, cfg, seeds=1, methods=["lfp-temporal", "sg-fast-sigmoid"], out=str(tmp_path / "b"))
    by = {e["name"]: e for e in r["methods"]}
    assert set(by) == {"lfp-temporal", "sg-fast-sigmoid", LOIHI_METHOD} and r["quantize"] == "loihi"
    for e in by.values():
        assert 0.0 <= e["fixed_accuracy_mean"] <= 1.0 and 0.0 <= e["fixed_accuracy_pruned_90_mean"] <= 1.0
    loihi = by[LOIHI_METHOD]
    assert loihi["test_accuracy"] == loihi["fixed_accuracy"]          # it is measured as it trained
    from spikelfp.io import load_checkpoint

    ck = load_checkpoint(tmp_path / "b" / "models" / f"{LOIHI_METHOD}-seed0.h5")
    assert ck.config["quantize"] == "loihi"
    assert evaluate_fixed(pack_fixed(quantize(ck.network)), test)["accuracy"] == loihi["test_accuracy"][0]
    md = markdown_table(r)
    assert "Loihi fixed point" in md and f"| {LOIHI_METHOD} | fixed point |" in md
    with pytest.raises(ValueError, match="with --quantize loihi"):
        run_bench(train, test, TrainConfig(hidden=[16], epochs=1), seeds=1, methods=[LOIHI_METHOD])


@pytest.mark.parametrize("arch", ["c4k3s1-d8", "c4k3s1-p2-d8"])
@pytest.mark.parametrize("rule_name", ["temporal", "spike-count"])
def test_quantized_feedback_on_conv_nets_runs_the_integer_forward(arch, rule_name):
    import spikelfp
    from spikelfp.feedback import get_rule

    rng = np.random.default_rng(3)
    net = spikelfp.Network.from_arch(arch, (6, 6, 2), 3, seed=1, gain=3.0)
    x = random_input(rng, 4, 12, 72, density=0.3)
    y = rng.integers(0, 3, size=4)
    rule = get_rule(rule_name)
    pq, fx = quantized_training_pair(pack(net), net)
    fb = rule.reduce(pq, rule.parts(pq, spikelfp_batch(x), y, rule.bounds(4), fixed=fx))
    q = quantize(net)
    assert q.layers[0].weight_exp == 0                                  # Lava's fixed Conv has no exponent
    want = simulate_fixed(q, x)
    for got, ref_counts in zip(np.split(fb.counts, np.cumsum([la.n_out for la in net.layers])[:-1], axis=1),
                               want.counts):
        np.testing.assert_array_equal(got, ref_counts)                    # every layer: the integer run
    assert np.all(np.isfinite(fb.weight_flat)) and np.abs(fb.weight[0]).sum() > 0


def test_quantized_training_of_a_conv_net(small_digits):
    train, test = small_digits
    tr = Trainer(TrainConfig(arch="c8k5s2-d32", epochs=1, seed=0, quantize="loihi"), progress=False)
    m = tr.fit(train, test)
    assert evaluate_fixed(pack_fixed(quantize(tr.network)), test)["accuracy"] == m["test_accuracy"]
