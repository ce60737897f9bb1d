"""Pruning (spikelfp.prune, `spikelfp prune`): exact counts against a numpy reference, the relevance
criterion against the slow reference rule, SynOps of pruned nets, fine-tuning keeps the mask, the
checkpoint record, and the exported model in Lava (Sparse connections)."""

import json
import subprocess
import sys

import numpy as np
import numpy_reference as ref
import pytest
from conftest import random_input, random_net

from spikelfp import Network, simulate
from spikelfp.io import load_checkpoint
from spikelfp.network import ConvLayer
from spikelfp.packed import pack, synapse_fanout
from spikelfp.prune import keep_mask, magnitude_scores, nonzero_synapses, prunable, prune, relevance_scores
from spikelfp.simulate import nonzero_synops


def _reference_prune(arrays, scores, amount, scope):
    """Sort-based numpy reference: zero the round(amount * n) lowest scores, ties by position."""
    out = [a.copy() for a in arrays]
    if scope == "global":
        flat = np.concatenate([s.ravel() for s in scores])
        order = sorted(range(flat.size), key=lambda i: (flat[i], i))[: int(round(amount * flat.size))]
        off = np.cumsum([0] + [a.size for a in arrays])
        for i in order:
            k = int(np.searchsorted(off, i, side="right") - 1)
            out[k].flat[i - off[k]] = 0.0
    else:
        for a, s in zip(out, scores):
            flat = s.ravel()
            for i in sorted(range(flat.size), key=lambda i: (flat[i], i))[: int(round(amount * a.size))]:
                a.flat[i] = 0.0
    return out


@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("amount", [0.0, 0.33, 0.9, 1.0])
def test_prune_matches_reference_with_exact_counts_and_ties(scope, amount):
    rng = np.random.default_rng(3)
    net = random_net(rng, [12, 9, 4], bias=True, rec=[True, False])
    for _, a in prunable(net):                       # many ties: 3 magnitudes, both signs
        a[:] = rng.choice([-0.5, -0.2, 0.2, 0.5, 0.7], size=a.shape)
    pruned, rep = prune(net, amount, scope=scope)
    want = _reference_prune([a for _, a in prunable(net)], magnitude_scores(net), amount, scope)
    for (_, got), w in zip(prunable(pruned), want):
        assert np.array_equal(got, w)
    n = sum(a.size for _, a in prunable(net))
    if scope == "global":
        assert rep["synapses_after"] == n - int(round(amount * n))
    assert rep["synapses_before"] == n and rep["weights"] == n
    assert [m["nonzero_after"] for m in rep["matrices"]] == [int(np.count_nonzero(a)) for _, a in prunable(pruned)]
    for a, b in zip(net.layers, pruned.layers):       # biases kept, the source untouched
        assert np.array_equal(a.bias, b.bias)
    assert nonzero_synapses(net) == n


