import json
import os

import numpy as np
import pytest
import torch
from conftest import check_snntorch_mirror, random_input, random_net
from spikelfp.backends import snntorch as bsn

import spikelfp
from spikelfp.bench import PRUNE_CURVE, PRUNE_FRACTIONS, gini, run_bench
from spikelfp.cli import _apply_preset, build_parser
from spikelfp.io import load_checkpoint
from spikelfp.prune import prune
from spikelfp.train import TrainConfig


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("bias", [False, True])
def test_snntorch_forward_gives_identical_spikes(seed, reset, bias):
    rng = np.random.default_rng(seed)
    sizes = [int(rng.integers(10, 30)), int(rng.integers(5, 20)), int(rng.integers(3, 8))]
    net = random_net(rng, sizes, reset=reset, bias=bias)
    x = random_input(rng, 6, 20, sizes[0], 0.3)
    ref, _ = check_snntorch_mirror(net, x)       # spikes identical, membranes to rounding
    assert all(r.sum() > 0 for r in ref.rasters)


def test_weights_round_trip_exactly():
    net = random_net(np.random.default_rng(3), [7, 5, 3], bias=True, reset="subtract")
    back = bsn.from_snntorch(bsn.to_snntorch(net))
    for a, b in zip(net.layers, back.layers):
        np.testing.assert_array_equal(a.weight, b.weight)
        np.testing.assert_array_equal(a.bias, b.bias)
        assert (a.beta, a.threshold, a.reset) == (b.beta, b.threshold, b.reset)


def test_explicit_state_no_hidden_carry_over():
    net = random_net(np.random.default_rng(4), [10, 6, 3])
    x = torch.from_numpy(random_input(np.random.default_rng(5), 2, 12, 10).transpose(1, 0, 2).astype(np.float64))
    model = bsn.to_snntorch(net)
    with torch.no_grad():
        a = model(x)
        b = model(x)
    assert torch.equal(a, b)


def test_sg_training_is_deterministic_and_learns(small_digits):
    train, test = small_digits
    kw = dict(hidden=[32], epochs=2, seed=5, surrogate="atan")
    r1 = bsn.train_sg(train, test, **kw)
    r2 = bsn.train_sg(train, test, **kw)
    for a, b in zip(r1["network"].layers, r2["network"].layers):
        np.testing.assert_array_equal(a.weight, b.weight)
    assert r1["threads"] == 2
    assert r1["history"][-1]["test_accuracy"] > 0.3          # well above chance (0.1) after 2 epochs


