"""Sweeps on Ray Tune (spikelfp sweep): local Ray, real trials (each an ordinary training run)."""

import json

import numpy as np
import pytest
from conftest import foreground_sigint

from spikelfp.distributed import RayFeedback, parse_grid, trial_configs
from spikelfp.train import TrainConfig

ray = pytest.importorskip("ray")


def test_parse_grid_types_and_refusals():
    g = parse_grid(["rule=temporal,spike-count", "lr=1e-3,2e-3", "bias=true,false", "seed=0,1", "arch=r8,d8"])
    assert g == {"rule": ["temporal", "spike-count"], "lr": [0.001, 0.002], "bias": [True, False], "seed": [0, 1],
                 "arch": ["r8", "d8"]}
    for bad, msg in [(["nope=1"], "not a training setting"), (["seed=a"], "not a int"), (["seed"], "key=v1"),
                     (["epochs=1,2"], "every trial trains"), (["seed=0", "seed=1"], "given twice"),
                     (["bias=maybe"], "not a bool"), (["hidden=256,128"], "arch=")]:
        with pytest.raises(ValueError, match=msg):
            parse_grid(bad)
    assert parse_grid(["chunks=4,8", "clip=0.5,1", "reward=ce,rate"]) == {"chunks": [4, 8], "clip": [0.5, 1.0],
                                                                         "reward": ["ce", "rate"]}
    with pytest.raises(ValueError, match="unknown rule"):           # every combination is validated first
        trial_configs(TrainConfig(), parse_grid(["rule=temporal,hebbian"]))


def _sweep(tmp_path, data_root, *grid, out="sw", extra=()):
    from spikelfp.cli import main

    argv = ["sweep", "--epochs", "1", "--out", str(tmp_path / out), "--json", str(tmp_path / f"{out}.json"),
            "--data-root", str(data_root), "--no-progress", *extra]
    for g in grid:
        argv += ["--grid", g]
    rc = main(argv)
    return rc, (json.loads((tmp_path / f"{out}.json").read_text()) if rc != 2 else None)


def test_sweep_runs_every_trial_reports_and_resumes(tmp_path, data_root, digits):
    from spikelfp.train import Trainer

    rc, r = _sweep(tmp_path, data_root, "rule=temporal,spike-count", "seed=0,1")
    assert rc == 0 and r["failed"] == 0 and len(r["trials"]) == 4
    assert sorted((t["config"]["rule"], t["config"]["seed"]) for t in r["trials"]) == [
        ("spike-count", 0), ("spike-count", 1), ("temporal", 0), ("temporal", 1)]
    assert all(0.3 < t["test_accuracy"] <= 1.0 and t["epochs"] == 1 for t in r["trials"])
    # a trial is an ordinary run: the spike-count rule (thread-count independent) gives the same accuracy
    train, test = digits
    direct = Trainer(TrainConfig(rule="spike-count", seed=1, epochs=1), progress=False).fit(train, test)
    trial = next(t for t in r["trials"] if t["config"] == {"rule": "spike-count", "seed": 1})
    assert trial["test_accuracy"] == direct["test_accuracy"]
    best = r["best"]
    assert best["test_accuracy"] == max(t["test_accuracy"] for t in r["trials"])
    assert (tmp_path / "sw" / "sweep.md").exists()
    import os
    assert os.path.exists(os.path.join(best["folder"], "model.h5"))
    # re-running needs --resume; then the finished trials are kept, not re-run (same folders, same results)
    assert _sweep(tmp_path, data_root, "rule=temporal,spike-count", "seed=0,1", out="sw")[0] == 2
    assert _sweep(tmp_path, data_root, "rule=temporal,seed=0", out="sw", extra=["--resume"])[0] == 2  # other grid
    rc2, r2 = _sweep(tmp_path, data_root, "rule=temporal,spike-count", "seed=0,1", extra=["--resume"])
    assert rc2 == 0
    assert [(t["folder"], t["test_accuracy"]) for t in r2["trials"]] == [(t["folder"], t["test_accuracy"])
                                                                          for t in r["trials"]]


def test_a_failing_trial_is_reported_not_fatal(tmp_path, data_root, digits):
    rc, r = _sweep(tmp_path, data_root, "lr=0.02,1e30", out="bad", extra=["--optimizer", "sgd"])
    assert rc == 1 and r["failed"] == 1 and len(r["trials"]) == 2
    bad = next(t for t in r["trials"] if t["error"])
    good = next(t for t in r["trials"] if not t["error"])
    assert bad["config"]["lr"] == 1e30 and good["test_accuracy"] > 0.3
    assert bad["error"].startswith("spikelfp.train.TrainingDiverged: training diverged in epoch 1") or \
        "training diverged in epoch 1" in bad["error"], bad["error"]
    assert "\x1b[" not in bad["error"] and "\n" not in bad["error"]
    md = (tmp_path / "bad" / "sweep.md").read_text()
    assert "training diverged" in md and "\x1b[" not in md