def test_prune_keeps_pooling_and_refuses_bad_input():
    net = Network.from_arch("c3k3-p2-d6", (8, 8, 2), 4, seed=1)
    pruned, rep = prune(net, 1.0)
    assert np.array_equal(pruned.layers[1].weight, net.layers[1].weight)      # the pooling layer's fixed synapses
    assert rep["synapses_after"] == 0 and nonzero_synapses(pruned) == 0
    for bad in (-0.1, 1.5, float("nan"), "0.5"):
        with pytest.raises(ValueError, match="fraction"):
            prune(net, bad)
    with pytest.raises(ValueError, match="criterion"):
        prune(net, 0.5, criterion="random")
    with pytest.raises(ValueError, match="scope"):
        prune(net, 0.5, scope="neuron")
    with pytest.raises(ValueError, match="relevance scores"):
        prune(net, 0.5, criterion="relevance")
    with pytest.raises(ValueError, match="do not match"):
        prune(net, 0.5, scores=magnitude_scores(net)[:1])
    bad = magnitude_scores(net)
    bad[0].flat[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        prune(net, 0.5, scores=bad)


class _Data:
    """The EventDataset interface relevance_scores uses, over dense arrays."""

    def __init__(self, x, y):
        self.x, self.labels = x, y

    def __len__(self):
        return len(self.labels)

    def batch(self, idx):
        return self.x[idx]


@pytest.mark.parametrize("rec", [None, [True, False]])
def test_relevance_is_per_sample_absolute_explain_feedback(rec):
    rng = np.random.default_rng(5)
    net = random_net(rng, [10, 7, 3], bias=True, rec=rec)
    x = random_input(rng, 9, 12, 10, 0.3)
    y = rng.integers(0, 3, size=9)
    got = relevance_scores(net, _Data(x, y), n_samples=9, batch_size=4)
    want = [np.zeros_like(a, dtype=np.float64) for _, a in prunable(net)]
    for s in range(9):
        FW, _, _, _, FV = ref.temporal_feedback(net, x[s: s + 1], y[s: s + 1], kind="explain", out_scale=True)
        mats = [m for l in range(len(net.layers)) for m in ([FW[l]] + ([FV[l]] if FV[l] is not None else []))]
        for k, m in enumerate(mats):
            want[k] += np.abs(m)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12)
        assert g.max() > 0
    # a sum over samples of the signed feedback would differ: the criterion is per sample
    FW_all = ref.temporal_feedback(net, x, y, kind="explain", out_scale=True)[0]
    assert not np.allclose(np.abs(FW_all[0]), want[0])
    with pytest.raises(ValueError, match="reference sample"):
        relevance_scores(net, _Data(x, y), n_samples=0)


def test_relevance_spike_count_rule_runs_and_scores_used_inputs_only():
    rng = np.random.default_rng(6)
    net = random_net(rng, [8, 6, 3])
    x = random_input(rng, 6, 10, 8, 0.3)
    x[:, :, 0] = 0                                  # input 0 never spikes: its synapses carry no relevance
    sc = relevance_scores(net, _Data(x, rng.integers(0, 3, 6)), rule="spike-count", n_samples=6)
    assert np.all(sc[0][:, 0] == 0) and sc[0].sum() > 0


@pytest.mark.parametrize("arch", ["d7", "r6", "c3k3s1p1-p2-d5", "c2k3s2-r4"])
def test_nonzero_synops_equal_the_simulator_unpruned_and_count_only_live_synapses(arch):
    rng = np.random.default_rng(7)
    shape = (6, 6, 2)
    net = Network.from_arch(arch, shape, 3, seed=2, gain=3.0)
    x = random_input(rng, 5, 9, 72, 0.25)
    x[4] = 0                                        # a silent sample
    p = pack(net)
    rec = simulate(p, x, raster=True)
    live = nonzero_synops(p, rec_eb(x, p), rec)
    # no zero weight outside a pooling kernel, whose one weight per channel and tap is all the simulator
    # adds (packed.is_diagonal): the live count is the simulator's own
    assert np.array_equal(live, rec.synops)
    pruned, _ = prune(net, 0.6)
    pp = pack(pruned)
    r2 = simulate(pp, x, raster=True)
    got = nonzero_synops(pp, rec_eb(x, pp), r2)
    # brute force: each presynaptic spike x its non-zero outgoing weights, from the dense matrices
    want = np.zeros(5, np.int64)
    for l, la in enumerate(pruned.layers):
        pre = x if l == 0 else r2.rasters[l - 1]
        dense = ref.conv_dense_matrix(la)[0] if isinstance(la, ConvLayer) else la.weight
        ff = (dense != 0).sum(axis=0)
        want += pre.sum(axis=1).astype(np.int64) @ ff
        if la.is_recurrent:
            V = la.recurrent
            want += (r2.rasters[l][:, :-1].sum(axis=1).astype(np.int64) @ (V != 0).sum(axis=0))
    assert np.array_equal(got, want)
    assert got.sum() < rec.synops.sum()


