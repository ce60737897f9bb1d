"""Every registered dataset, from tiny files in its real on-disk format, through tonic's classes.

Nothing here touches the network: every load runs offline (``download=False``)."""

import io
import os
import tarfile
import zipfile

import h5py
import numpy as np
import pytest
import tonic
from spikelfp.datasets.base import write_cache
from spikelfp.datasets.custom import write_recordings
from spikelfp.datasets.registry import DatasetError, cache_path, get_spec
from spikelfp.datasets.saccade import encode_nmnist
from spikelfp.datasets.tonic_sets import DatasetNotAvailable

from spikelfp import datasets
from spikelfp.train import TrainConfig, Trainer


def _zip_of(path_zip, files: dict):
    with zipfile.ZipFile(path_zip, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)


def _tar_of(path_tar, root_dir, arc_root):
    with tarfile.open(path_tar, "w:gz") as t:
        t.add(root_dir, arcname=arc_root)


def _events_xy(rng, n, W, H, dur_us):
    return (rng.integers(0, W, n), rng.integers(0, H, n), np.sort(rng.integers(0, dur_us, n)), rng.integers(0, 2, n))


def make_nmnist(root, rng, per_class=2):
    base = root / "NMNIST"
    for split, folder in (("train", "Train"), ("test", "Test")):
        files = {}
        for label in range(10):
            for k in range(per_class):
                x, y, t, p = _events_xy(rng, 300, 34, 34, 300_000)
                data = encode_nmnist(x, y, t, p)
                rel = f"{folder}/{label}/{label * 100 + k:05d}.bin"
                (base / rel).parent.mkdir(parents=True, exist_ok=True)
                (base / rel).write_bytes(data)
                files[rel] = data
        _zip_of(base / ("train.zip" if split == "train" else "test.zip"), files)
    return base


def make_hsd(root, rng, name="SHD", prefix="shd", n_classes=20, n=12, bad_label=None):
    base = root / name
    base.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        fname = f"{prefix}_{split}.h5"
        buf = io.BytesIO()
        with h5py.File(buf, "w") as f:
            vf = h5py.vlen_dtype(np.float32)
            vu = h5py.vlen_dtype(np.uint16)
            times = f.create_dataset("spikes/times", (n,), dtype=vf)
            units = f.create_dataset("spikes/units", (n,), dtype=vu)
            for k in range(n):
                m = int(rng.integers(50, 200))
                times[k] = np.sort(rng.uniform(0, 0.9, m)).astype(np.float32)
                units[k] = rng.integers(0, 700, m).astype(np.uint16)
            labels = np.arange(n) % n_classes
            if bad_label is not None:
                labels[0] = bad_label
            f.create_dataset("labels", data=labels.astype(np.uint16))
            f.create_dataset("extra/keys", data=np.array([f"w{k}".encode() for k in range(n_classes)]))
            f.create_dataset("extra/speaker", data=np.zeros(n, np.uint16))
        (base / fname).write_bytes(buf.getvalue())
        _zip_of(base / f"{fname}.zip", {fname: buf.getvalue()})
    return base


def make_dvs_gesture(root, rng, tmp):
    base = root / "DVSGesture"
    base.mkdir(parents=True, exist_ok=True)
    for folder, tarname in (("ibmGestureTrain", "ibmGestureTrain.tar.gz"),
                            ("ibmGestureTest", "ibmGestureTest.tar.gz")):
        for user in ("user01_fluorescent", "user02_led"):
            d = base / folder / user
            d.mkdir(parents=True, exist_ok=True)
            for label in range(11):
                x, y, t, p = _events_xy(rng, 400, 128, 128, 1500)      # t in ms, as tonic's files
                np.save(d / f"{label}.npy", np.stack([x, y, p, t], 1).astype(np.int64))
        _tar_of(base / tarname, base / folder, folder)
    return base


