import h5py
import nir
import numpy as np
import pytest
from conftest import random_input, random_net, run_nir_model
from spikelfp.backends import netx as bnetx
from spikelfp.backends import nir as bnir

import spikelfp
from spikelfp import backends
from spikelfp.loihi import simulate_fixed


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_nir_round_trip_is_exact(tmp_path, bias, seed):
    rng = np.random.default_rng(seed)
    net = random_net(rng, [20, 12, 7, 5], bias=bias)
    net.dt = 0.01
    bnir.export(net, tmp_path / "n.nir")
    back = bnir.load(tmp_path / "n.nir")
    assert back.dt == 0.01
    for a, b in zip(net.layers, back.layers):
        np.testing.assert_array_equal(a.weight, b.weight)
        assert (a.beta, a.threshold, a.reset) == (b.beta, b.threshold, b.reset)
        assert (a.bias is None) == (b.bias is None)
        if bias:
            np.testing.assert_array_equal(a.bias, b.bias)
    x = random_input(rng, 4, 15, 20)
    for ra, rb in zip(spikelfp.simulate(net, x, raster=True).rasters, spikelfp.simulate(back, x, raster=True).rasters):
        np.testing.assert_array_equal(ra, rb)


def test_nir_parameters_are_the_models_physical_time_constants(tmp_path):
    net = random_net(np.random.default_rng(2), [6, 5, 4], beta=0.8)
    net.dt = 0.025                                        # 25 ms bins
    bnir.export(net, tmp_path / "n.nir")
    g = nir.read(str(tmp_path / "n.nir"))                 # NIR's own reader and type checks
    assert g.metadata["dt"] == 0.025
    for l in range(2):
        lif = g.nodes[f"lif{l}"]
        tau, r = float(lif.tau[0]), float(lif.r[0])
        assert tau == pytest.approx(0.025 / (1 - 0.8))    # 125 ms: beta = 1 - dt / tau
        assert r * 0.025 / tau == pytest.approx(1.0)      # the input passes with gain 1
        assert np.all(lif.v_reset == 0) and np.all(lif.v_leak == 0)
        assert np.all(lif.v_threshold == net.layers[l].threshold)
    assert isinstance(g.nodes["fc0"], nir.Linear)


def _euler_nir(graph, x, dt):
    """NIR's LIF definition, tau dv/dt = (v_leak - v) + R I with reset to v_reset after a spike
    (v > v_threshold), integrated by forward Euler with step dt: a reference for our graph."""
    order, _ = bnir._chain(graph)
    B, T, _ = x.shape
    inp = x.astype(np.float64)
    for k in range(0, len(order) - 1, 2):
        fc, lif = graph.nodes[order[k]], graph.nodes[order[k + 1]]
        W = np.asarray(fc.weight)
        b = np.asarray(fc.bias) if isinstance(fc, nir.Affine) else 0.0
        v = np.zeros((B, W.shape[0]))
        out = np.zeros((B, T, W.shape[0]), np.uint8)
        for t in range(T):
            I = inp[:, t] @ W.T + b
            v = v + dt / lif.tau * (lif.v_leak - v + lif.r * I)
            s = v > lif.v_threshold
            out[:, t] = s
            v = np.where(s, lif.v_reset, v)
        inp = out.astype(np.float64)
    return out


def test_exported_graph_runs_like_the_model_under_nirs_own_equations():
    rng = np.random.default_rng(5)
    net = random_net(rng, [16, 10, 5], bias=True, beta=0.75)
    net.dt = 0.01
    x = random_input(rng, 4, 25, 16, 0.3)
    ref = spikelfp.simulate(net, x, raster=True).rasters[-1]
    got = _euler_nir(bnir.to_nir(net), x, 0.01)
    assert ref.sum() > 0
    assert (got == ref).mean() > 0.99        # float rounding of (1 - dt/tau) may flip a rare threshold tie


