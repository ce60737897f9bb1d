"""Recurrent LIF layers (I[t] = W x[t] + V s[t-1] + b): simulator, both LFP rules, packing, spec."""

import numpy as np
import numpy_reference as ref
import pytest
from conftest import check_same_without_sums, check_snntorch_mirror, random_input, random_net, run_nir_model

import spikelfp
import spikelfp.io
from spikelfp import LIFLayer, Network, SpikeCount, Temporal, check_conservation, simulate
from spikelfp.arch import ArchError, format_arch, parse_arch
from spikelfp.feedback import CEReward, RateReward
from spikelfp.packed import pack, unpack


def random_rnet(rng, sizes, rec, reset="zero", bias=False, gain=2.5, dtype=np.float64):
    return random_net(rng, sizes, reset=reset, bias=bias, gain=gain, dtype=dtype, rec=rec)


RECS = [(True,), (True, False), (False, True), (True, True, True)]


def _case(seed, rec, reset, bias):
    rng = np.random.default_rng(seed)
    sizes = [int(rng.integers(8, 30))] + [int(rng.integers(4, 16)) for _ in range(len(rec) - 1)] + [4]
    net = random_rnet(rng, sizes, rec, reset=reset, bias=bias)
    x = random_input(rng, 6, 19, sizes[0], density=0.3)
    y = rng.integers(0, 4, size=6)
    return net, x, y


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("rec", RECS)
@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_recurrent_forward_matches_numpy_reference_bit_for_bit(seed, rec, reset, bias, dtype):
    net, x, _ = _case(seed, rec, reset, bias)
    net = net.astype(dtype)
    got = simulate(net, x, raster=True, membrane=True)
    for l, (r, m) in enumerate(ref.forward(net, x, dtype)):
        np.testing.assert_array_equal(got.rasters[l], r)
        np.testing.assert_array_equal(got.membranes[l], m)
        assert got.membranes[l].dtype == dtype
    # not vacuous: the recurrent weights change the spikes
    ff = Network([LIFLayer(la.weight, la.bias, la.beta, la.threshold, la.reset) for la in net.layers])
    assert any((a != b).any() for a, b in zip(got.rasters, simulate(ff, x, raster=True).rasters))


def test_recurrent_spike_train_by_hand():
    # one neuron, beta 0.5, W = 0.6, V = 0.7, threshold 1, reset to zero; input spikes at t = 0, 1, 3
    # t0: v = 0.6;  t1: v = 0.3 + 0.6 = 0.9;  t2: v = 0.45;  t3: v = 0.225 + 0.6 = 0.825
    # no spike so far; now give V a chance: W = 1.1 at t = 0 -> spike, t1: v = 0 + V = 0.7, t2: 0.35
    net = Network([LIFLayer([[1.1]], beta=0.5, recurrent=[[0.7]])])
    x = np.array([[[1], [0], [0], [0]]], dtype=np.uint8)
    r = simulate(net, x, raster=True, membrane=True)
    np.testing.assert_allclose(r.membranes[0][0, :, 0], [1.1, 0.7, 0.35, 0.175])
    assert r.rasters[0][0, :, 0].tolist() == [1, 0, 0, 0]
    # a self-sustaining neuron: V = 1.5 keeps it firing every step once started (zero reset)
    net = Network([LIFLayer([[1.1]], beta=0.5, recurrent=[[1.5]])])
    r = simulate(net, x, raster=True)
    assert r.rasters[0][0, :, 0].tolist() == [1, 1, 1, 1]
    # inhibition between two neurons: neuron 0 spikes at t0 and silences neuron 1's next step
    net = Network([LIFLayer([[1.2], [0.6]], beta=1.0, recurrent=[[0.0, 0.0], [-2.0, 0.0]])])
    x = np.ones((1, 3, 1), np.uint8)
    r = simulate(net, x, raster=True, membrane=True)
    # neuron 1: t0 0.6; t1 0.6 + 0.6 - 2 = -0.8; t2 -0.8 + 0.6 - 2 (neuron 0 spikes every step) = -2.2
    np.testing.assert_allclose(r.membranes[0][0, :, 1], [0.6, -0.8, -2.2])
    # SynOps: neuron 0's spikes at t0, t1 each reach both neurons through V; t2's do not count
    assert r.synops.tolist() == [3 * 2 + 2 * 2]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("rec", RECS)