def make_poker(root, rng, tmp):
    """Only the archives: POKER-DVS is extracted by spikelfp (tonic 1.7 does not ship them)."""
    base = root / "POKERDVS"
    base.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        src = tmp / f"src_{split}" / f"pips_{split}"
        for cls in ("cl", "he", "di", "sp"):
            (src / cls).mkdir(parents=True, exist_ok=True)
            for k in range(3):
                x, y, t, p = _events_xy(rng, 200, 35, 35, 20_000)
                np.save(src / cls / f"{k}.npy", np.stack([t, x, y, p], 1).astype(np.int64))
        _tar_of(base / f"pips_{split}.tar.gz", src, f"pips_{split}")
    return base


def _train_tiny(train, test):
    m = Trainer(TrainConfig(hidden=[8], epochs=1, batch_size=8, seed=0), progress=False).fit(train, test)
    assert 0.0 <= m["test_accuracy"] <= 1.0 and m["epochs"] == 1


@pytest.mark.parametrize("name", ["nmnist", "shd", "ssc", "dvs-gesture", "poker-dvs"])
def test_dataset_from_real_format_files_trains_end_to_end(name, tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    {"nmnist": lambda: make_nmnist(root, rng),
     "shd": lambda: make_hsd(root, rng),
     "ssc": lambda: make_hsd(root, rng, "SSC", "ssc", n_classes=35, n=36),
     "dvs-gesture": lambda: make_dvs_gesture(root, rng, tmp_path),
     "poker-dvs": lambda: make_poker(root, rng, tmp_path)}[name]()
    spec = get_spec(name)
    # tonic's own class reads our files
    raw = spec.splits(str(root), None, False)
    assert isinstance(raw["train"], getattr(tonic.datasets, spec.raw_folder))
    ev, label = raw["train"][0]
    assert len(ev) > 0 and 0 <= int(label) < spec.n_classes
    train, test = datasets.load(name, root=str(root), download=False)
    assert train.n_in == spec.input_size() and len(train) == len(raw["train"])
    assert train.steps.size > 0 and train.n_classes == spec.n_classes
    _train_tiny(train, test)
    assert os.path.exists(cache_path(spec, spec.default_binning, str(root))[0])


def test_missing_dataset_offline_names_the_archive_and_folder(tmp_path):
    with pytest.raises(DatasetNotAvailable, match=r"Place shd_train\.h5\.zip \(md5 f3252aeb.*\) in .*/SHD/"):
        datasets.load("shd", root=str(tmp_path), download=False)


def test_truncated_bin_and_empty_recording_name_the_file(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "data"
    base = make_nmnist(root, rng, per_class=1)
    victim = base / "Train" / "3" / "00300.bin"
    victim.write_bytes(victim.read_bytes()[:-2])
    with pytest.raises(DatasetError, match=r"00300\.bin: truncated"):
        datasets.load("nmnist", root=str(root), download=False)
    victim.write_bytes(b"")
    with pytest.raises(DatasetError, match=r"00300\.bin: empty recording"):
        datasets.load("nmnist", root=str(root), download=False)


def test_truncated_h5_and_bad_labels(tmp_path):
    rng = np.random.default_rng(2)
    root = tmp_path / "data"
    base = make_hsd(root, rng, bad_label=25)
    with pytest.raises(DatasetError, match="label 25 outside 0..19"):
        datasets.load("shd", root=str(root), download=False)
    data = (base / "shd_train.h5").read_bytes()
    (base / "shd_train.h5").write_bytes(data[: len(data) // 3])
    with pytest.raises((DatasetNotAvailable, DatasetError), match="shd_train.h5"):
        datasets.load("shd", root=str(root), download=False)


def test_failed_build_leaves_the_cache_untouched(tmp_path):
    rng = np.random.default_rng(3)
    root = tmp_path / "data"
    base = make_nmnist(root, rng, per_class=1)
    spec = get_spec("nmnist")
    path, key = cache_path(spec, spec.default_binning, str(root))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    stale = datasets.EventDataset.from_samples([(np.array([0], np.int32), np.array([1], np.int32))], [0], 30, 578, 10)
    write_cache(path, {"train": stale, "test": stale}, {**key, "library_version": "0.0.0"})
    before = open(path, "rb").read()
    (base / "Test" / "5" / "00500.bin").write_bytes(b"\x01\x02\x03")
    with pytest.raises(DatasetError):
        datasets.load("nmnist", root=str(root), download=False)
    assert open(path, "rb").read() == before
    assert [p for p in os.listdir(os.path.dirname(path)) if p.endswith(".tmp")] == []


def test_cache_follows_the_recordings_on_disk(tmp_path):
    """Deleting, adding or editing recordings rebuilds the cache (it is keyed on the files)."""
    rng = np.random.default_rng(4)
    root = tmp_path / "data"
    base = make_nmnist(root, rng, per_class=2)
    train, test = datasets.load("nmnist", root=str(root), download=False)
    assert len(train) == 20
    path = cache_path(get_spec("nmnist"), get_spec("nmnist").default_binning, str(root))[0]
    again, _ = datasets.load("nmnist", root=str(root), download=False)
    assert np.array_equal(again.channels, train.channels)            # unchanged files: the cache is used
    for label in range(5):                                             # delete half of the training recordings
        for f in (base / "Train" / str(label)).iterdir():
            f.unlink()
    fewer, _ = datasets.load("nmnist", root=str(root), download=False)
    assert len(fewer) == 10 and sorted(set(fewer.labels.tolist())) == [5, 6, 7, 8, 9]
    # edit one recording (same size, new content): its sample changes, the rest stay
    rec = sorted((base / "Train" / "7").iterdir())[0]
    x, y, t, p = _events_xy(rng, 300, 34, 34, 300_000)
    rec.write_bytes(encode_nmnist(x, y, t, p))
    os.utime(rec, ns=(rec.stat().st_atime_ns, rec.stat().st_mtime_ns + 10**9))
    edited, _ = datasets.load("nmnist", root=str(root), download=False)
    assert len(edited) == 10 and not np.array_equal(edited.channels, fewer.channels)
    assert [p for p in os.listdir(os.path.dirname(path)) if p.startswith("binned-")] == [os.path.basename(path)]


@pytest.mark.parametrize("ext", [".h5", ".npz"])
def test_own_recordings_file(tmp_path, ext):
    rng = np.random.default_rng(4)

    def rec(n):
        ev = np.zeros(n, dtype=[("t", np.float64), ("x", np.int64), ("p", np.int64)])
        ev["t"] = np.sort(rng.uniform(0, 50_000, n))
        ev["x"] = rng.integers(0, 64, n)
        ev["p"] = rng.integers(0, 2, n)
        return ev

    splits = {"train": [(rec(100), k % 3) for k in range(12)], "test": [(rec(80), k % 3) for k in range(6)]}
    path = tmp_path / f"mine{ext}"
    if ext == ".h5":
        write_recordings(path, splits, sensor_size=[64, 1, 2], n_classes=3)
    else:
        arrays = {"sensor_size": np.array([64, 1, 2]), "n_classes": np.array(3)}
        for s, items in splits.items():
            arrays[f"{s}_t"] = np.concatenate([e["t"] for e, _ in items])
            arrays[f"{s}_x"] = np.concatenate([e["x"] for e, _ in items])
            arrays[f"{s}_p"] = np.concatenate([e["p"] for e, _ in items])
            arrays[f"{s}_sample_ptr"] = np.r_[0, np.cumsum([len(e) for e, _ in items])]
            arrays[f"{s}_labels"] = np.array([lab for _, lab in items])
        np.savez(path, **arrays)
    train, test = datasets.load(str(path), root=str(tmp_path / "cache"))
    assert (len(train), len(test), train.n_in, train.n_classes, train.n_steps) == (12, 6, 128, 3, 30)
    _train_tiny(train, test)
    # loaded again, the valid cache serves it: the file's events are not read (labels and, with no
    # stored binning, the training times for the default grid only)
    from spikelfp.datasets import custom

    asked = []
    real = custom._read

    def spy(p, fields=custom.FIELDS):
        asked.append(tuple(fields))
        return real(p, fields)

    import unittest.mock

    with unittest.mock.patch.object(custom, "_read", spy):
        again, _ = datasets.load(str(path), root=str(tmp_path / "cache"))
    assert custom.FIELDS not in asked and set(asked) <= {("labels",), ("t",)}
    np.testing.assert_array_equal(again.channels, train.channels)


def test_own_recordings_bad_layouts(tmp_path):
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f.attrs["sensor_size"] = [8]
        g = f.create_group("train")
        g.create_dataset("t", data=[1.0, 2.0])
        g.create_dataset("x", data=[0, 1])
        g.create_dataset("labels", data=[0])
        f.create_group("test")
    with pytest.raises(DatasetError, match="sample_ptr is missing"):
        datasets.load(str(path), root=str(tmp_path))
    with h5py.File(path, "a") as f:
        f["train"].create_dataset("sample_ptr", data=[0, 5])
        for k in ("t", "x", "labels"):
            f["test"].create_dataset(k, data=f["train"][k][()])
        f["test"].create_dataset("sample_ptr", data=[0, 2])
    with pytest.raises(DatasetError, match="sample_ptr must have"):
        datasets.load(str(path), root=str(tmp_path))
    (tmp_path / "junk.h5").write_text("nope")
    with pytest.raises(DatasetError, match="not a readable HDF5"):
        datasets.load(str(tmp_path / "junk.h5"), root=str(tmp_path))


MAKERS = {"nmnist": lambda root, rng, tmp: make_nmnist(root, rng),
          "shd": lambda root, rng, tmp: make_hsd(root, rng),
          "ssc": lambda root, rng, tmp: make_hsd(root, rng, "SSC", "ssc", n_classes=35, n=36),
          "dvs-gesture": make_dvs_gesture,
          "poker-dvs": make_poker}


@pytest.fixture
def no_network(monkeypatch):
    """Any download attempt fails the test (tonic's and urllib's)."""
    import urllib.request

    import tonic.download_utils as du

    def refuse(*a, **k):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(du, "download_url", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def _extracted(spec, root):
    from spikelfp.datasets import tonic_sets as ts

    src = {"NMNIST": ts.NMNIST, "SHD": ts.SHD, "SSC": ts.SSC, "DVSGesture": ts.DVS_GESTURE,
           "POKERDVS": ts.POKER_DVS}[spec.raw_folder]
    return src, [root / spec.raw_folder / src.archives[s].extracted for s in ("train", "test")]


@pytest.mark.parametrize("download", [False, True])
@pytest.mark.parametrize("name", sorted(MAKERS))
def test_hand_placed_archive_is_extracted(name, download, tmp_path, no_network):
    """Only the official archives on disk: they are extracted, with or without --offline, and the
    data is what the extracted files give."""
    import shutil

    rng = np.random.default_rng(5)
    root = tmp_path / "data"
    MAKERS[name](root, rng, tmp_path)
    spec = get_spec(name)
    src, extracted = _extracted(spec, root)
    for p in extracted:
        if p.exists():
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    train, test = datasets.load(name, root=str(root), download=download)
    assert all(p.exists() for p in extracted)
    assert not [f for f in os.listdir(root / spec.raw_folder) if f.startswith(".extracting-")]
    assert len(train) > 0 and len(test) > 0 and train.n_in == spec.input_size()


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_extracted_files_without_archive_are_used_online_too(name, tmp_path, no_network):
    rng = np.random.default_rng(6)
    root = tmp_path / "data"
    MAKERS[name](root, rng, tmp_path)
    spec = get_spec(name)
    src, extracted = _extracted(spec, root)
    if name == "poker-dvs":                       # make_poker writes only archives: extract them first
        datasets.load(name, root=str(root), download=False)
    for s in ("train", "test"):
        (root / spec.raw_folder / src.archives[s].filename).unlink()
    train, test = datasets.load(name, root=str(root), download=True)
    assert len(train) > 0 and len(test) > 0


def test_corrupt_or_wrong_archive_is_one_message(tmp_path, no_network):
    base = tmp_path / "data" / "SHD"
    base.mkdir(parents=True)
    (base / "shd_train.h5.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DatasetNotAvailable, match=r"shd_train\.h5\.zip: corrupt, truncated.*md5 f3252aeb"):
        datasets.load("shd", root=str(tmp_path / "data"), download=False)
    _zip_of(base / "shd_train.h5.zip", {"readme.txt": b"hello"})
    with pytest.raises(DatasetNotAvailable, match=r"holds \['readme.txt'\], not shd_train\.h5"):
        datasets.load("shd", root=str(tmp_path / "data"), download=True)
    assert sorted(os.listdir(base)) == ["shd_train.h5.zip"]          # nothing half-extracted left


def test_shd_layout_file_by_path_and_a_folder_path(tmp_path):
    rng = np.random.default_rng(7)
    base = make_hsd(tmp_path / "data", rng)
    via_tonic = datasets.load("shd", root=str(tmp_path / "data"), download=False)
    by_path = datasets.load(str(base / "shd_train.h5"), root=str(tmp_path / "cache"))
    for a, b in zip(via_tonic, by_path):                 # the same events as tonic's SHD class gives
        assert np.array_equal(a.labels, b.labels) and np.array_equal(a.sample_ptr, b.sample_ptr)
        assert np.array_equal(a.channels, b.channels) and np.array_equal(a.steps, b.steps)
    assert by_path[0].classes[:2] == ["w0", "w1"] and by_path[0].n_classes == 20
    with h5py.File(base / "shd_test.h5", "a") as f:           # NaN times: refused as in any recordings file
        t = f["spikes/times"][2].copy()
        t[0] = np.nan
        f["spikes/times"][2] = t
    with pytest.raises(DatasetError, match="NaN"):
        datasets.load(str(base / "shd_train.h5"), root=str(tmp_path / "cache2"))
    (base / "shd_test.h5").unlink()
    with pytest.raises(DatasetError, match="one split of an SHD/SSC-layout dataset"):
        datasets.load(str(base / "shd_train.h5"), root=str(tmp_path / "cache"))
    with pytest.raises(DatasetError, match="is a folder"):
        datasets.load(str(base) + os.sep, root=str(tmp_path / "cache"))


@pytest.mark.parametrize("flaw, needle", [("nan", "finite"), ("labels", "one of each per sample")])
def test_flawed_shd_files_are_refused_not_silently_trimmed(tmp_path, flaw, needle):
    rng = np.random.default_rng(8)
    base = make_hsd(tmp_path / "data", rng)
    with h5py.File(base / "shd_train.h5", "a") as f:
        if flaw == "nan":
            t = f["spikes/times"][3].copy()
            t[1] = np.nan
            f["spikes/times"][3] = t
        else:
            labels = f["labels"][()]
            del f["labels"]
            f["labels"] = labels[:-2]
    with pytest.raises(DatasetError, match=needle):
        datasets.load("shd", root=str(tmp_path / "data"), download=False)


def test_unsafe_archive_is_refused(tmp_path):
    base = tmp_path / "data" / "POKERDVS"
    base.mkdir(parents=True)
    with tarfile.open(base / "pips_train.tar.gz", "w:gz") as t:
        info = tarfile.TarInfo("../evil.npy")
        data = b"x"
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    with pytest.raises(DatasetNotAvailable, match="outside"):
        datasets.load("poker-dvs", root=str(tmp_path / "data"), download=False)
    assert not (tmp_path / "data" / "evil.npy").exists()


def test_data_path_needs_no_torch(data_root, digits):
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None\n"
            "from spikelfp import datasets\n"
            f"tr, te = datasets.load('digits-saccade', root={data_root!r})\n"
            "b = tr.batch([0, 1]); print(b.n_events > 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "True", r.stderr[-2000:]


def test_offline_message_names_every_missing_archive(tmp_path):
    with pytest.raises(DatasetNotAvailable) as e:
        datasets.load("shd", root=str(tmp_path), download=False)
    assert "shd_train.h5.zip" in str(e.value) and "shd_test.h5.zip" in str(e.value)
    from spikelfp.cli import main

    assert main(["datasets", "--data-root", str(tmp_path), "--json", str(tmp_path / "d.json")]) == 0
    import json

    rows = {r["name"]: r for r in json.loads((tmp_path / "d.json").read_text())["datasets"]}
    assert {f["archive"] for f in rows["shd"]["files"]} == {"shd_train.h5.zip", "shd_test.h5.zip"}
    assert rows["shd"]["files"][0]["md5"] == "f3252aeb598ac776c1b526422d90eecb"
    assert "spoken-digits" in rows and rows["spoken-digits"]["offline"]