def test_a_bad_grid_value_is_refused_before_anything_starts(tmp_path, data_root, digits, capsys):
    assert _sweep(tmp_path, data_root, "init_gain=1.0,inf", out="bad")[0] == 2
    assert "init_gain must lie in" in capsys.readouterr().err
    assert not (tmp_path / "bad" / "sweep").exists()
    assert _sweep(tmp_path, data_root, "beta=0.9,nan", out="bad")[0] == 2
    assert "beta must lie in [0, 1]" in capsys.readouterr().err


def test_sweep_refusals_are_immediate(tmp_path, data_root, digits, capsys):
    import time

    from spikelfp.io import RunLock

    t0 = time.time()
    assert _sweep(tmp_path, data_root, "seed=0,1", out="cpu", extra=["--cpus-per-trial", "100"])[0] == 2
    assert "--cpus-per-trial 100: this machine has" in capsys.readouterr().err
    (tmp_path / "locked").mkdir()
    with RunLock(tmp_path / "locked"):
        assert _sweep(tmp_path, data_root, "seed=0,1", out="locked")[0] == 2
    assert "in use" in capsys.readouterr().err
    assert _sweep(tmp_path, data_root, "seed=0,1", out="none", extra=["--resume"])[0] == 2
    assert "holds no sweep" in capsys.readouterr().err
    assert time.time() - t0 < 60


def test_resume_never_unpickles_a_planted_file(tmp_path, data_root, digits, capsys):
    """A sweep folder is a code-execution path for Ray Tune's unpickling: spikelfp resumes only the
    state it signed. A planted pickle must not run (its marker file stays absent)."""
    import hashlib
    import pickle

    rc, _ = _sweep(tmp_path, data_root, "seed=0", out="sw")
    assert rc == 0 and (tmp_path / "sw" / "spikelfp-sweep.json").exists()
    marker = tmp_path / "PWNED"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    pkls = sorted((tmp_path / "sw" / "sweep").glob("*.pkl"))
    assert pkls, "no Tune state to plant into"
    pkls[0].write_bytes(pickle.dumps(Evil()))
    assert _sweep(tmp_path, data_root, "seed=0", out="sw", extra=["--resume"])[0] == 2
    assert "changed since spikelfp recorded" in capsys.readouterr().err and not marker.exists()
    # a forger who also rewrites the manifest's hashes cannot sign it
    m = json.loads((tmp_path / "sw" / "spikelfp-sweep.json").read_text())
    rel = str(pkls[0].relative_to(tmp_path / "sw" / "sweep"))
    m["files"][rel] = [pkls[0].stat().st_size, hashlib.sha256(pkls[0].read_bytes()).hexdigest()]
    (tmp_path / "sw" / "spikelfp-sweep.json").write_text(json.dumps(m))
    assert _sweep(tmp_path, data_root, "seed=0", out="sw", extra=["--resume"])[0] == 2
    assert "not signed by you" in capsys.readouterr().err and not marker.exists()
    # a folder without a manifest (someone else's, downloaded) is never resumed
    (tmp_path / "sw" / "spikelfp-sweep.json").unlink()
    assert _sweep(tmp_path, data_root, "seed=0", out="sw", extra=["--resume"])[0] == 2
    assert "no spikelfp-sweep.json" in capsys.readouterr().err and not marker.exists()


def test_workers_and_address_are_checked_at_once(tmp_path, data_root, digits, capsys):
    import time

    from spikelfp.cli import main

    base = ["train", "--epochs", "1", "--data-root", str(data_root), "--no-progress"]
    t0 = time.time()
    assert main(base + ["--workers", "64", "--out", str(tmp_path / "a")]) == 2
    assert "--workers 64: this machine has" in capsys.readouterr().err
    assert main(base + ["--workers", "2", "--address", "127.0.0.1:1", "--out", str(tmp_path / "b")]) == 2
    assert "no Ray cluster answers there" in capsys.readouterr().err
    assert time.time() - t0 < 60 and not _ray_processes()


def _weights(net):
    return [a for la in net.layers for a in (la.weight, la.bias, la.recurrent) if a is not None]