@pytest.mark.parametrize("schedule", ["constant", "cosine", "onecycle"])
def test_sg_takes_the_lfp_trainers_schedule_step_by_step(small_digits, monkeypatch, schedule):
    """A bench with --schedule gives the SG baseline the same per-step learning rate as LFP."""
    from spikelfp.optim import make_schedule
    train, test = small_digits
    seen = []
    step = torch.optim.Adam.step

    def recording_step(self, *a, **k):
        seen.append((id(self), self.param_groups[0]["lr"]))
        return step(self, *a, **k)
    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    bsn.train_sg(train, test, hidden=[8], epochs=2, batch_size=64, lr=3e-3, seed=1, schedule=schedule)
    n_steps = 2 * -(-len(train) // 64)
    want = make_schedule(schedule, 3e-3, n_steps)
    warm, run = seen[:3], seen[3:]          # the untimed warm-up's throwaway optimizer, then the run's own
    assert len({i for i, _ in warm}) == 1 and len({i for i, _ in run}) == 1 and warm[0][0] != run[0][0]
    lrs = [lr for _, lr in run]
    assert lrs == [want(k) for k in range(n_steps)]
    if schedule != "constant":
        assert lrs[-1] < 3e-3 / 10


def test_sg_starts_from_the_lfp_init(small_digits):
    """One seed draws the same initial weights for LFP and SG (a fair comparison)."""
    train, _ = small_digits
    from spikelfp.train import Trainer
    for dtype in ("float32", "float64"):      # SG's torch model takes these weights in float32
        rng = np.random.default_rng(11)
        lfp0 = Trainer(TrainConfig(hidden=[8], seed=11, dtype=dtype)).init_network(train.n_in, train.n_classes,
                                                                                   rng, 1e-3)
        rng = np.random.default_rng(11)
        sg0 = spikelfp.Network.random([train.n_in, 8, train.n_classes], seed=rng)
        assert lfp0.layers[0].weight.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(lfp0.layers[0].weight, sg0.layers[0].weight.astype(dtype))


def test_gini_and_pruning():
    assert gini(np.ones(100)) == pytest.approx(0.0)
    assert gini(np.r_[np.zeros(99), 1.0]) == pytest.approx(0.99)
    net = random_net(np.random.default_rng(6), [50, 20, 5])
    pruned, _ = prune(net, 0.9)
    w = np.concatenate([la.weight.ravel() for la in pruned.layers])
    assert np.mean(w == 0) == pytest.approx(0.9, abs=0.002)
    kept = np.concatenate([la.weight.ravel() for la in net.layers])[w != 0]
    assert np.abs(kept).min() >= np.quantile(np.abs(np.concatenate([la.weight.ravel() for la in net.layers])), 0.89)


def test_bench_writes_report_table_and_plots(small_digits, tmp_path):
    train, test = small_digits
    cfg = TrainConfig(hidden=[16], epochs=1, seed=0)
    r = run_bench(train, test, cfg, seeds=2, out=str(tmp_path))
    data = json.loads((tmp_path / "bench.json").read_text())
    names = [m["name"] for m in data["methods"]]
    assert names == ["lfp-spike-count", "lfp-temporal", "sg-fast-sigmoid", "sg-atan"]
    for m in data["methods"]:
        assert len(m["test_accuracy"]) == 2 and len(m["epoch_seconds"]) == 2
        assert set(m["pruned_accuracy"]) == {str(f) for f in PRUNE_FRACTIONS}
        for key in ("samples_per_s", "gini", "spikes_per_sample", "synops_per_sample", "frac_below_1e-3"):
            assert key in m
    assert set(data["comparison"]) == {"lfp-spike-count", "lfp-temporal"}
    md = (tmp_path / "bench.md").read_text()
    assert "| lfp-temporal |" in md
    # every method carries the other processes' CPU share over its timed epochs (None: the epochs were
    # too short in all to tell), and the report says it where it was measured
    for m in data["methods"]:
        assert "max_other_cpu_load" in m
        assert m["max_other_cpu_load"] is None or 0.0 <= m["max_other_cpu_load"] <= 1.0
    if any(m["max_other_cpu_load"] is not None for m in data["methods"]):
        assert "other processes' CPU share during the timed epochs" in md
    for m in data["methods"]:         # the pruning curves: every criterion and scope, 0..100 % in 5 % steps
        assert set(m["pruning_curves"]) == {"magnitude-global", "magnitude-layer", "relevance-global",
                                            "relevance-layer"}
        for c in m["pruning_curves"].values():
            assert c["fractions"] == list(PRUNE_CURVE) and len(c["accuracy_mean"]) == 21
            assert c["accuracy_mean"][0] == pytest.approx(m["test_accuracy_mean"])
            assert c["synops_per_sample"][-1] == 0 and c["synops_per_sample"][10] < c["synops_per_sample"][0]
        mg = m["pruning_curves"]["magnitude-global"]["accuracy_mean"]
        assert m["pruned_accuracy"]["0.9"] == pytest.approx(mg[18])
    table = [ln for ln in md.splitlines() if ln.startswith("|")]
    for ln in table:                  # every row of every table has as many cells as its header
        assert ln.count("|") - ln.count("\\|") in {t.count("|") - t.count("\\|") for t in table}
    main_rows = md.split("\n\n")[1].splitlines()
    assert len({ln.count("|") - ln.count("\\|") for ln in main_rows}) == 1, main_rows[:2]
    for name in data["models"]["lfp-temporal"] + data["models"]["sg-atan"]:
        ck = load_checkpoint(tmp_path / name)       # saved models: spikelfp prune / eval / export take them
        assert ck.network.n_in == train.n_in and ck.config["method"] in name and ck.binning == data["binning"]
        assert len(ck.history) == 1
    for png in ("accuracy_per_epoch.png", "pruning_global.png", "pruning_layer.png", "weights.png"):
        assert (tmp_path / png).stat().st_size > 1000
    assert r["machine"]["torch_threads"] == 2


def test_paper_preset_and_explicit_override():
    args = _apply_preset(build_parser(), ["train", "--preset", "paper-mlp"])
    assert (args.hidden, args.reset, args.optimizer, args.lr, args.n_bins) == ([1000], "subtract", "sgd", 0.02, 15)
    args = _apply_preset(build_parser(), ["train", "--preset", "paper-mlp", "--lr", "0.01", "--hidden", "64"])
    assert (args.lr, args.hidden, args.momentum) == (0.01, [64], 0.9)


def test_bench_rejects_unknown_method(small_digits, capsys, data_root):
    from spikelfp.cli import main
    assert main(["bench", "lfp-vs-sg", "--methods", "lfp-temporal,backprop", "--epochs", "1",
                 "--data-root", data_root, "--out", "/tmp/never"]) == 2
    assert "unknown method 'backprop'" in capsys.readouterr().err


def test_bench_records_its_command_line(data_root, tmp_path):
    """Every bench folder says how to reproduce it: the CLI's exact arguments, in the JSON and under the table."""
    from spikelfp.cli import main
    argv = ["bench", "lfp-vs-sg", "--methods", "lfp-spike-count", "--epochs", "1", "--seeds", "1", "--hidden", "8",
            "--data-root", data_root, "--out", str(tmp_path / "b b")]
    assert main(argv) == 0
    data = json.loads((tmp_path / "b b" / "bench.json").read_text())
    assert data["command"] == ("spikelfp bench lfp-vs-sg --methods lfp-spike-count --epochs 1 --seeds 1 --hidden 8 "
                               f"--data-root {data_root} --out '{tmp_path / 'b b'}'")
    md = (tmp_path / "b b" / "bench.md").read_text()
    assert f"Command: `{data['command']}`" in md.splitlines()[-1]


def test_other_load_meter_sees_another_process_and_not_its_own_work():
    import subprocess
    import sys
    import time

    from spikelfp.loadmeter import OtherLoad

    m = OtherLoad()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 0.4:       # our own work is not "other"
        sum(range(1000))
    own = m.stop()
    busy = subprocess.Popen([sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<1.5: pass"])
    try:
        time.sleep(0.3)
        m = OtherLoad()
        time.sleep(0.8)
        other = m.stop()           # before the child is waited for: its CPU time is another process's
    finally:
        busy.wait()
    assert own is not None and 0.0 <= own <= 1.0
    assert other is not None and other > 0.1, other     # one busy core of this machine's cores


def test_other_load_meter_sums_intervals_and_refuses_to_guess_on_short_ones():
    import time

    from spikelfp.loadmeter import MIN_TICKS, OtherLoad

    m = OtherLoad()
    assert m.stop() is None                  # a few microseconds: too short to tell, not "0 %"
    m = OtherLoad(start=False)
    n = 0
    while m.wall_s * os.sysconf("SC_CLK_TCK") < MIN_TICKS:
        m.start()
        time.sleep(0.05)
        m.stop()
        n += 1
    assert n > 1 and m.share() is not None and 0.0 <= m.share() <= 1.0