def rec_eb(x, p):
    from spikelfp.events import as_event_batch

    return as_event_batch(x, int(p.sizes[0]))


def test_conv_fanout_matches_dense_equivalent():
    net = Network.from_arch("c3k3s2p1-d4", (7, 7, 2), 3, seed=4)
    pruned, _ = prune(net, 0.5, scope="layer")
    fan = synapse_fanout(pack(pruned))[0][0]
    want = (ref.conv_dense_matrix(pruned.layers[0])[0] != 0).sum(axis=0)   # the convolution's own definition
    assert np.array_equal(fan, want)


def test_finetune_keeps_pruned_weights_zero_and_resume_keeps_the_mask(tmp_path, small_digits):
    from spikelfp.train import TrainConfig, Trainer

    train, test = small_digits
    base = Trainer(TrainConfig(hidden=[24], epochs=1, seed=0), progress=False)
    base.fit(train, test)
    pruned, _ = prune(base.network, 0.8)
    mask = keep_mask(pruned)
    for opt in ("adam", "sgd", "neuron-adam", "two-phase"):     # two-phase: both phases within the epoch
        for ws in (True, False):       # without the |W| factor the feedback to a pruned weight is not zero
            c = TrainConfig(hidden=[24], epochs=1, seed=1, frozen_zeros=True, optimizer=opt, weight_scaling=ws,
                            lr=1e-3 if opt != "sgd" else 0.02)
            tr = Trainer(c, progress=False)
            tr.fit(train, test, start=pruned)
            for (_, a), m in zip(prunable(tr.network), mask):
                assert np.all(a[~m] == 0), (opt, ws)
                assert np.any(a[m] != pruned_values(pruned, m, a)), "fine-tuning changed nothing"
    c = TrainConfig(hidden=[24], epochs=2, seed=1, frozen_zeros=True, weight_scaling=False)
    out = tmp_path / "ft"
    Trainer(TrainConfig.from_dict({**c.to_dict(), "epochs": 1}), progress=False).fit(train, test, str(out),
                                                                                     start=pruned)
    Trainer(c, progress=False).fit(train, test, str(out), resume=True)
    for (_, a), m in zip(prunable(load_checkpoint(out / "model.h5").network), mask):
        assert np.all(a[~m] == 0)
    with pytest.raises(ValueError, match="frozen_zeros"):
        Trainer(TrainConfig.from_dict({**c.to_dict(), "frozen_zeros": False}), progress=False).fit(
            train, test, str(out), resume=True)


def pruned_values(net, m, a):
    for (_, b), mm in zip(prunable(net), keep_mask(net)):
        if b.shape == a.shape and np.array_equal(mm, m):
            return b[m]
    raise AssertionError("no matching matrix")