@pytest.mark.parametrize("rule", ["temporal", "spike-count"])
def test_data_parallel_training_is_bit_identical(rule, small_digits):
    from spikelfp.train import Trainer

    train, test = small_digits
    cfg = dict(rule=rule, epochs=2, seed=3, chunks=4, arch="r16", bias=True)
    single = Trainer(TrainConfig(**cfg), progress=False)
    m0 = single.fit(train, test)
    for workers in (1, 2):
        par = Trainer(TrainConfig(**cfg), progress=False, parallel=RayFeedback(workers))
        m = par.fit(train, test)
        assert m["test_accuracy"] == m0["test_accuracy"]
        for a, b in zip(_weights(single.network), _weights(par.network)):
            assert np.array_equal(a, b), f"workers={workers} changed the weights"
    with pytest.raises(ValueError, match="pinned chunking"):
        Trainer(TrainConfig(rule=rule), parallel=RayFeedback(2))


@pytest.mark.parametrize("rule", ["temporal", "spike-count"])
def test_data_parallel_training_in_loihi_fixed_point_is_bit_identical(rule, small_digits):
    from spikelfp.train import Trainer, evaluate

    train, test = small_digits
    cfg = dict(rule=rule, epochs=2, seed=5, chunks=4, arch="r16", quantize="loihi")
    single = Trainer(TrainConfig(**cfg), progress=False)
    m0 = single.fit(train, test)
    par = Trainer(TrainConfig(**cfg), progress=False, parallel=RayFeedback(2))
    m = par.fit(train, test)
    assert m["test_accuracy"] == m0["test_accuracy"] == evaluate(par.network, test, quantize="loihi")["accuracy"]
    for a, b in zip(_weights(single.network), _weights(par.network)):
        assert np.array_equal(a, b), "the workers changed the weights"
    flt = Trainer(TrainConfig(**{**cfg, "quantize": None}), progress=False, parallel=RayFeedback(2))
    flt.fit(train, test)
    assert not all(np.array_equal(a, b) for a, b in zip(_weights(flt.network), _weights(par.network))), \
        "the workers trained the float network: the fixed-point run was not used"


def _kill_a_worker_when_seen(killed, stop):
    """Background: SIGKILL the first Ray actor process of spikelfp's feedback workers that shows up."""
    import os
    import signal
    import time

    while not stop.is_set():
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    cmd = fh.read()
            except OSError:
                continue
            if b"_Worker.parts" in cmd:          # busy in a task: mid-step
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
                return
        time.sleep(0.01)


def test_a_killed_worker_changes_nothing(small_digits):
    import threading

    from spikelfp.train import Trainer

    train, test = small_digits
    cfg = dict(rule="temporal", epochs=2, seed=4, chunks=4)
    single = Trainer(TrainConfig(**cfg), progress=False)
    single.fit(train, test)
    killed, stop = [], threading.Event()
    th = threading.Thread(target=_kill_a_worker_when_seen, args=(killed, stop), daemon=True)
    th.start()
    par = Trainer(TrainConfig(**cfg), progress=False, parallel=RayFeedback(2))
    try:
        par.fit(train, test)
    finally:
        stop.set()
        th.join(5)
    assert killed, "no worker was killed: the test did not test anything"
    for a, b in zip(_weights(single.network), _weights(par.network)):
        assert np.array_equal(a, b)


def test_train_cli_workers_matches_the_single_process_run(tmp_path, data_root, digits, capfd):
    import h5py

    from spikelfp.cli import main

    base = ["train", "--epochs", "1", "--seed", "2", "--data-root", str(data_root), "--no-progress"]
    assert main(base + ["--chunks", "8", "--out", str(tmp_path / "one")]) == 0
    capfd.readouterr()
    assert main(base + ["--workers", "2", "--out", str(tmp_path / "two")]) == 0      # --chunks defaults to 8
    err = capfd.readouterr().err
    assert "core_worker" not in err and " E " not in err, err     # no error-looking line from Ray's C++ core
    with h5py.File(tmp_path / "one" / "model.h5") as a, h5py.File(tmp_path / "two" / "model.h5") as b:
        for k in ("network/layer_0/weight", "network/layer_1/weight"):
            assert np.array_equal(a[k][()], b[k][()])


