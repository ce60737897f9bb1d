"""Fault injection: careless paths, interrupted runs, oversized requests, concurrent runs, full disks.

Every case must end with exit status 2 (or 130 for an interrupt), one line naming the option or
file, no traceback, no existing file changed, and no process or temporary file left behind.
Subprocesses run in their own session and are always killed at the end, also when a test fails.
"""

import contextlib
import errno
import hashlib
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import foreground_sigint

from spikelfp.arch import layer_shapes
from spikelfp.cli import main
from spikelfp.io import RunLock
from spikelfp.memory import estimate_training_bytes

SMALL = ["--hidden", "16", "--epochs", "1", "--no-progress"]


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def run(tmp_path_factory, data_root, digits):
    """A small trained run folder (model.h5 + metrics.json)."""
    out = tmp_path_factory.mktemp("faults") / "run"
    assert main(["train", "--out", str(out), "--data-root", data_root, "--hidden", "16", "--epochs", "2",
                 "--no-progress"]) == 0
    return out


def _one_error_line(capsys, *needles):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    for n in needles:
        assert n in err[0], (n, err[0])
    return err[0]


# ---------------------------------------------------------------- outputs never overwrite inputs
def test_outputs_that_name_an_input_are_refused(run, data_root, capsys, tmp_path):
    model = run / "model.h5"
    before = _sha(model)
    assert main(["export", str(model), "--to", "nir", "--out", str(model)]) == 2
    _one_error_line(capsys, "overwrite its input")
    assert main(["eval", str(model), "--json", str(model), "--data-root", data_root]) == 2
    _one_error_line(capsys, "--json")
    assert main(["train", "--out", str(run), "--resume", "--json", str(model), "--data-root", data_root]) == 2
    _one_error_line(capsys, "--json")
    nir_named = tmp_path / "m.nir"                      # a model file whose default export name is itself
    nir_named.write_bytes(model.read_bytes())
    assert main(["export", str(nir_named), "--to", "nir"]) == 2
    _one_error_line(capsys, "overwrite its input")
    assert _sha(model) == before and _sha(nir_named) == before


# ---------------------------------------------------------------- resume takes the run's own config
def test_resume_refuses_changed_settings_by_name_and_keeps_the_model(run, data_root, capsys):
    model = run / "model.h5"
    before = _sha(model)
    assert main(["train", "--out", str(run), "--resume", "--lr", "0.5", "--steps", "15", "--beta", "0.1",
                 "--epochs", "3", "--data-root", data_root]) == 2
    line = _one_error_line(capsys, "--lr", "--beta", "--steps")
    assert "only --epochs may change" in line
    assert _sha(model) == before


def test_resume_needs_no_option_repeated(tmp_path, data_root):
    out = tmp_path / "r"
    assert main(["train", "--out", str(out), "--data-root", data_root, "--hidden", "12", "--lr", "0.002",
                 "--epochs", "1", "--no-progress"]) == 0
    assert main(["train", "--out", str(out), "--resume", "--epochs", "2", "--data-root", data_root,
                 "--no-progress"]) == 0
    from spikelfp.io import load_checkpoint

    ck = load_checkpoint(out / "model.h5")
    assert ck.config["hidden"] == [12] and ck.config["lr"] == 0.002 and len(ck.history) == 2


