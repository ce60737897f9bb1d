import io
import os

import h5py
import numpy as np
import numpy_reference as ref
import pytest
import tonic
from spikelfp.datasets import Binning, bin_events
from spikelfp.datasets.base import EventDataset, read_cache, write_cache
from spikelfp.datasets.saccade import emulate_saccades, encode_nmnist
from spikelfp.datasets.saccade_sets import split_indices

from spikelfp import datasets
from spikelfp.events import EventBatch

FIXTURE_NMNIST = os.path.join(os.path.dirname(__file__), "fixtures", "sample_nmnist.bin")   # see fixtures/README.md


def test_real_nmnist_fixture_loads_through_tonic():
    path = os.path.abspath(FIXTURE_NMNIST)
    if not os.path.exists(path):
        pytest.fail(f"fixture missing: {path}")
    ev = tonic.io.read_mnist_file(path, dtype=tonic.datasets.NMNIST.dtype)
    assert len(ev) == 4325
    assert ev["x"].min() >= 0 and ev["x"].max() <= 33 and ev["y"].min() >= 0 and ev["y"].max() <= 33
    # and our writer reproduces the file's bytes exactly from the decoded events
    with open(path, "rb") as fh:
        raw = fh.read()
    assert encode_nmnist(ev["x"], ev["y"], ev["t"], ev["p"]) == raw


def test_emulator_is_deterministic_and_nmnist_like():
    from sklearn.datasets import load_digits

    img = load_digits().images[3] / 16
    a = emulate_saccades(img, np.random.default_rng(4))
    b = emulate_saccades(img, np.random.default_rng(4))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    x, y, t, p = a
    assert 2000 < len(t) < 9000                       # N-MNIST: ~4,300 events per sample
    assert np.all(np.diff(t) >= 0) and t.max() < 300_000
    assert x.max() <= 33 and y.max() <= 33 and set(np.unique(p)) == {0, 1}
    # the bytes go through tonic's own N-MNIST reader unchanged
    back = tonic.io.read_mnist_file(io.BytesIO(encode_nmnist(x, y, t, p)), dtype=tonic.datasets.NMNIST.dtype,
                                    is_stream=True)
    for name, arr in zip("xytp", a):
        np.testing.assert_array_equal(back[name], arr)


def test_encode_refuses_events_that_do_not_fit():
    with pytest.raises(ValueError, match="do not fit"):
        encode_nmnist([1], [1], [2**23], [0])


@pytest.mark.parametrize("f, merge", [(1, False), (2, False), (3, True)])
def test_binning_kernel_matches_reference(f, merge):
    rng = np.random.default_rng(f)
    n = 3000
    x, y = rng.integers(0, 34, n), rng.integers(0, 34, n)
    t, p = np.sort(rng.integers(-5000, 320_000, n)), rng.integers(0, 2, n)
    b = Binning(bin_us=10_000, n_bins=30, start_us=0, spatial_factor=f, merge_polarity=merge)
    steps, chans = bin_events(x, y, t, p, b, (34, 34, 2))
    want = ref.bin_events(x, y, t, p, 10_000, 30, 0, f, 34, merge)
    assert list(zip(steps.tolist(), chans.tolist())) == want
    assert chans.max() < b.n_channels((34, 34, 2))


def test_binning_rejects_events_off_the_sensor():
    with pytest.raises(ValueError, match="outside the sensor"):
        bin_events(np.array([40]), np.array([0]), np.array([0]), np.array([0]), Binning(), (34, 34, 2))


def test_split_is_fixed_and_stratified():
    labels = np.repeat(np.arange(10), 50)
    a, b = split_indices(labels)
    a2, b2 = split_indices(labels)
    np.testing.assert_array_equal(b, b2)
    assert len(np.intersect1d(a, b)) == 0 and len(a) + len(b) == 500
    assert np.all(np.bincount(labels[b]) == 10)