def test_norse_style_physical_graph_imports_with_the_right_beta():
    W = np.random.default_rng(0).normal(size=(3, 4))
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([4])}), "fc": nir.Linear(weight=W),
                            "lif": nir.LIF(tau=np.full(3, 0.01), r=np.ones(3), v_leak=np.zeros(3),
                                           v_threshold=np.ones(3), v_reset=np.zeros(3)),
                            "output": nir.Output(output_type={"output": np.array([3])})},
                     edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])
    with pytest.raises(ValueError, match="does not state its time step"):
        bnir.from_nir(g)                                        # no dt anywhere: refused, not guessed
    net = bnir.from_nir(g, dt=1e-3)
    assert net.layers[0].beta == pytest.approx(0.9)             # tau 10 ms at a 1 ms step
    np.testing.assert_allclose(net.layers[0].weight, 0.1 * W)   # input gain r dt / tau
    assert net.dt == 1e-3
    g.metadata = {"dt": 1e-3}
    assert bnir.from_nir(g).layers[0].beta == pytest.approx(0.9)


def test_snntorch_import_of_our_nir_file_gives_identical_spikes(tmp_path):
    from snntorch.import_nir import import_from_nir

    rng = np.random.default_rng(3)
    # snntorch's importer stores weights as float32: compare on the float32-representable network
    net = random_net(rng, [24, 16, 6], bias=True).astype(np.float32).astype(np.float64)
    net.dt = 0.01
    bnir.export(net, tmp_path / "n.nir")
    model = import_from_nir(bnir.for_snntorch(nir.read(str(tmp_path / "n.nir")))).double()
    leaky = [m for m in model.modules() if type(m).__name__ == "Leaky"]
    assert [float(m.beta.flatten()[0]) for m in leaky] == pytest.approx([la.beta for la in net.layers], abs=1e-6)
    x = random_input(rng, 5, 20, 24, 0.3)
    ref = spikelfp.simulate(net, x, raster=True).rasters[-1]
    got = run_nir_model(model, x)
    assert ref.sum() > 0
    np.testing.assert_array_equal(got, ref)


def test_nir_refuses_subtract_reset_and_bad_files(tmp_path):
    with pytest.raises(ValueError, match="reset='subtract'"):
        bnir.to_nir(random_net(np.random.default_rng(0), [3, 2], reset="subtract"))
    (tmp_path / "x.nir").write_text("nope")
    with pytest.raises(ValueError, match="not a readable NIR file"):
        bnir.load(tmp_path / "x.nir")


def test_netx_file_layout_and_semantics(tmp_path):
    rng = np.random.default_rng(4)
    net = random_net(rng, [20, 10, 4], bias=True, beta=0.9)
    bnetx.export(net, tmp_path / "m.netx.h5")
    with h5py.File(tmp_path / "m.netx.h5", "r") as f:
        assert f["layer/0/type"][0] == b"input" and list(f["layer/0/shape"][()]) == [20]
        g = f["layer/1"]
        assert g["type"][0] == b"dense" and g["weight"].shape == (10, 20)
        assert g["neuron/type"][0] == b"CUBA" and int(g["neuron/iDecay"][()]) == 4096
        assert int(g["neuron/vDecay"][()]) == round(0.1 * 4096)
        assert np.abs(g["weight"][()]).max() <= 128
    q = bnetx.read(tmp_path / "m.netx.h5")
    assert q.sizes == (20, 10, 4)
    x = random_input(rng, 10, 30, 20)
    a = spikelfp.simulate(net, x, raster=True)
    b = simulate_fixed(q, x, raster=True)
    assert np.mean(a.rasters[0] == b.rasters[0]) > 0.95


def test_netx_loads_in_lava_dl_when_installed(tmp_path):
    netx = pytest.importorskip("lava.lib.dl.netx", reason="lava-dl is not installed (optional)")
    net = random_net(np.random.default_rng(5), [12, 6, 3], bias=True)
    bnetx.export(net, tmp_path / "m.netx.h5")
    proc = netx.hdf5.Network(net_config=str(tmp_path / "m.netx.h5"))
    assert len(proc) == 2


def test_backend_registry():
    assert backends.get("nir") is bnir
    with pytest.raises(ValueError, match="unknown backend 'loihi3'"):
        backends.get("loihi3")


def test_nir_load_of_a_zero_time_constant_is_one_clear_error(tmp_path):
    import nir

    net = random_net(np.random.default_rng(9), [4, 3, 2])
    net.dt = 0.01
    g = bnir.to_nir(net)
    for node in g.nodes.values():
        if isinstance(node, nir.LIF):
            node.tau[:] = 0.0
    nir.write(str(tmp_path / "z.nir"), g)
    with pytest.raises(ValueError, match="cannot read"):
        bnir.load(tmp_path / "z.nir")
