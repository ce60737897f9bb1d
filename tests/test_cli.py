import json
import os
import subprocess
import sys

import numpy as np
import pytest

from spikelfp.cli import main


@pytest.fixture
def run_dir(tmp_path, data_root, digits):
    out = tmp_path / "run"
    rc = main(["train", "--epochs", "2", "--hidden", "32", "--out", str(out), "--json", str(tmp_path / "t.json"),
               "--seed", "1", "--no-progress", "--data-root", data_root])
    assert rc == 0
    return out


def test_train_then_eval_reproduces_accuracy(run_dir, tmp_path, data_root, capsys):
    trained = json.loads((tmp_path / "t.json").read_text())
    assert trained == json.loads((run_dir / "metrics.json").read_text())
    rc = main(["eval", str(run_dir / "model.h5"), "--json", str(tmp_path / "e.json"), "--data-root", data_root])
    assert rc == 0
    ev = json.loads((tmp_path / "e.json").read_text())
    assert ev["accuracy"] == trained["test_accuracy"]
    assert "accuracy" in capsys.readouterr().out
    # per-sample predictions: the same accuracy, counts whose argmax is the prediction
    import csv

    rc = main(["eval", str(run_dir / "model.h5"), "--predictions", str(tmp_path / "p.csv"), "--data-root", data_root])
    assert rc == 0
    rows = list(csv.reader(open(tmp_path / "p.csv")))
    assert rows[0][:3] == ["index", "label", "prediction"] and len(rows) - 1 == ev["samples"]
    body = np.array(rows[1:], dtype=np.int64)
    assert np.mean(body[:, 1] == body[:, 2]) == ev["accuracy"]
    assert np.array_equal(np.argmax(body[:, 3:], axis=1), body[:, 2])
    history = list(csv.DictReader(open(run_dir / "metrics.csv")))
    assert [int(h["epoch"]) for h in history] == [1, 2]


def test_eval_samples_follow_the_seed(run_dir, tmp_path, data_root):
    import csv

    def run(seed, name):
        assert main(["eval", str(run_dir / "model.h5"), "--samples", "50", "--seed", str(seed), "--json",
                     str(tmp_path / f"{name}.json"), "--predictions", str(tmp_path / f"{name}.csv"),
                     "--data-root", data_root]) == 0
        return (json.loads((tmp_path / f"{name}.json").read_text()),
                list(csv.DictReader(open(tmp_path / f"{name}.csv"))))

    a, pa = run(3, "a")
    b, _ = run(3, "b")
    c, _ = run(4, "c")
    assert a["samples"] == 50 and a["sample_indices"] == b["sample_indices"] and a["accuracy"] == b["accuracy"]
    assert a["sample_indices"] != c["sample_indices"]
    assert [int(r["index"]) for r in pa] == a["sample_indices"]      # rows name their index in the full split
    assert main(["eval", str(run_dir / "model.h5"), "--predictions", str(tmp_path / "all.csv"),
                 "--data-root", data_root]) == 0
    full = {r["index"]: r for r in csv.DictReader(open(tmp_path / "all.csv"))}
    assert all(full[r["index"]] == r for r in pa)                     # and the same prediction as there


def test_config_toml_reruns_the_run_bit_for_bit(run_dir, tmp_path, data_root):
    import tomllib

    from spikelfp.io import load_checkpoint

    cfg = tomllib.loads((run_dir / "config.toml").read_text())
    assert cfg["arch"] == "d32" and cfg["seed"] == 1 and cfg["epochs"] == 2 and cfg["bin-ms"] == 10.0
    again = tmp_path / "again"
    assert main(["train", "--config", str(run_dir / "config.toml"), "--out", str(again), "--no-progress",
                 "--data-root", data_root]) == 0
    a, b = load_checkpoint(run_dir / "model.h5"), load_checkpoint(again / "model.h5")
    assert all(np.array_equal(x.weight, y.weight) for x, y in zip(a.network.layers, b.network.layers))
    assert a.config == b.config and a.binning == b.binning
    assert (again / "config.toml").read_text() == (run_dir / "config.toml").read_text()
    # the command line overrides the file
    one = tmp_path / "one"
    assert main(["train", "--config", str(run_dir / "config.toml"), "--epochs", "1", "--hidden", "16",
                 "--out", str(one), "--no-progress", "--data-root", data_root]) == 0
    c = load_checkpoint(one / "model.h5")
    assert len(c.history) == 1 and c.config["arch"] == "d16" and c.config["seed"] == 1