def test_bench_methods_and_seeds_on_ray(small_digits, tmp_path):
    from spikelfp.bench import run_bench

    train, test = small_digits
    cfg = TrainConfig(epochs=1, hidden=[16], seed=0)
    kw = dict(seeds=2, methods=["lfp-spike-count", "sg-fast-sigmoid"])
    on_ray = run_bench(train, test, cfg, use_ray=True, out=str(tmp_path / "b"), **kw)
    local = run_bench(train, test, cfg, methods=["lfp-spike-count"], seeds=2)
    by = {m["name"]: m for m in on_ray["methods"]}
    assert by["lfp-spike-count"]["seeds"] == [0, 1]
    # the spike-count rule does not depend on the thread count: the same accuracies as in-process
    assert by["lfp-spike-count"]["test_accuracy"] == local["methods"][0]["test_accuracy"]
    assert len(by["sg-fast-sigmoid"]["test_accuracy"]) == 2 and by["sg-fast-sigmoid"]["epoch_seconds_mean"] > 0
    assert on_ray["machine"]["ray"] == {"address": "local"} and on_ray["machine"]["numba_threads"] == 1
    assert (tmp_path / "b" / "bench.md").exists()


def test_sweep_with_asha_reports_per_epoch(tmp_path, data_root, digits):
    from spikelfp.cli import main

    out = tmp_path / "asha"
    rc = main(["sweep", "--grid", "lr=1e-3,1e-6", "--epochs", "2", "--asha", "--out", str(out), "--json",
               str(tmp_path / "a.json"), "--data-root", str(data_root), "--no-progress"])
    r = json.loads((tmp_path / "a.json").read_text())
    assert rc == 0 and r["asha"] and len(r["trials"]) == 2
    assert all(1 <= t["epochs"] <= 2 for t in r["trials"])       # ASHA may stop the poor one after epoch 1
    assert r["best"]["config"] == {"lr": 1e-3}


def _ray_processes() -> list:
    import os

    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    cmd = fh.read()
            except OSError:
                continue
            if b"raylet" in cmd or b"gcs_server" in cmd or cmd.startswith(b"ray::"):
                out.append(int(pid))
    return out


@pytest.mark.parametrize("sig_name", ["SIGTERM", "SIGINT"])
def test_a_signal_ends_a_sweep_and_its_ray_processes(tmp_path, data_root, digits, sig_name):
    import os
    import signal
    import subprocess
    import sys
    import time

    assert not _ray_processes(), "Ray processes left over from an earlier test"
    err = tmp_path / "stderr.txt"
    with open(err, "wb") as fh:
        p = subprocess.Popen([sys.executable, "-m", "spikelfp", "sweep", "--grid", "seed=0,1,2", "--epochs", "30",
                              "--data-root", str(data_root), "--out", str(tmp_path / "s"), "--no-progress"],
                             stdout=subprocess.DEVNULL, stderr=fh, env=os.environ.copy(),
                             preexec_fn=foreground_sigint)
    try:
        t0 = time.time()     # once Ray is up (a SIGTERM inside ray.init itself: see docs/distributed.md)
        while b"Started a local Ray instance" not in err.read_bytes() and time.time() - t0 < 90:
            time.sleep(0.2)
        assert _ray_processes(), "the sweep never started Ray"
        time.sleep(1)
        p.send_signal(getattr(signal, sig_name))
        p.wait(timeout=60)
        t0 = time.time()
        while _ray_processes() and time.time() - t0 < 30:
            time.sleep(0.5)
        assert not _ray_processes(), "Ray processes outlived the sweep"
        assert p.returncode == 130 and b"interrupted" in err.read_bytes()
        assert not (tmp_path / "s" / "sweep.md").exists()           # no report that claims completion
        assert (tmp_path / "s" / "spikelfp-sweep.json").exists()    # the state is signed: --resume takes it
    finally:
        if p.poll() is None:
            p.kill()


def test_sweep_on_a_relative_recordings_path(tmp_path, monkeypatch):
    """Trials run in Ray's own working folders: a relative --dataset is made absolute first."""
    from spikelfp.datasets.custom import write_recordings

    from spikelfp.cli import main

    rng = np.random.default_rng(0)

    def rec(label):
        ev = np.zeros(60, dtype=[("t", "f8"), ("x", "i8")])
        ev["t"] = np.sort(rng.uniform(0, 50_000, 60))
        ev["x"] = rng.integers(0, 4, 60) + 4 * label
        return ev, label

    write_recordings(tmp_path / "rec.h5", {"train": [rec(k % 2) for k in range(20)],
                                           "test": [rec(k % 2) for k in range(6)]}, sensor_size=[8])
    monkeypatch.chdir(tmp_path)
    rc = main(["sweep", "--dataset", "rec.h5", "--grid", "seed=0", "--epochs", "1", "--hidden", "8",
               "--out", "sw", "--json", "sw.json", "--data-root", str(tmp_path / "cache"), "--no-progress"])
    r = json.loads((tmp_path / "sw.json").read_text())
    assert rc == 0 and r["failed"] == 0 and r["trials"][0]["test_accuracy"] is not None
    assert r["base"]["dataset"] == str(tmp_path / "rec.h5")
