"""Conv layers (docs/layers.md): simulator, both LFP rules, packing, against numpy from the definition."""

import numpy as np
import numpy_reference as ref
import pytest
from conftest import check_same_without_sums, check_snntorch_mirror, random_input, run_nir_model

import spikelfp
import spikelfp.io
from spikelfp import ConvLayer, LIFLayer, Network, SpikeCount, Temporal, check_conservation, simulate
from spikelfp.feedback import CEReward, RateReward
from spikelfp.packed import pack, unpack

GEOMS = [  # (H, W, C_in), C_out, K, stride, padding
    ((7, 6, 2), 3, 3, 1, 0),
    ((8, 8, 1), 4, 3, 2, 1),
    ((6, 7, 3), 2, 2, 2, 0),
    ((5, 5, 2), 3, 5, 1, 2),
    ((6, 6, 2), 16, 3, 1, 1),     # C_out of one and two full float32 vectors
    ((5, 4, 1), 32, 2, 2, 0),
]


def random_convnet(rng, geom, reset="zero", bias=False, n_out=4, second_conv=False, dtype=np.float64):
    shape, co, k, s, p = geom
    fan = shape[2] * k * k
    w = rng.uniform(-2.5, 3.2, size=(co, shape[2], k, k)) / np.sqrt(fan)
    b = rng.uniform(-0.2, 0.3, size=co) if bias else None
    c1 = ConvLayer(w.astype(dtype), shape, s, p, None if b is None else b.astype(dtype),
                   beta=rng.uniform(0.5, 1.0), reset=reset)
    layers = [c1]
    if second_conv:
        w2 = rng.uniform(-2.5, 3.2, size=(2, co, 2, 2)) / np.sqrt(co * 4)
        layers.append(ConvLayer(w2.astype(dtype), c1.out_shape, 1, 0, None, beta=rng.uniform(0.5, 1.0),
                                reset=reset))
    n = layers[-1].n_out
    wd = rng.uniform(-2.5, 3.2, size=(n_out, n)) / np.sqrt(n)
    layers.append(LIFLayer(wd.astype(dtype), beta=rng.uniform(0.5, 1.0), reset=reset))
    return Network(layers)


def _case(seed, geom, reset, bias, second_conv=False):
    rng = np.random.default_rng(seed)
    net = random_convnet(rng, geom, reset, bias, second_conv=second_conv)
    x = random_input(rng, 5, 13, net.n_in, density=0.35)
    y = rng.integers(0, 4, size=5)
    return net, x, y


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("geom", GEOMS)
@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv_forward_matches_the_definition_bit_for_bit(seed, geom, reset, bias, dtype):
    net, x, _ = _case(seed, geom, reset, bias, second_conv=seed == 1)
    net = net.astype(dtype)
    got = simulate(net, x, raster=True, membrane=True)
    want = ref.forward(ref.dense_equivalent(net), x, dtype)
    for l, (r, m) in enumerate(want):
        np.testing.assert_array_equal(got.rasters[l], r)
        np.testing.assert_array_equal(got.membranes[l], m)
    assert got.rasters[0].sum() > 0, "vacuous: the conv layer is silent"
    # SynOps: every input spike reaches |table| output pixels x C_out
    M, _ = ref.conv_dense_matrix(net.layers[0])
    fan = (M != 0).reshape(-1, net.layers[0].out_shape[2], M.shape[1]).any(1).sum(0) * net.layers[0].out_shape[2]
    ops0 = (x.reshape(x.shape[0], -1, M.shape[1]) * fan).sum((1, 2))
    assert np.all(got.synops >= ops0)


def test_split_index_is_divmod_for_every_channel_count():
    """The conv kernels split an input index into (pixel, channel) with a shift where C_in is a
    power of two and a division otherwise: both must be divmod, up to large indices."""
    from spikelfp.kernels.lif import channel_shift, split_index

    i = np.concatenate([np.arange(5000), np.array([2**31 - 1, 2**31, 2**40 + 12345, 2**50 + 7])])
    for cin in [1, 2, 3, 4, 7, 12, 16, 32, 48, 64, 100, 128, 1000]:
        sh = channel_shift(cin)
        assert (sh >= 0) == (cin & (cin - 1) == 0)
        got = np.array([split_index(np.int64(v), np.int64(cin), sh) for v in i])
        np.testing.assert_array_equal(got, np.stack(np.divmod(i, cin), axis=1))