def _cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "spikelfp", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_prune_cli_writes_a_checkpoint_that_eval_and_export_take(tmp_path, small_digits, data_root):
    from spikelfp.io import Checkpoint, save_checkpoint
    from spikelfp.train import TrainConfig, Trainer

    train, test = small_digits
    cfg = TrainConfig(hidden=[32], epochs=2, seed=0)
    tr = Trainer(cfg, progress=False)
    tr.fit(train, test, str(tmp_path / "run"))
    model = tmp_path / "run" / "model.h5"
    out = tmp_path / "p.h5"
    r = _cli("prune", model, "--amount", "0.9", "--out", out, "--json", tmp_path / "p.json", "--no-progress",
             "--data-root", data_root)
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "p.json").read_text())
    ck = load_checkpoint(out)
    n = rep["weights"]
    assert rep["synapses_after"] == nonzero_synapses(ck.network) == n - round(0.9 * n)
    assert ck.pruning["criterion"] == "magnitude" and ck.pruning["amount"] == 0.9
    assert ck.binning == load_checkpoint(model).binning and ck.dataset == load_checkpoint(model).dataset
    assert "synapses" in r.stdout and "->" in r.stdout
    e = _cli("eval", out, "--json", tmp_path / "e.json", "--no-progress", "--data-root", data_root)
    assert e.returncode == 0, e.stderr
    assert "pruned model" in e.stdout
    ev = json.loads((tmp_path / "e.json").read_text())
    assert ev["pruning"]["synapses_after"] == rep["synapses_after"]
    assert ev["synops_per_sample"] == pytest.approx(rep["synops_per_sample"]["after"])
    assert rep["synops_per_sample"]["after"] < rep["synops_per_sample"]["before"]
    # NIR carries the zeros exactly
    x = _cli("export", out, "--to", "nir", "--check", "5", "--json", tmp_path / "n.json", "--no-progress",
             "--data-root", data_root)
    assert x.returncode == 0, x.stderr
    nr = json.loads((tmp_path / "n.json").read_text())
    assert nr["roundtrip_exact"] and nr["synapses"]["nonzero"] == rep["synapses_after"]
    assert nr["synapses"]["before_pruning"] == n
    # the one-step file for snntorch's own importer: the same output spikes
    x = _cli("export", out, "--to", "nir", "--for", "snntorch", "--check", "8", "--json", tmp_path / "s.json",
             "--no-progress", "--data-root", data_root)
    assert x.returncode == 0, x.stderr
    sr = json.loads((tmp_path / "s.json").read_text())
    assert sr["snntorch_output_agreement"] == 1.0 and sr["snntorch_accuracy"] == sr["reference_accuracy"]
    assert sr["out"].endswith(".snntorch.nir")
    x = _cli("export", out, "--to", "lava", "--for", "snntorch", "--no-progress")
    assert x.returncode == 2 and "--for snntorch is a NIR flavour" in x.stderr
    # refusals: existing out, the model itself, a bad amount -- and nothing lost
    before = out.read_bytes()
    for args, msg in [((model, "--amount", "0.5", "--out", out), "exists"),
                      ((model, "--amount", "0.5", "--out", model, "--overwrite"), "model itself"),
                      ((model, "--amount", "1.5", "--out", tmp_path / "q.h5"), "fraction")]:
        r = _cli("prune", *args, "--no-progress", "--data-root", data_root)
        assert r.returncode == 2 and msg in r.stderr, r.stderr
    assert out.read_bytes() == before and not (tmp_path / "q.h5").exists()
    # relevance, layer scope, fine-tuning: the mask survives and the record says so
    r = _cli("prune", model, "--amount", "0.8", "--criterion", "relevance", "--scope", "layer", "--finetune", "1",
             "--relevance-samples", "64", "--out", tmp_path / "r.h5", "--no-progress", "--data-root", data_root)
    assert r.returncode == 0, r.stderr
    ck2 = load_checkpoint(tmp_path / "r.h5")
    assert ck2.pruning["finetune_epochs"] == 1 and ck2.config["frozen_zeros"] is True
    assert len(ck2.history) == 1
    for m in ck2.pruning["matrices"]:
        assert m["nonzero_after"] == m["size"] - round(0.8 * m["size"])
    assert nonzero_synapses(ck2.network) <= ck2.pruning["synapses_after"]
    # an old checkpoint (no pruning record) reads as unpruned
    save_checkpoint(tmp_path / "plain.h5", Checkpoint(network=tr.network))
    assert load_checkpoint(tmp_path / "plain.h5").pruning is None


def test_evaluate_synops_drop_with_pruning(small_digits):
    from spikelfp.train import TrainConfig, Trainer, evaluate

    train, test = small_digits
    tr = Trainer(TrainConfig(hidden=[32], epochs=1, seed=0), progress=False)
    tr.fit(train, test)
    full = evaluate(tr.network, test)
    half, _ = prune(tr.network, 0.5)
    ev = evaluate(half, test)
    p = pack(half)
    rec = simulate(p, test.batch(np.arange(len(test))))
    assert ev["synops_per_sample"] < full["synops_per_sample"]
    assert ev["synops_per_sample"] == pytest.approx(
        float(nonzero_synops(p, test.batch(np.arange(len(test))), rec).sum()) / len(test))