@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("reward, form", [("ce", "carry"), ("rate", "carry"), ("ce", "paper")])
@pytest.mark.parametrize("contrib", ["graded", "spikes"])
def test_recurrent_temporal_rule_matches_numpy_reference(seed, rec, reset, bias, reward, form, contrib):
    net, x, y = _case(seed, rec, reset, bias)
    rw = CEReward(tau=2.0) if reward == "ce" else RateReward()
    rule = Temporal(reward=rw, form=form, contrib=contrib, conservation=True)
    fb = rule.feedback(net, x, y)
    check_same_without_sums(rule, net, x, y, fb)
    FW, Fb, recv, passed, FV = ref.temporal_feedback(net, x, y, kind=reward, tau=2.0, out_scale=reward == "ce",
                                                     form=form, contrib=contrib)
    for l, layer in enumerate(net.layers):
        np.testing.assert_allclose(fb.weight[l], FW[l], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(fb.bias[l], Fb[l], rtol=1e-9, atol=1e-12)
        if layer.is_recurrent:
            assert np.abs(FV[l]).sum() > 0, "vacuous: no recurrent feedback"
            np.testing.assert_allclose(fb.recurrent[l], FV[l], rtol=1e-9, atol=1e-12)
        else:
            assert fb.recurrent[l] is None
    np.testing.assert_allclose(fb.received, recv, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fb.passed, passed, rtol=1e-9, atol=1e-12)
    check_conservation(fb)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("rec", RECS)
@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("secant", ["bounded", "signed"])
@pytest.mark.parametrize("contrib", ["graded", "spikes"])
def test_recurrent_spike_count_rule_matches_numpy_reference(seed, rec, reset, bias, secant, contrib):
    net, x, y = _case(seed, rec, reset, bias)
    fb = SpikeCount(reward=CEReward(tau=1.5, membrane=False), secant=secant, contrib=contrib,
                    conservation=True).feedback(net, x, y)
    FW, Fb, recv, passed, sums, FV = ref.spike_count_feedback(net, x, y, kind="ce", tau=1.5, secant=secant,
                                                              contrib=contrib)
    for l, layer in enumerate(net.layers):
        np.testing.assert_allclose(fb.weight[l], FW[l], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(fb.bias[l], Fb[l], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(sums[l][0], sums[l][1], rtol=1e-9, atol=1e-9)   # LRP conservation
        if layer.is_recurrent:
            np.testing.assert_allclose(fb.recurrent[l], FV[l], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fb.received, recv, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fb.passed, passed, rtol=1e-9, atol=1e-12)
    check_conservation(fb)


def test_recurrent_feedback_sign_follows_the_reward():
    # the true class's recurrent self-excitation is rewarded where it helped it spike
    net = Network([LIFLayer(np.full((2, 3), 0.6), beta=0.8, recurrent=np.full((2, 2), 0.3))])
    x = np.ones((1, 10, 3), np.uint8)
    fb = Temporal(reward=CEReward()).feedback(net, x, np.array([0]))
    assert fb.recurrent[0][0].sum() > 0 > fb.recurrent[0][1].sum()


def test_pack_round_trip_and_layout():
    rng = np.random.default_rng(0)
    net = random_rnet(rng, [5, 4, 3], (True, False), bias=True)
    p = pack(net)
    assert p.rec.tolist() == [True, False]
    assert p.WT.size == 5 * 4 + 4 * 4 + 4 * 3
    back = unpack(p, like=net)
    for a, b in zip(net.layers, back.layers):
        np.testing.assert_array_equal(a.weight, b.weight)
        np.testing.assert_array_equal(a.bias, b.bias)
        assert (a.recurrent is None) == (b.recurrent is None)
        if a.recurrent is not None:
            np.testing.assert_array_equal(a.recurrent, b.recurrent)
    # row k of V.T (the fan-out of neuron k) is contiguous right after W.T
    np.testing.assert_array_equal(p.WT[20 + 4: 20 + 8], net.layers[0].recurrent[:, 1])


def test_network_random_keeps_feed_forward_draws_and_adds_v():
    a = Network.random([6, 5, 3], seed=3)
    b = Network.random([6, 5, 3], seed=3, recurrent=[False, False])
    np.testing.assert_array_equal(a.layers[1].weight, b.layers[1].weight)
    c = Network.random([6, 5, 3], seed=3, recurrent=[True, False])
    np.testing.assert_array_equal(a.layers[0].weight, c.layers[0].weight)
    assert c.layers[0].recurrent.shape == (5, 5) and np.abs(c.layers[0].recurrent).max() <= 1 / np.sqrt(5)
    assert c.arch == "r5"


@pytest.mark.parametrize("bad, msg", [
    (dict(recurrent=np.zeros((3, 2))), "recurrent weights must have shape"),
    (dict(recurrent=np.full((2, 2), np.nan)), "NaN"),
])
def test_bad_recurrent_weights_are_refused(bad, msg):
    with pytest.raises(ValueError, match=msg):
        LIFLayer(np.zeros((2, 4)), **bad)


def test_arch_spec_grammar():
    assert [tuple(la)[:2] for la in parse_arch("r256-d128")] == [("r", 256), ("d", 128)]
    assert parse_arch(" D64 ")[0].token == "d64"
    assert parse_arch("") == []
    assert format_arch(parse_arch("r8-d4-r2")) == "r8-d4-r2"
    assert format_arch(parse_arch("c8k5s2p1-c4k3s1p0-d10")) == "c8k5s2p1-c4k3-d10"
    for bad, msg in [("x12", "not a layer token|unknown layer type"), ("d0", "at least one neuron"),
                     ("d12--d3", "not a layer token"), ("p2", "pooling follows a convolution"),
                     ("d", "not a layer token"),
                     ("d8-c4k3", "before the dense"), ("c4k3p3", "padding < K")]:
        with pytest.raises(ArchError, match=msg):
            parse_arch(bad)
    assert spikelfp.Network.random([3, 4, 2], recurrent=[True, False]).arch == "r4"


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("bias", [False, True])
def test_snntorch_mirror_gives_identical_spikes(seed, reset, bias):
    pytest.importorskip("torch")
    from spikelfp.backends import snntorch as bsn

    net, x, _ = _case(seed, (True, False, True), reset, bias)
    _, model = check_snntorch_mirror(net, x)
    back = bsn.from_snntorch(model)
    for a, b in zip(net.layers, back.layers):
        assert (a.recurrent is None) == (b.recurrent is None)
        if a.recurrent is not None:
            np.testing.assert_array_equal(a.recurrent, b.recurrent)


def test_train_and_resume_a_recurrent_net(small_digits, tmp_path):
    from spikelfp.train import TrainConfig, Trainer

    train, test = small_digits
    cfg = TrainConfig(arch="r16", epochs=2, seed=3, batch_size=16)
    assert cfg.hidden == [16] and cfg.recurrent == [True, False]
    m = Trainer(cfg).fit(train, test, str(tmp_path / "a"))
    again = Trainer(TrainConfig(arch="r16", epochs=2, seed=3, batch_size=16)).fit(train, test, str(tmp_path / "b"))
    assert [h["test_accuracy"] for h in m["history"]] == [h["test_accuracy"] for h in again["history"]]
    net = spikelfp.io.load_network(tmp_path / "a" / "model.h5")
    twin = spikelfp.io.load_network(tmp_path / "b" / "model.h5")
    np.testing.assert_array_equal(net.layers[0].recurrent, twin.layers[0].recurrent)   # same seed, same bits
    assert net.arch == "r16" and net.layers[0].recurrent.shape == (16, 16)
    init = Trainer(cfg).init_network(train.n_in, train.n_classes, np.random.default_rng(3), 1e-3)
    assert not np.array_equal(init.layers[0].recurrent, net.layers[0].recurrent)   # V was trained
    # resume one more epoch: refuses a changed architecture, continues the same one
    cfg3 = TrainConfig(arch="r16", epochs=3, seed=3, batch_size=16)
    Trainer(cfg3).fit(train, test, str(tmp_path / "a"), resume=True)
    with pytest.raises(ValueError, match="arch='r16'"):
        Trainer(TrainConfig(arch="d16", epochs=4, seed=3, batch_size=16)).fit(train, test, str(tmp_path / "a"),
                                                                              resume=True)


def test_nir_round_trip_of_a_recurrent_net_is_exact(tmp_path):
    nir = pytest.importorskip("nir")
    from spikelfp.backends import nir as bnir

    rng = np.random.default_rng(4)
    net = random_rnet(rng, [12, 8, 6, 3], (True, False, True), bias=True)
    net.dt = 0.01
    bnir.export(net, tmp_path / "r.nir")
    g = nir.read(str(tmp_path / "r.nir"))
    assert ("lif0", "rec0") in g.edges and ("rec0", "lif0") in g.edges and "rec1" not in g.nodes
    back = bnir.load(tmp_path / "r.nir")
    for a, b in zip(net.layers, back.layers):
        np.testing.assert_array_equal(a.weight, b.weight)
        assert a.beta == b.beta
        assert (a.recurrent is None) == (b.recurrent is None)
        if a.recurrent is not None:
            np.testing.assert_array_equal(a.recurrent, b.recurrent)
    x = random_input(rng, 4, 20, 12, 0.3)
    for ra, rb in zip(simulate(net, x, raster=True).rasters, simulate(back, x, raster=True).rasters):
        np.testing.assert_array_equal(ra, rb)


def test_recurrent_nir_graph_runs_like_the_model_under_nirs_equations():
    """Forward Euler of NIR's LIF with the cycle edge carrying the previous step's spikes."""
    nir = pytest.importorskip("nir")
    from spikelfp.backends import nir as bnir

    rng = np.random.default_rng(8)
    net = random_rnet(rng, [12, 8, 3], (True, False), bias=True)
    net.dt = 0.01
    g = bnir.to_nir(net)
    x = random_input(rng, 3, 25, 12, 0.3)
    inp = x.astype(np.float64)
    for l in range(len(net)):
        fc, lif = g.nodes[f"fc{l}"], g.nodes[f"lif{l}"]
        V = np.asarray(g.nodes[f"rec{l}"].weight) if f"rec{l}" in g.nodes else None
        b = np.asarray(fc.bias) if isinstance(fc, nir.Affine) else 0.0
        v = np.zeros((3, fc.weight.shape[0]))
        s = np.zeros_like(v)
        out = np.zeros((3, 25, fc.weight.shape[0]), np.uint8)
        for t in range(25):
            I = inp[:, t] @ np.asarray(fc.weight).T + b + (s @ V.T if V is not None else 0.0)
            v = v + 0.01 / lif.tau * (lif.v_leak - v + lif.r * I)
            s = (v > lif.v_threshold).astype(np.float64)
            out[:, t] = s
            v = np.where(s > 0, lif.v_reset, v)
        inp = out.astype(np.float64)
    ref = simulate(net, x, raster=True).rasters[-1]
    assert ref.sum() > 0 and (out == ref).mean() > 0.99   # rounding of 1 - dt/tau may flip a rare tie


def test_snntorch_finds_the_recurrent_cycle_in_our_graph():
    """snntorch's importer recognises our LIF <-> Linear cycle as an RNN (an RLeaky) ..."""
    nir = pytest.importorskip("nir")
    from snntorch import import_nir
    from spikelfp.backends import nir as bnir

    net = random_rnet(np.random.default_rng(6), [16, 10, 4], (True, False), bias=True)
    net.dt = 0.01
    g = import_nir._replace_rnn_subgraph_with_nirgraph(bnir.for_snntorch(bnir.to_nir(net)))
    sub = [k for k, n in g.nodes.items() if isinstance(n, nir.NIRGraph)]
    assert len(sub) == 1 and "rec0" not in g.nodes


@pytest.mark.xfail(strict=True, raises=AttributeError,
                   reason="upstream: snntorch 1.0.0's import_from_nir of any recurrent graph crashes in nirtorch "
                          "2.6's _construct_state_recursive ('GraphModule' object has no attribute 'items')")
def test_snntorch_nir_import_of_a_recurrent_net(tmp_path):
    """snntorch turns our LIF <-> Linear cycle into an RLeaky; its spikes match ours exactly."""
    nir = pytest.importorskip("nir")
    pytest.importorskip("torch")
    from snntorch.import_nir import import_from_nir
    from spikelfp.backends import nir as bnir

    rng = np.random.default_rng(6)
    net = random_rnet(rng, [16, 10, 4], (True, False), bias=True).astype(np.float32).astype(np.float64)
    net.dt = 0.01
    bnir.export(net, tmp_path / "r.nir")
    model = import_from_nir(bnir.for_snntorch(nir.read(str(tmp_path / "r.nir")))).double()
    assert any(type(m).__name__ == "RLeaky" for m in model.modules())
    x = random_input(rng, 5, 20, 16, 0.3)
    ref = simulate(net, x, raster=True).rasters[-1]
    got = run_nir_model(model, x)
    assert ref.sum() > 0
    np.testing.assert_array_equal(got, ref)


def test_netx_export_refuses_recurrent_layers(tmp_path):
    from spikelfp.backends import netx

    from spikelfp.loihi import UnsupportedNetworkError

    net = Network.random([6, 4, 2], seed=0, recurrent=[True, False])
    with pytest.raises(UnsupportedNetworkError, match="layer 0 is recurrent.*--to lava"):
        netx.export(net, tmp_path / "n.net")
    assert not (tmp_path / "n.net").exists()