def test_conv_by_hand():
    # 1 x 3 x 1 input, one 1x... kernel K=2 on a 2x3 image: out 1x2; kernel [[1, .5], [.25, 2]] (beta 1)
    k = np.array([[[[1.0, 0.5], [0.25, 2.0]]]])
    net = Network([ConvLayer(k, (2, 3, 1), beta=1.0, threshold=10.0)])
    x = np.zeros((1, 1, 6), np.uint8)
    x[0, 0, [0, 4]] = 1          # pixels (0,0) and (1,1)
    m = simulate(net, x, membrane=True).membranes[0][0, 0]
    # out (0,0): k[0,0]*x(0,0) + k[1,1]*x(1,1) = 1 + 2 = 3;  out (0,1): k[1,0]*x(1,1) = 0.25
    np.testing.assert_array_equal(m, [3.0, 0.25])


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("geom", GEOMS[:3])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("reward, form", [("ce", "carry"), ("rate", "paper")])
@pytest.mark.parametrize("contrib", ["graded", "spikes"])
def test_conv_temporal_rule_matches_numpy_reference(seed, geom, reset, bias, reward, form, contrib):
    net, x, y = _case(seed, geom, reset, bias, second_conv=seed == 1)
    rw = CEReward(tau=2.0) if reward == "ce" else RateReward()
    rule = Temporal(reward=rw, form=form, contrib=contrib, conservation=True)
    fb = rule.feedback(net, x, y)
    check_same_without_sums(rule, net, x, y, fb)
    FW, Fb, recv, passed, _ = ref.temporal_feedback(ref.dense_equivalent(net), x, y, kind=reward, tau=2.0,
                                                    out_scale=reward == "ce", form=form, contrib=contrib)
    FW, Fb = ref.fold_conv_feedback(net, FW, Fb)
    for l in range(len(net)):
        assert np.abs(FW[l]).sum() > 0, "vacuous: no feedback reached this layer"
        np.testing.assert_allclose(fb.weight[l], FW[l], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(fb.bias[l], Fb[l], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fb.received, recv, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fb.passed, passed, rtol=1e-9, atol=1e-12)
    check_conservation(fb)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("geom", GEOMS[:3])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("secant", ["bounded", "signed"])
@pytest.mark.parametrize("contrib", ["graded", "spikes"])
def test_conv_spike_count_rule_matches_numpy_reference(seed, geom, reset, bias, secant, contrib):
    net, x, y = _case(seed, geom, reset, bias, second_conv=seed == 1)
    fb = SpikeCount(reward=CEReward(tau=1.5, membrane=False), secant=secant, contrib=contrib,
                    conservation=True).feedback(net, x, y)
    FW, Fb, recv, passed, sums, _ = ref.spike_count_feedback(ref.dense_equivalent(net), x, y, kind="ce", tau=1.5,
                                                             secant=secant, contrib=contrib)
    FW, Fb = ref.fold_conv_feedback(net, FW, Fb)
    for l in range(len(net)):
        np.testing.assert_allclose(fb.weight[l], FW[l], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(fb.bias[l], Fb[l], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(sums[l][0], sums[l][1], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(fb.received, recv, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fb.passed, passed, rtol=1e-9, atol=1e-12)
    check_conservation(fb)


def test_conv_pack_round_trip_and_tied_bias():
    net, x, y = _case(3, GEOMS[1], "zero", True)
    p = pack(net)
    back = unpack(p, like=net)
    np.testing.assert_array_equal(back.layers[0].weight, net.layers[0].weight)
    np.testing.assert_array_equal(back.layers[0].bias, net.layers[0].bias)
    assert back.layers[0].in_shape == net.layers[0].in_shape and back.arch == net.arch == "c4k3s2p1"
    fb = Temporal().feedback(p, x, y)
    seg = fb.bias_flat[p.n_off[0]: p.n_off[1]].reshape(-1, 4)
    assert np.all(seg == seg[0])                    # every position carries the channel's feedback


@pytest.mark.parametrize("bad, msg", [
    (dict(weight=np.zeros((2, 3, 3, 2)), in_shape=(5, 5, 3)), "K, K"),
    (dict(weight=np.zeros((2, 3, 3, 3)), in_shape=(5, 5, 2)), "C_in=3"),
    (dict(weight=np.zeros((2, 1, 3, 3)), in_shape=(2, 5, 1)), "does not fit"),
    (dict(weight=np.zeros((2, 1, 3, 3)), in_shape=(5, 5, 1), stride=0), "stride >= 1"),
    (dict(weight=np.zeros((2, 1, 3, 3)), in_shape=(5, 5, 1), bias=np.zeros(3)), "one per output channel"),
])
def test_bad_conv_layers_are_refused(bad, msg):
    with pytest.raises(ValueError, match=msg):
        ConvLayer(**bad)


def test_conv_checkpoint_round_trip(tmp_path):
    import h5py

    from spikelfp.io import Checkpoint, ModelFileError, load_checkpoint, load_network, save_checkpoint

    net = Network.from_arch("c3k3s2p1-d5", (7, 6, 2), 4, seed=1, bias=True)
    save_checkpoint(tmp_path / "c.h5", Checkpoint(network=net))
    back = load_network(tmp_path / "c.h5")
    assert back.arch == "c3k3s2p1-d5" and back.layers[0].in_shape == (7, 6, 2)
    for a, b in zip(net.layers, back.layers):
        np.testing.assert_array_equal(a.weight, b.weight)
        np.testing.assert_array_equal(a.bias, b.bias)
    with h5py.File(tmp_path / "c.h5", "r+") as f:
        del f["network/layer_0"].attrs["in_shape"]
    with pytest.raises(ModelFileError, match="lacks its in_shape"):
        load_checkpoint(tmp_path / "c.h5")


def test_from_arch_draws_dense_nets_as_before_and_conv_nets_reproducibly():
    a = Network.from_arch("d8", (3, 4, 2), 5, seed=2)
    b = Network.random([24, 8, 5], seed=2)
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_array_equal(la.weight, lb.weight)
    c1 = Network.from_arch("c4k3s2-d6", (9, 9, 2), 3, seed=5)
    c2 = Network.from_arch("c4k3s2-d6", (9, 9, 2), 3, seed=5)
    assert c1.sizes == (162, 64, 6, 3)
    for la, lb in zip(c1.layers, c2.layers):
        np.testing.assert_array_equal(la.weight, lb.weight)
    assert np.abs(c1.layers[0].weight).max() <= 1 / np.sqrt(2 * 9)
    with pytest.raises(ValueError, match=r"\(H, W, C\)"):
        Network.from_arch("c4k3-d6", 162, 3)


@pytest.mark.parametrize("seed", [0, 1])
def test_snntorch_conv_mirror_gives_identical_spikes(seed):
    pytest.importorskip("torch")
    from spikelfp.backends import snntorch as bsn

    net, x, _ = _case(seed, GEOMS[seed + 1], "zero", True, second_conv=True)
    _, model = check_snntorch_mirror(net, x, rtol=1e-11)
    back = bsn.from_snntorch(model)
    assert back.arch == net.arch
    np.testing.assert_array_equal(back.layers[0].weight, net.layers[0].weight)


def test_train_a_conv_net_end_to_end(small_digits, tmp_path):
    from spikelfp.train import TrainConfig, Trainer

    train, test = small_digits
    assert train.input_shape == (17, 17, 2)
    for rule in ("temporal", "spike-count"):
        cfg = TrainConfig(arch="c8k5s2-d32", epochs=3, seed=1, batch_size=16, rule=rule, bias=True)
        m = Trainer(cfg).fit(train, test, str(tmp_path / rule))
        assert m["history"][-1]["test_accuracy"] > 0.25, rule      # above chance (0.1) on 240 samples
        net = spikelfp.io.load_network(tmp_path / rule / "model.h5")
        assert net.arch == "c8k5s2-d32"
        b = pack(net).bias
        assert np.all(b[: net.layers[0].n_out].reshape(-1, 8) == net.layers[0].bias)   # the bias stayed tied
        assert not np.allclose(net.layers[0].bias, Trainer(cfg).init_network(
            train.input_shape, 10, np.random.default_rng(1), 1e-3).layers[0].bias)       # and was trained


def test_conv_nir_round_trip_is_exact(tmp_path):
    nir = pytest.importorskip("nir")
    from spikelfp.backends import nir as bnir

    net, x, _ = _case(2, GEOMS[1], "zero", True, second_conv=True)
    net.dt = 0.01
    bnir.export(net, tmp_path / "c.nir")
    g = nir.read(str(tmp_path / "c.nir"))
    assert isinstance(g.nodes["fc0"], nir.Conv2d) and isinstance(g.nodes["flatten"], nir.Flatten)
    assert list(g.nodes["input"].input_type["input"]) == [1, 8, 8]            # channels-first
    back = bnir.load(tmp_path / "c.nir")
    assert back.arch == net.arch
    for a, b in zip(net.layers, back.layers):
        np.testing.assert_array_equal(a.weight, b.weight)
        assert a.beta == b.beta
    for ra, rb in zip(simulate(net, x, raster=True).rasters, simulate(back, x, raster=True).rasters):
        np.testing.assert_array_equal(ra, rb)


def test_snntorch_nir_import_of_a_conv_net_gives_identical_spikes(tmp_path):
    """Our Conv2d -> LIF -> Flatten -> Affine graph through snntorch's importer, on (C, H, W) input."""
    nir = pytest.importorskip("nir")
    pytest.importorskip("torch")
    from snntorch.import_nir import import_from_nir
    from spikelfp.backends import nir as bnir

    rng = np.random.default_rng(4)
    net = random_convnet(rng, GEOMS[0], bias=True).astype(np.float32).astype(np.float64)
    net.dt = 0.01
    bnir.export(net, tmp_path / "c.nir")
    model = import_from_nir(bnir.for_snntorch(nir.read(str(tmp_path / "c.nir")))).double()
    x = random_input(rng, 5, 20, net.n_in, 0.3)
    H, W, C = net.layers[0].in_shape
    ref = simulate(net, x, raster=True).rasters[-1]
    got = run_nir_model(model, x, (H, W, C))
    assert ref.sum() > 0
    np.testing.assert_array_equal(got, ref)


def test_pooling_layer_forward_feedback_and_spec():
    from spikelfp.arch import ArchError, layer_shapes, parse_arch
    from spikelfp.network import POOL_GAIN, pool_layer

    assert [la.token for la in parse_arch("c4k3-p2-d8")] == ["c4k3", "p2", "d8"]
    with pytest.raises(ArchError, match="pooling follows a convolution"):
        parse_arch("p2-d8")
    assert layer_shapes("c4k3-p2-d8", (9, 9, 2), 3)[1][:2] == (7 * 7 * 4, 3 * 3 * 4)
    net = Network.from_arch("c4k3-p2-d8", (9, 9, 2), 3, seed=0, gain=3.0)
    pool = net.layers[1]
    assert isinstance(pool, ConvLayer) and not pool.trainable and net.arch == "c4k3-p2-d8"
    assert pool.out_shape == (3, 3, 4) and pool.weight_arrays() == []
    # by hand: one input spike in a 2x2 block makes the pooled neuron spike (OR pooling)
    p1 = Network([pool_layer((2, 2, 1), 2, beta=0.5)])
    x = np.array([[[0, 0, 0, 1], [0, 0, 0, 0], [1, 1, 0, 1]]], np.uint8)
    r = simulate(p1, x, raster=True, membrane=True)
    assert r.rasters[0][0, :, 0].tolist() == [1, 0, 1]
    np.testing.assert_allclose(r.membranes[0][0, :, 0], [POOL_GAIN, 0.0, 3 * POOL_GAIN])
    # matches the definition, both rules: no feedback to the fixed synapses, reward flows below
    rng = np.random.default_rng(1)
    x = random_input(rng, 4, 12, net.n_in, 0.3)
    y = rng.integers(0, 3, size=4)
    got = simulate(net, x, raster=True, membrane=True)
    for l, (ra, m) in enumerate(ref.forward(ref.dense_equivalent(net), x)):
        np.testing.assert_array_equal(got.rasters[l], ra)
        np.testing.assert_array_equal(got.membranes[l], m)
    assert got.rasters[1].sum() > 0
    fb = Temporal(conservation=True).feedback(net, x, y)
    FW, Fb, recv, passed, _ = ref.temporal_feedback(ref.dense_equivalent(net), x, y, kind="ce", tau=1.0,
                                                    out_scale=True)
    FW, _ = ref.fold_conv_feedback(net, FW, Fb)
    assert np.all(fb.weight[1] == 0) and np.abs(FW[1]).sum() > 0     # the reference does train it: we do not
    for l in (0, 2):
        assert np.abs(FW[l]).sum() > 0
        np.testing.assert_allclose(fb.weight[l], FW[l], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fb.received, recv, rtol=1e-9, atol=1e-12)
    sc = SpikeCount().feedback(net, x, y)
    assert np.all(sc.weight[1] == 0) and np.abs(sc.weight[0]).sum() > 0


def test_pooling_round_trips_through_checkpoint_nir_and_snntorch(tmp_path):
    pytest.importorskip("nir")
    torch = pytest.importorskip("torch")
    from spikelfp.backends import nir as bnir
    from spikelfp.backends import snntorch as bsn

    from spikelfp.io import Checkpoint, load_network, save_checkpoint

    net = Network.from_arch("c4k3-p2-d8", (9, 9, 2), 3, seed=0, gain=3.0)
    net.dt = 0.01
    save_checkpoint(tmp_path / "m.h5", Checkpoint(network=net))
    assert load_network(tmp_path / "m.h5").arch == "c4k3-p2-d8"
    bnir.export(net, tmp_path / "m.nir")
    assert bnir.load(tmp_path / "m.nir").arch == "c4k3-p2-d8"
    model = bsn.to_snntorch(net)
    assert not model.fcs[1].weight.requires_grad
    assert bsn.from_snntorch(model).arch == "c4k3-p2-d8"
    x = random_input(np.random.default_rng(2), 3, 10, net.n_in, 0.3)
    with torch.no_grad():
        out = model(torch.from_numpy(x.transpose(1, 0, 2).astype(np.float64)))
    np.testing.assert_array_equal(out.numpy().transpose(1, 0, 2), simulate(net, x, raster=True).rasters[-1])


def test_netx_export_refuses_conv_layers(tmp_path):
    from spikelfp.backends import netx

    from spikelfp.loihi import UnsupportedNetworkError

    net = Network.from_arch("c2k3-d4", (5, 5, 1), 2, seed=0)
    with pytest.raises(UnsupportedNetworkError, match="layer 0 is a conv/pooling layer.*--to lava"):
        netx.export(net, tmp_path / "n.net")
    assert not (tmp_path / "n.net").exists()


@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv_pool_net_forward_bit_exact_and_both_rules(reset, bias, dtype):
    rng = np.random.default_rng(7)
    net = Network.from_arch("c3k3-p2-c2k2-d5", (10, 10, 2), 3, seed=rng, gain=3.0, reset=reset, bias=bias,
                            dtype=dtype)
    x = random_input(rng, 3, 15, net.n_in, 0.3)
    got = simulate(net, x, raster=True, membrane=True)
    for l, (r, m) in enumerate(ref.forward(ref.dense_equivalent(net), x, dtype)):
        np.testing.assert_array_equal(got.rasters[l], r)
        np.testing.assert_array_equal(got.membranes[l], m)
    assert all(r.sum() > 0 for r in got.rasters[:-1])
    y = rng.integers(0, 3, size=3)
    n64 = net.astype(np.float64)
    fb = Temporal(reward=RateReward(), conservation=True).feedback(n64, x, y)
    FW, Fb, recv, passed, _ = ref.temporal_feedback(ref.dense_equivalent(n64), x, y, kind="rate")
    FW, Fb = ref.fold_conv_feedback(n64, FW, Fb)
    for l in (0, 2, 3):
        np.testing.assert_allclose(fb.weight[l], FW[l], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(fb.bias[l], Fb[l], rtol=1e-9, atol=1e-12)
    assert np.all(fb.weight[1] == 0)
    np.testing.assert_allclose(fb.passed, passed, rtol=1e-9, atol=1e-12)
    check_conservation(fb)
    check_same_without_sums(Temporal(reward=RateReward(), conservation=True), n64, x, y, fb)
    sc = SpikeCount(conservation=True).feedback(n64, x, y)
    FW, Fb, recv, passed, _, _ = ref.spike_count_feedback(ref.dense_equivalent(n64), x, y, kind="ce", tau=1.0,
                                                          secant="bounded", contrib="graded")
    FW, Fb = ref.fold_conv_feedback(n64, FW, Fb)
    for l in (0, 2, 3):
        assert np.abs(FW[l]).sum() > 0
        np.testing.assert_allclose(sc.weight[l], FW[l], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(sc.bias[l], Fb[l], rtol=1e-9, atol=1e-12)
    assert np.all(sc.weight[1] == 0)
    np.testing.assert_allclose(sc.passed, passed, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pooling_layers_one_weight_per_tap_path_gives_the_general_paths_bits(dtype):
    """A pooling layer (packed.is_diagonal) adds one weight per channel and tap instead of the kernel's
    C_out-wide rows of zeros, in the forward, both rules and the fixed-point forward: the same bits
    as the general conv path (forced here by clearing the flag), SynOps counting that one synapse."""
    from spikelfp.loihi import pack_fixed, quantize, simulate_fixed
    from spikelfp.packed import CONV_COLS, is_diagonal

    rng = np.random.default_rng(11)
    net = Network.from_arch("c4k3-p2-c4k3-p2-d5", (14, 14, 2), 3, seed=rng, gain=3.0, bias=True, dtype=dtype)
    p = pack(net)
    assert CONV_COLS == 11 and p.conv[:, 10].tolist() == [0, 1, 0, 1, 0, 0]
    assert [is_diagonal(la) for la in net.layers[:4]] == [False, True, False, True]
    general = p._replace(conv=p.conv * np.array([1] * 10 + [0]))
    x = random_input(rng, 4, 20, net.n_in, 0.3)
    y = rng.integers(0, 3, size=4)
    fast, slow = simulate(p, x, raster=True, membrane=True), simulate(general, x, raster=True, membrane=True)
    assert all(r.sum() > 0 for r in fast.rasters[:-1])
    for a, b in zip(fast.rasters + fast.membranes, slow.rasters + slow.membranes):
        np.testing.assert_array_equal(a, b)
    # SynOps: a pooling layer's input spike counts its taps, not taps x channels
    taps = [np.diff(p.ct_ptr[p.conv[l, 3]: p.conv[l, 3] + p.conv[l, 4] * p.conv[l, 5] + 1]) for l in (1, 3)]

    def fewer(rasters):      # per sample: the pooling layers' input spikes x their taps x (C_out - 1)
        return sum(rasters[l - 1].reshape(4, 20, -1, int(p.conv[l, 1])).sum(axis=(1, 3)) @ t * (p.conv[l, 2] - 1)
                   for l, t in zip((1, 3), taps))

    np.testing.assert_array_equal(slow.synops - fast.synops, fewer(fast.rasters))
    for rule in (Temporal(), Temporal(conservation=True), Temporal(form="paper", contrib="spikes"),
                 SpikeCount(), SpikeCount(contrib="spikes")):
        a, b = rule.feedback(p, x, y), rule.feedback(general, x, y)
        assert np.abs(a.weight_flat).sum() > 0
        np.testing.assert_array_equal(a.weight_flat, b.weight_flat)
        np.testing.assert_array_equal(a.bias_flat, b.bias_flat)
    q = quantize(net)
    fx = pack_fixed(q)
    assert fx.p.conv[:, 10].tolist() == [0, 1, 0, 1, 0, 0]
    fa = simulate_fixed(fx, x, raster=True, membrane=True)
    fb = simulate_fixed(fx._replace(p=fx.p._replace(conv=fx.p.conv * np.array([1] * 10 + [0]))), x, raster=True,
                        membrane=True)
    assert fa.rasters[1].sum() > 0
    for a, b in zip(fa.rasters + fa.membranes, fb.rasters + fb.membranes):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fb.synops - fa.synops, fewer(fa.rasters))