@pytest.mark.lava
def test_pruned_model_runs_in_lava_as_sparse_spike_exact(tmp_path):
    from test_lava import run_script

    out = run_script(tmp_path, """
        import numpy as np
        from conftest import random_net, random_input
        import spikelfp
        from spikelfp.backends import lava
        from spikelfp.loihi import quantize, simulate_fixed
        from spikelfp.prune import prune
        res, workers = [], []
        for seed, sizes, rec in [(0, [30, 16, 5], None), (1, [24, 10, 4], [True, False])]:
            rng = np.random.default_rng(seed)
            net = random_net(rng, sizes, bias=True, gain=4.0, rec=rec)
            net, _ = prune(net, 0.7)
            x = random_input(rng, 4, 12, sizes[0], 0.35)
            ref = spikelfp.simulate(net, x, raster=True)
            ex = lava.export(net, "float")
            run = ex.run(x)
            fx = lava.export(net, "fixed")
            runf = fx.run(x)
            sim = simulate_fixed(fx.quantized, x, raster=True)
            workers += run.workers_seen + runf.workers_seen
            res.append({"float": [bool(np.array_equal(a, b)) for a, b in zip(run.rasters, ref.rasters)],
                        "fixed": [bool(np.array_equal(a, b)) for a, b in zip(runf.rasters, sim.rasters)],
                        "spikes": [int(r.sum()) for r in ref.rasters],
                        "conn": [d["connection"] for d in ex.describe()],
                        "synapses": sum(d["synapses"] for d in ex.describe())})
        print(json.dumps({"res": res, "workers": workers}))
    """)
    assert out["workers"]
    for r in out["res"]:
        assert all(r["float"]) and all(r["fixed"]), r
        assert all(s > 0 for s in r["spikes"]), "vacuous: a silent layer"
        assert set(r["conn"]) == {"Sparse"}, r
    assert out["res"][0]["synapses"] == (30 * 16 + 16 * 5) - round(0.7 * (30 * 16 + 16 * 5))


def test_export_counts_a_pooling_layers_fixed_synapses_as_lava_does(tmp_path):
    """The export report's trained synapses plus the pooling layers' fixed ones are the synapses of
    the Lava processes (which hold the pooling kernel's nonzero entries as a Conv)."""
    from test_lava import run_script

    from spikelfp.exporting import format_synapses, synapse_counts

    net = Network.from_arch("c4k3-p2-d6", (8, 8, 2), 4, seed=0, gain=3.0, bias=True)
    pruned, _ = prune(net, 0.5)
    for n in (net, pruned):
        s = synapse_counts(n, None)
        assert s["fixed"] == 4 * 2 * 2 and s["nonzero"] == nonzero_synapses(n)
        assert f"and {s['fixed']} fixed ones in pooling layers" in format_synapses(s)
    assert synapse_counts(Network.from_arch("c4k3-d6", (8, 8, 2), 4, seed=0), None)["fixed"] == 0
    out = run_script(tmp_path, """
        import spikelfp
        from spikelfp.backends import lava
        from spikelfp.prune import prune
        net = spikelfp.Network.from_arch("c4k3-p2-d6", (8, 8, 2), 4, seed=0, gain=3.0, bias=True)
        pruned, _ = prune(net, 0.5)
        print(json.dumps({"res": [sum(d["synapses"] for d in lava.export(n, "float").describe())
                                  for n in (net, pruned)], "workers": []}))
    """)
    assert out["res"] == [synapse_counts(n, None)["nonzero"] + 16 for n in (net, pruned)]