@pytest.mark.parametrize("text, msg", [
    ("lr = 0.01\nfrobnicate = 3\n", "'frobnicate' is not a setting"),
    ("lr = -1\n", "lr = -1"),
    ("rule = \"bptt\"\n", "choose one of"),
    ("bias = 1\n", "bias must be true or false"),
    ("out = \"x\"\n", "'out' is not a setting"),
    ("lr = [1, 2]\n", "lr takes one value"),
    ("lr = \n", "not valid TOML"),
])
def test_bad_config_file_is_one_line(tmp_path, capsys, text, msg):
    f = tmp_path / "run.toml"
    f.write_text(text)
    with pytest.raises(SystemExit) as e:
        main(["train", "--config", str(f), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and msg in err and str(f) in err
    assert not (tmp_path / "r").exists()


def test_existing_run_is_not_clobbered(run_dir, data_root, capsys):
    before = (run_dir / "model.h5").read_bytes()
    rc = main(["train", "--epochs", "1", "--out", str(run_dir), "--no-progress", "--data-root", data_root])
    assert rc == 2 and "--overwrite" in capsys.readouterr().err
    assert (run_dir / "model.h5").read_bytes() == before


@pytest.mark.parametrize("argv, msg", [
    (["train", "--dataset", "nope"], "unknown dataset 'nope'"),
    (["eval", "missing.h5"], "no such file"),
])
def test_bad_input_exits_2_with_a_clear_message(argv, msg, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert msg in capsys.readouterr().err


def test_argparse_rejects_unknown_rule(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--rule", "backprop"])
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_eval_of_truncated_or_foreign_file(tmp_path, capsys, run_dir):
    bad = tmp_path / "bad.h5"
    bad.write_bytes((run_dir / "model.h5").read_bytes()[:500])
    before = bad.read_bytes()
    assert main(["eval", str(bad)]) == 2
    assert "not a readable HDF5" in capsys.readouterr().err
    assert bad.read_bytes() == before
    txt = tmp_path / "notes.txt"
    txt.write_text("not a model")
    assert main(["eval", str(txt)]) == 2


def test_datasets_and_info_commands(tmp_path, data_root, digits, capsys):
    assert main(["datasets", "--data-root", data_root, "--json", str(tmp_path / "d.json")]) == 0
    rows = json.loads((tmp_path / "d.json").read_text())["datasets"]
    entry = {r["name"]: r for r in rows}["digits-saccade"]
    assert entry["cached"] and entry["input_size"] == 578 and entry["classes"] == 10
    assert main(["info", "--json", str(tmp_path / "i.json")]) == 0
    info = json.loads((tmp_path / "i.json").read_text())
    assert info["versions"]["numba"] and "lava" in info["versions"]


def test_python_dash_m_works():
    r = subprocess.run([sys.executable, "-m", "spikelfp", "--version"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("spikelfp ")
    assert os.path.basename(sys.executable).startswith("python")


def test_lava_installs_and_imports_with_the_shim():
    """The set-up installs lava-nc 0.10.0 on Python 3.11; it imports after spikelfp's shim."""
    code = ("from spikelfp import compat; compat.patch_lava()\n"
            "from lava.magma.core.run_configs import Loihi2SimCfg\n"
            "from lava.proc.lif.process import LIF\nfrom lava.proc.dense.process import Dense\nprint('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_bench_refuses_rule_and_runs_of_recordings_files_go_under_runs(tmp_path, monkeypatch):
    from spikelfp.cli import main

    assert main(["bench", "lfp-vs-sg", "--rule", "temporal", "--epochs", "1"]) == 2
    monkeypatch.chdir(tmp_path)
    import spikelfp.cli as cli

    seen = {}

    class Stop(Exception):
        pass

    def fake_makedirs(path, exist_ok=False):
        seen["out"] = path
        raise Stop

    import numpy as np
    from spikelfp.datasets.custom import write_recordings

    data = tmp_path / "elsewhere" / "my_recordings.h5"
    data.parent.mkdir()
    ev = {"t": np.array([10, 20]), "x": np.array([1, 2])}
    write_recordings(data, {"train": [(ev, 0), (ev, 1)], "test": [(ev, 0)]}, sensor_size=[4, 1, 1], n_classes=2)
    monkeypatch.setattr(cli.os, "makedirs", fake_makedirs)
    with pytest.raises(Stop):
        cli.main(["train", "--dataset", str(data), "--epochs", "1", "--data-root", str(tmp_path / "cache")])
    assert seen["out"] == os.path.join("runs", "my_recordings-temporal-seed0")


def test_plain_progress_lines_when_not_a_terminal(capsys):
    from spikelfp.progress import PlainProgress, progress_bar

    bar = progress_bar(total=3, desc="build", unit="recording")        # pytest's stderr is no terminal
    assert isinstance(bar, PlainProgress)
    for _ in range(3):
        bar.update()
    bar.close()
    bar.close()
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("build: 0/3 recording (started") and lines[-1].startswith("build: 3/3 recording (done")
    assert list(PlainProgress(range(4), desc="x")) == [0, 1, 2, 3]


def test_out_of_range_settings_are_one_line_errors(tmp_path, data_root, capsys):
    from spikelfp.cli import main

    for argv, msg in [(["train", "--momentum", "-5"], "momentum"), (["train", "--momentum", "1.5"], "momentum"),
                      (["train", "--seed", str(10 ** 29)], "seed"), (["train", "--epochs", str(10 ** 21)], "epochs"),
                      (["bench", "lfp-vs-sg", "--methods", ","], "names no method")]:
        try:
            rc = main([*argv, "--data-root", data_root, "--out", str(tmp_path / "o"), "--no-progress"])
        except SystemExit as e:       # argparse's own refusal (the --seed type)
            rc = e.code
        assert rc == 2, argv
        assert msg in capsys.readouterr().err, argv
    assert not (tmp_path / "o").exists()


def test_membrane_tau_and_reward_tau_are_named_apart(tmp_path, data_root, capsys):
    from spikelfp.io import load_checkpoint
    from spikelfp.network import beta_from_tau, tau_from_beta

    assert beta_from_tau(0.1, 0.01) == pytest.approx(0.9) and tau_from_beta(0.9, 0.01) == pytest.approx(0.1)
    out = tmp_path / "m"
    assert main(["train", "--tau-mem", "50", "--reward-tau", "2", "--epochs", "1", "--hidden", "8", "--out", str(out),
                 "--no-progress", "--data-root", data_root]) == 0
    ck = load_checkpoint(out / "model.h5")
    assert ck.config["beta"] == pytest.approx(0.8) and ck.config["tau"] == 2.0    # 10 ms bins: 1 - 10/50
    assert main(["train", "--tau", "3", "--epochs", "1", "--hidden", "8", "--out", str(tmp_path / "old"),
                 "--no-progress", "--data-root", data_root]) == 0                 # the old name still works
    assert load_checkpoint(tmp_path / "old" / "model.h5").config["tau"] == 3.0
    capsys.readouterr()
    for argv, msg in [(["--tau-mem", "5"], "at least one step"), (["--tau-mem", "50", "--beta", "0.5"], "give one")]:
        assert main(["train", *argv, "--out", str(tmp_path / "x"), "--no-progress", "--data-root", data_root]) == 2
        assert msg in capsys.readouterr().err


def _tensorboard_scalars(folder) -> dict:
    """{tag: [(step, value)]} from TensorBoard event files (TFRecord framing, tensorboardX's protobuf)."""
    import struct

    from tensorboardX.proto import event_pb2

    out = {}
    for name in sorted(os.listdir(folder)):
        data = open(os.path.join(folder, name), "rb").read()
        pos = 0
        while pos < len(data):
            (n,) = struct.unpack("<Q", data[pos: pos + 8])
            ev = event_pb2.Event.FromString(data[pos + 12: pos + 12 + n])
            pos += 12 + n + 4
            for v in ev.summary.value:
                out.setdefault(v.tag, []).append((ev.step, v.simple_value))
    return out


def test_tensorboard_log_has_every_epoch(tmp_path, data_root):
    out = tmp_path / "tb"
    assert main(["train", "--epochs", "2", "--hidden", "8", "--out", str(out), "--tensorboard", "--no-progress",
                 "--data-root", data_root]) == 0
    scalars = _tensorboard_scalars(out / "tensorboard")
    metrics = json.loads((out / "metrics.json").read_text())
    assert [s for s, _ in scalars["test_accuracy"]] == [1, 2]
    assert scalars["test_accuracy"][-1][1] == pytest.approx(metrics["test_accuracy"], abs=1e-6)