def test_digits_saccade_loads_through_tonic(digits, data_root):
    train, test = digits
    assert (len(train), len(test)) == (1438, 359)
    assert train.n_in == 578 and train.n_steps == 30 and train.n_classes == 10
    assert 1500 < train.events_per_sample < 4000
    assert sorted(np.unique(test.labels)) == list(range(10))
    # the recordings are real N-MNIST files in tonic's folder layout
    folder = os.path.join(data_root, "digits-saccade", "recordings-v1-seed0", "DigitsSaccade")
    assert len(os.listdir(os.path.join(folder, "Train"))) == 10
    from spikelfp.datasets.saccade_sets import tonic_dataset
    ds = tonic_dataset(os.path.dirname(folder), train=False)
    assert isinstance(ds, tonic.datasets.NMNIST) and len(ds) == 359
    ev, label = ds[0]
    s, c = bin_events(ev["x"], ev["y"], ev["t"], ev["p"], Binning(spatial_factor=2), (34, 34, 2))
    np.testing.assert_array_equal(c, test.channels[test.sample_ptr[0]: test.sample_ptr[1]])
    assert label == test.labels[0]


def test_batch_gather_matches_dense(digits):
    train, _ = digits
    idx = np.array([5, 0, 17])
    eb = train.batch(idx)
    dense = eb.to_dense()
    for k, s in enumerate(idx):
        lo, hi = train.sample_ptr[s], train.sample_ptr[s + 1]
        want = np.zeros((30, 578), np.uint8)
        want[train.steps[lo:hi], train.channels[lo:hi]] = 1
        np.testing.assert_array_equal(dense[k], want)
    np.testing.assert_array_equal(eb.counts(), dense.sum(1))
    np.testing.assert_array_equal(eb.counts(np.float32), dense.sum(1))
    assert eb.counts(np.float32).dtype == np.float32
    checked = EventBatch(eb.indptr, eb.indices, eb.batch_size, eb.n_steps, eb.n_in)   # the full checks pass
    np.testing.assert_array_equal(checked.to_dense(), dense)


@pytest.mark.parametrize("steps, chans, msg", [
    ([0, 1, 1], [2, 3, 3], "not sorted"),          # a repeat within a step
    ([0, 1, 1], [2, 3, 1], "not sorted"),          # channels descending within a step
    ([2, 1, 3], [0, 0, 0], "not sorted"),          # steps out of order
])
def test_batch_refuses_a_dataset_whose_events_break_the_csr_contract(steps, chans, msg):
    """EventDataset checks bounds at construction; the batch gather checks order (and bounds, for
    arrays changed after construction) as it copies, and says so rather than feeding the kernels."""
    ds = EventDataset.from_samples([(np.array([0, 1], np.int32), np.array([0, 1], np.int32)),
                                    (np.array(steps, np.int32), np.array(chans, np.int32))], [0, 1], 4, 5, 2)
    ds.batch(np.array([0]))
    with pytest.raises(ValueError, match=msg):
        ds.batch(np.array([0, 1]))
    ds.channels[0] = 7                               # changed after construction: out of range
    with pytest.raises(ValueError, match="out of range"):
        ds.batch(np.array([0]))
    with pytest.raises(IndexError):
        ds.batch(np.array([2]))


def test_cache_is_rebuilt_when_stale_or_corrupt(tmp_path):
    ds = EventDataset.from_samples([(np.array([0, 1], np.int32), np.array([2, 3], np.int32))], [1], 4, 5, 2)
    key = {"dataset": "x", "v": 1}
    path = tmp_path / "c.h5"
    write_cache(path, {"train": ds, "test": ds}, key)
    assert read_cache(path, key)["train"].channels.tolist() == [2, 3]
    assert read_cache(path, {"dataset": "x", "v": 2}) is None          # stale key
    with h5py.File(path, "r+") as f:
        f["train/channels"][0] = 99                                   # out of range: invalid
    assert read_cache(path, key) is None
    path.write_bytes(path.read_bytes()[:100])                         # truncated
    assert read_cache(path, key) is None


def test_unknown_dataset_is_refused():
    with pytest.raises(ValueError, match="unknown dataset 'mnist-typo'"):
        datasets.load("mnist-typo")


def test_event_dataset_validation():
    with pytest.raises(ValueError, match="labels outside"):
        EventDataset.from_samples([(np.array([0], np.int32), np.array([0], np.int32))], [5], 2, 3, 2)


def test_an_empty_data_variable_means_the_default_cache_not_the_working_folder(monkeypatch, tmp_path):
    from spikelfp.datasets import data_root

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SPIKELFP_DATA", "")
    monkeypatch.chdir(tmp_path)
    assert data_root() == str(tmp_path / ".cache" / "spikelfp")
    monkeypatch.setenv("SPIKELFP_DATA", str(tmp_path / "d"))
    assert data_root() == str(tmp_path / "d")
    assert data_root(str(tmp_path / "e")) == str(tmp_path / "e")