# ---------------------------------------------------------------- one run per folder
def test_a_locked_run_folder_is_refused(tmp_path, data_root, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    with RunLock(out):
        assert main(["train", "--out", str(out), "--data-root", data_root, *SMALL]) == 2
    _one_error_line(capsys, "in use by another spikelfp run", str(os.getpid()))
    assert not (out / "model.h5").exists()


# ---------------------------------------------------------------- careless paths and values
def test_bad_paths_and_values_get_one_line(tmp_path, data_root, capsys):
    f = tmp_path / "a_file"
    f.write_text("x")
    cases = [
        (["train", "--out", str(f), *SMALL], "is a file"),
        (["train", "--out", str(tmp_path / "o1"), "--data-root", str(f), *SMALL], "is a file, not a folder"),
        (["train", "--out", str(tmp_path / "o2"), "--data-root", data_root, "--hidden", "1000000", "--epochs", "1"],
         "--hidden"),
        (["train", "--out", str(tmp_path / "o3"), "--data-root", data_root, "--steps", "10000000", "--epochs", "1"],
         "--steps"),
    ]
    for argv, needle in cases:
        t0 = time.monotonic()
        assert main(argv) == 2, argv
        _one_error_line(capsys, needle)
        assert time.monotonic() - t0 < 60, "refused only after allocating?"
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()


def test_memory_estimate_grows_with_the_request():
    small = estimate_training_bytes(layer_shapes('d256', 578, 10), 30, 32)
    assert 1e6 < small < 5e8
    assert estimate_training_bytes(layer_shapes('d1000000', 578, 10), 30, 32) > 20 * 2**30
    assert estimate_training_bytes(layer_shapes('d256', 578, 10), 10_000_000, 32) > 20 * 2**30


@pytest.mark.parametrize("train_labels, test_label, n_classes, msgs", [
    ((0, 1), 2, 3, ("never saw", "[2]")),           # a test class training never saw
    ((0, 0), 0, 1, ("only class", "two classes")),  # a single training class: every model would score 1.0
])
def test_unusable_class_splits_are_refused(tmp_path, capsys, train_labels, test_label, n_classes, msgs):
    from spikelfp.datasets.custom import write_recordings

    ev = {"t": np.array([10, 20, 30]), "x": np.array([1, 2, 3])}
    path = tmp_path / "rec.h5"
    write_recordings(path, {"train": [(ev, y) for y in train_labels], "test": [(ev, test_label)]},
                     sensor_size=[4, 1, 1], n_classes=n_classes)
    assert main(["train", "--dataset", str(path), "--out", str(tmp_path / "r"), "--data-root",
                 str(tmp_path / "cache"), *SMALL]) == 2
    _one_error_line(capsys, *msgs)
    assert not (tmp_path / "r").exists(), "a failed start leaves no empty run folder"


# ---------------------------------------------------------------- eval uses the model's own data
def test_eval_defaults_to_the_models_dataset_from_another_folder(tmp_path, monkeypatch, capsys):
    from spikelfp.datasets.custom import write_recordings

    rng = np.random.default_rng(0)

    def rec(lab):
        n = 120
        return {"t": np.sort(rng.uniform(0, 90_000, n)), "x": rng.integers(0, 5, n) + 5 * lab}

    path = tmp_path / "data" / "mine.h5"
    path.parent.mkdir()
    write_recordings(path, {s: [(rec(k % 2), k % 2) for k in range(m)] for s, m in (("train", 40), ("test", 20))},
                     sensor_size=[10, 1, 1], n_classes=2)
    cache = str(tmp_path / "cache")
    monkeypatch.chdir(tmp_path / "data")
    assert main(["train", "--dataset", "mine.h5", "--out", str(tmp_path / "run"), "--data-root", cache,
                 "--hidden", "8", "--epochs", "3", "--no-progress", "--json", str(tmp_path / "m.json")]) == 0
    import json

    trained = json.loads((tmp_path / "m.json").read_text())["test_accuracy"]
    monkeypatch.chdir(tmp_path)                      # elsewhere: the stored path is absolute
    assert main(["train", "--out", str(tmp_path / "run"), "--resume", "--epochs", "4", "--data-root", cache,
                 "--no-progress", "--json", str(tmp_path / "m.json")]) == 0      # resumes with its own dataset
    trained = json.loads((tmp_path / "m.json").read_text())["test_accuracy"]
    assert main(["eval", str(tmp_path / "run" / "model.h5"), "--data-root", cache,
                 "--json", str(tmp_path / "e.json")]) == 0
    got = json.loads((tmp_path / "e.json").read_text())
    assert got["dataset"] == str(path) and got["accuracy"] == trained


# ---------------------------------------------------------------- files: mode, full disk
def test_files_get_the_umask_mode(run):
    mode = os.stat(run / "metrics.json").st_mode & 0o777
    mask = os.umask(0)
    os.umask(mask)
    assert mode == 0o666 & ~mask


def test_disk_full_keeps_the_existing_model(run, data_root, monkeypatch, capsys):
    import spikelfp.io as sio

    model = run / "model.h5"
    before = _sha(model)
    real = os.replace

    def full(src, dst):
        if str(dst).endswith("model.h5"):
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real(src, dst)

    monkeypatch.setattr(sio.os, "replace", full)
    assert main(["train", "--out", str(run), "--overwrite", "--data-root", data_root, *SMALL]) == 2
    _one_error_line(capsys, "disk full")
    assert _sha(model) == before
    assert not [f for f in os.listdir(run) if f.endswith(".tmp")]


# ---------------------------------------------------------------- signals and pipes (subprocesses)
def _spawn(argv, **kw):
    return subprocess.Popen([sys.executable, "-m", "spikelfp", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=foreground_sigint, **kw)


def _kill(p):
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(p.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        p.communicate(timeout=10)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_training_keeps_a_resumable_run(tmp_path, data_root, sig):
    out = tmp_path / "r"
    p = _spawn(["train", "--out", str(out), "--data-root", data_root, "--hidden", "16", "--epochs", "200",
                "--no-progress"])
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (out / "model.h5").exists() and p.poll() is None:
            time.sleep(0.05)
        assert (out / "model.h5").exists(), p.stderr.read() if p.poll() is not None else "no checkpoint"
        time.sleep(0.2)
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
        assert p.returncode == 130, err
        assert "Traceback" not in err and "interrupted" in err
        assert not [f for f in os.listdir(out) if f.endswith(".tmp")]
    finally:
        _kill(p)
    assert main(["train", "--out", str(out), "--resume", "--data-root", data_root, "--no-progress",
                 "--epochs", str(_epochs(out) + 1)]) == 0


def _epochs(out):
    from spikelfp.io import load_checkpoint

    return len(load_checkpoint(out / "model.h5").history)


def test_closed_stdout_is_no_traceback(data_root, monkeypatch, capsys):
    """Like ``spikelfp datasets | head -0``: the reader is gone before the first line."""
    r, w = os.pipe()
    os.close(r)
    dead = os.fdopen(w, "w")
    monkeypatch.setattr(sys, "stdout", dead)
    try:
        assert main(["datasets", "--data-root", data_root]) == 0
    finally:
        monkeypatch.undo()
        with contextlib.suppress(BrokenPipeError):
            dead.close()
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("field,value,needle", [
    ("t", np.array([10.0, np.nan, 30.0, 40.0]), "NaN"),
    ("t", np.array([-5.0, 20.0, 30.0, 40.0]), "negative"),
    ("t", np.array([30.0, 20.0, 10.0, 40.0]), "not ascending within sample 0"),
    ("x", np.array([1.0, 2.0, 3.0, 1.0]), "must be integers"),
    ("sample_ptr", np.array([0.0, 3.0, 4.0]), "must be integers"),
])
def test_bad_recordings_fields_are_refused(tmp_path, field, value, needle):
    import h5py
    from spikelfp.datasets.registry import DatasetError

    from spikelfp import datasets

    path = tmp_path / "rec.h5"
    arrays = {"t": np.array([10.0, 20.0, 30.0, 5.0]), "x": np.array([1, 2, 3, 1]),
              "sample_ptr": np.array([0, 3, 4]), "labels": np.array([0, 1])}
    with h5py.File(path, "w") as f:
        f.attrs["sensor_size"] = [4]
        for split in ("train", "test"):
            for k, v in {**arrays, field: value}.items():
                f.create_dataset(f"{split}/{k}", data=v)
    with pytest.raises(DatasetError, match=needle) as e:
        datasets.load(str(path), root=str(tmp_path / "cache"))
    assert str(path) in str(e.value)


def test_bad_numbers_on_the_command_line(capsys):
    for argv, needle in [(["train", "--hidden", ""], "--hidden"), (["train", "--eps", "inf"], "(0, 1]"),
                         (["train", "--init-min-rate", "-5"], "rate"), (["train", "--seed", "-1"], "--seed"),
                         (["train", "--threshold", "1e-300"], "[1e-6, 1e6]"), (["train", "--beta", "nan"], "[0, 1]"),
                         (["train", "--arch", "-".join(["d4"] * 1000)], "at most 64")]:
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err


def test_corrupt_checkpoint_fields_name_the_file(run, tmp_path):
    import shutil

    import h5py

    from spikelfp.io import ModelFileError, load_checkpoint

    for attr, value, needle in [("binning", '{"bin_us": 1000, "nonsense": 3}', "binning"),
                                ("history", '{"not": "a list"}', "history"), ("config", "{bad json", "config")]:
        p = tmp_path / f"{attr}.h5"
        shutil.copy(run / "model.h5", p)
        with h5py.File(p, "r+") as f:
            f.attrs[attr] = value
        with pytest.raises(ModelFileError, match=needle) as e:
            load_checkpoint(p)
        assert str(p) in str(e.value)
    for attr, value, needle in [("config", "[1, 2]", "training config is corrupt"),
                                ("binning", '{"bin_us": 1000, "n_bins": 1000000000}', "at most 1,000,000")]:
        p = tmp_path / f"{attr}-2.h5"
        shutil.copy(run / "model.h5", p)
        with h5py.File(p, "r+") as f:
            f.attrs[attr] = value
        with pytest.raises(ModelFileError, match=needle):
            load_checkpoint(p)
    p = tmp_path / "huge.h5"                      # a weight declared 10^6 x 10^6: refused unread
    shutil.copy(run / "model.h5", p)
    with h5py.File(p, "r+") as f:
        del f["network/layer_0/weight"]
        f.create_dataset("network/layer_0/weight", shape=(10**6, 10**6), dtype="f8")
    with pytest.raises(ModelFileError, match="GiB of memory available"):
        load_checkpoint(p)
    fifo = tmp_path / "fifo.h5"
    os.mkfifo(fifo)
    with pytest.raises(ModelFileError, match="not a regular file"):
        load_checkpoint(fifo)
    p = tmp_path / "intw.h5"
    shutil.copy(run / "model.h5", p)
    with h5py.File(p, "r+") as f:
        w = f["network/layer_0/weight"][()]
        del f["network/layer_0/weight"]
        f["network/layer_0/weight"] = (w * 100).astype(np.int64)
    with pytest.raises(ModelFileError, match="not floats"):
        load_checkpoint(p)


@pytest.mark.parametrize("attrs,needle", [
    ({"sensor_size": [10**9]}, "GiB"), ({"sensor_size": [4], "n_classes": 10**8}, "GiB"),
    ({"sensor_size": [4], "bin_us": 1000.0, "n_bins": 10**7}, "GiB"),
    ({"sensor_size": [4], "bin_us": -1.0, "n_bins": 10}, "binning")])
def test_oversized_or_invalid_recordings_fields(tmp_path, capsys, attrs, needle):
    import h5py

    path = tmp_path / "big.h5"
    with h5py.File(path, "w") as f:
        for k, v in attrs.items():
            f.attrs[k] = v
        for split in ("train", "test"):
            for k, v in {"t": [10.0, 20.0], "x": [1, 2], "sample_ptr": [0, 1, 2], "labels": [0, 1]}.items():
                f.create_dataset(f"{split}/{k}", data=np.array(v))
    for cmd in (["train", "--out", str(tmp_path / "r")], ["bench", "lfp-vs-sg", "--out", str(tmp_path / "b")]):
        assert main([*cmd, "--dataset", str(path), "--data-root", str(tmp_path / "c"), "--epochs", "1",
                     "--no-progress"]) == 2
        line = _one_error_line(capsys, needle)
        assert str(path) in line or "--hidden" in line


# ---------------------------------------------------------------- operating-system refusals, one line each
def test_read_only_destinations_are_refused_before_training(run, tmp_path, data_root, monkeypatch, capsys):
    import spikelfp.cli as cli

    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.access
    monkeypatch.setattr(cli.os, "access", lambda p, m: False if str(p).startswith(str(ro)) else real(p, m))
    t0 = time.time()
    for argv in (["train", "--out", str(ro / "new" / "run"), *SMALL],
                 ["train", "--out", str(tmp_path / "ok"), "--json", str(ro / "m.json"), *SMALL],
                 ["eval", str(run / "model.h5"), "--predictions", str(ro / "p.csv")],
                 ["export", str(run / "model.h5"), "--to", "nir", "--out", str(ro / "m.nir")]):
        assert main([*argv, "--data-root", data_root]) == 2
        _one_error_line(capsys, str(ro), "not writable")
    assert time.time() - t0 < 30 and not (tmp_path / "ok").exists() and os.listdir(ro) == []


@pytest.mark.parametrize("err, needle", [(errno.EROFS, "read-only file system"), (errno.EFBIG, "ulimit -f"),
                                         (errno.EACCES, "permission denied"), (errno.ELOOP, "symbolic links")])
def test_os_refusals_while_writing_are_one_line(run, data_root, monkeypatch, capsys, err, needle):
    import spikelfp.io as sio

    model = run / "model.h5"
    before = _sha(model)
    real = os.replace

    def refuse(src, dst):
        if str(dst).endswith("model.h5"):
            raise OSError(err, os.strerror(err), str(dst))
        return real(src, dst)

    monkeypatch.setattr(sio.os, "replace", refuse)
    assert main(["train", "--out", str(run), "--overwrite", "--data-root", data_root, *SMALL]) == 2
    _one_error_line(capsys, needle, str(model))
    assert _sha(model) == before and not [f for f in os.listdir(run) if f.endswith(".tmp")]


def test_a_data_root_that_is_a_link_loop_is_one_line(tmp_path, capsys):
    loop = tmp_path / "loop"
    os.symlink(loop, loop)
    assert main(["train", "--data-root", str(loop), "--out", str(tmp_path / "r"), *SMALL]) == 2
    _one_error_line(capsys, "loop")


def test_out_of_memory_is_one_line(tmp_path, data_root, monkeypatch, capsys):
    import spikelfp.train as st

    def boom(*a, **k):
        raise MemoryError()

    monkeypatch.setattr(st.Trainer, "fit", boom)
    assert main(["train", "--out", str(tmp_path / "r"), "--data-root", data_root, *SMALL]) == 2
    _one_error_line(capsys, "out of memory", "--batch-size")


def test_diverging_training_names_the_learning_rate(tmp_path, data_root, capsys):
    assert main(["train", "--out", str(tmp_path / "r"), "--optimizer", "sgd", "--lr", "1e30", "--data-root",
                 data_root, *SMALL]) == 2
    _one_error_line(capsys, "training diverged in epoch 1", "--lr")


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_dataset_that_is_not_a_regular_file_is_refused_without_opening_it(tmp_path, capsys, kind):
    path = tmp_path / "rec.h5"
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    t0 = time.time()
    assert main(["train", "--dataset", str(path), "--out", str(tmp_path / "r"), *SMALL]) == 2
    _one_error_line(capsys, str(path), "not a regular file" if kind == "fifo" else "is a folder")
    assert time.time() - t0 < 30


def test_a_killed_cache_write_leaves_nothing_for_long(tmp_path, digits):
    from spikelfp.datasets.registry import cache_path, get_spec

    from spikelfp import datasets

    spec = get_spec("digits-saccade")
    folder = os.path.dirname(cache_path(spec, spec.default_binning, str(tmp_path))[0])
    datasets.load("digits-saccade", root=str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    orphan = os.path.join(folder, f".binned-0123.h5.{dead}.abcd.tmp")
    live = os.path.join(folder, f".binned-0123.h5.{os.getppid()}.efgh.tmp")      # a live writer's: kept
    for p in (orphan, live):
        open(p, "wb").close()
    datasets.load("digits-saccade", root=str(tmp_path))
    assert not os.path.exists(orphan) and os.path.exists(live)


def test_built_folders_follow_the_umask(tmp_path, digits):
    from spikelfp.datasets.saccade_sets import recordings_dir

    from spikelfp import datasets

    old = os.umask(0o022)
    try:
        datasets.load("digits-saccade", root=str(tmp_path))
    finally:
        os.umask(old)
    assert oct(os.stat(recordings_dir(str(tmp_path), 0, "digits-saccade")).st_mode & 0o777) == "0o755"


def _h5(path, attrs=None, arrays=None):
    import h5py

    base = {"t": np.array([10.0, 20.0]), "x": np.array([1, 2]), "sample_ptr": np.array([0, 1, 2]),
            "labels": np.array([0, 1])}
    with h5py.File(path, "w") as f:
        f.attrs["sensor_size"] = [4]
        for k, v in (attrs or {}).items():
            f.attrs[k] = v
        for split in ("train", "test"):
            for k, v in {**base, **(arrays or {})}.items():
                if isinstance(v, tuple):             # (shape, dtype): declared, never written
                    f.create_dataset(f"{split}/{k}", shape=v[0], dtype=v[1])
                else:
                    f.create_dataset(f"{split}/{k}", data=v)


@pytest.mark.parametrize("case, needle", [
    ("compound attr", "attribute 'n_classes' must be one integer"),
    ("reference attr", "attribute 'n_classes'"),
    ("2-D sensor", "attribute 'sensor_size' must be 1 to 3 positive integers"),
    ("bad classes JSON", "attribute 'classes' is not JSON"),
    ("huge dataset", "GiB of memory available"),
    ("string times", "/train/t holds strings"),
    ("hdf5 named npz", "is an HDF5 file named .npz"),
    ("npz named h5", "rename it to .npz"),
    ("npz class count array", "attribute 'n_classes' must be one integer"),
    ("shd without labels", "without /labels"),
])
def test_malformed_recordings_files_are_one_line(tmp_path, capsys, case, needle):
    import h5py

    path = tmp_path / ("rec.npz" if case in ("hdf5 named npz", "npz class count array") else "rec.h5")
    if case == "compound attr":
        _h5(path, {"n_classes": np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f4")])})
    elif case == "reference attr":
        _h5(path)
        with h5py.File(path, "a") as f:
            f.attrs["n_classes"] = f["train"].ref
    elif case == "2-D sensor":
        _h5(path, {"sensor_size": np.ones((2, 2), int)})
    elif case == "bad classes JSON":
        _h5(path, {"classes": "[a, b"})
    elif case == "huge dataset":
        _h5(path, arrays={"t": ((10**12,), "f8")})
    elif case == "string times":
        _h5(path, arrays={"t": np.array([b"10", b"20"])})
    elif case == "hdf5 named npz":
        _h5(path)
    elif case == "npz named h5":
        np.savez(tmp_path / "x.npz", sensor_size=[4])
        os.replace(tmp_path / "x.npz", path)
    elif case == "npz class count array":
        arrays = {f"{s}_{k}": v for s in ("train", "test") for k, v in
                  {"t": np.array([10.0, 20.0]), "x": np.array([1, 2]), "sample_ptr": np.array([0, 1, 2]),
                   "labels": np.array([0, 1])}.items()}
        np.savez(path, sensor_size=[4], n_classes=np.array([2, 3]), **arrays)
    elif case == "shd without labels":
        with h5py.File(path, "w") as f:
            f.create_dataset("spikes/times", data=np.zeros(2))
    t0 = time.time()
    assert main(["train", "--dataset", str(path), "--out", str(tmp_path / "r"), "--data-root", str(tmp_path / "c"),
                 *SMALL]) == 2
    _one_error_line(capsys, needle, str(path))
    assert time.time() - t0 < 60 and not (tmp_path / "r").exists()


def test_what_a_checkpoint_will_hold_is_checked_before_training(small_digits, tmp_path, monkeypatch):
    """A dataset name HDF5 cannot store (a lone surrogate from a mis-decoded path) fails at the
    start, before the first epoch's work, and leaves no file."""
    import spikelfp.train as st
    from spikelfp.train import TrainConfig, Trainer

    train, test = small_digits
    calls = []
    real = st.Trainer.warm_up
    monkeypatch.setattr(st.Trainer, "warm_up", lambda self, *a: calls.append(1) or real(self, *a))
    cfg = TrainConfig(hidden=[8], epochs=1, dataset="bad\udcff.h5")
    with pytest.raises((UnicodeEncodeError, TypeError, ValueError)):
        Trainer(cfg, progress=False).fit(train, test, str(tmp_path / "r"))
    assert calls == [] and not (tmp_path / "r" / "model.h5").exists()
