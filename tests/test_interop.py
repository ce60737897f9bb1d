"""tonic / torch data in: structured events, tonic's ToFrame frames, torch Datasets and DataLoaders,
straight into Trainer.fit; the channel order is spikelfp's channels-last, from the sensor size."""

import numpy as np
import pytest
from spikelfp.datasets import Binning, EventDataset, as_event_datasets, from_events, from_frames

DT = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])   # tonic's N-MNIST event dtype
SENSOR = (4, 3, 2)                                                       # (W, H, P), tonic's order


def _events(rng, n=200, t_max=10_000, label_shift=0):
    ev = np.zeros(n, DT)
    ev["x"], ev["y"], ev["p"] = rng.integers(0, 4, n), rng.integers(0, 3, n), rng.integers(0, 2, n)
    ev["t"] = np.sort(rng.integers(0, t_max, n))
    ev["t"][0], ev["t"][-1] = 0, t_max - 1
    return ev


def _data(seed, n=12, classes=3):
    rng = np.random.default_rng(seed)
    return [(_events(rng), int(k % classes)) for k in range(n)]


def test_channel_order_is_channels_last_from_the_sensor_size():
    ev = np.zeros(1, DT)
    ev["x"], ev["y"], ev["p"], ev["t"] = 1, 2, 1, 0
    d = from_events([(ev, 0)], sensor_size=SENSOR, binning=Binning(bin_us=100, n_bins=2), n_classes=2)
    assert d.input_shape == (3, 4, 2) and d.n_in == 24
    dense = d.to_dense()
    assert dense.shape == (1, 2, 24) and dense.sum() == 1 and dense[0, 0, (2 * 4 + 1) * 2 + 1] == 1
    frame = dense.reshape(1, 2, *d.input_shape)
    assert frame[0, 0, 2, 1, 1] == 1                   # (H, W, P): y = 2, x = 1, p = 1
    with pytest.raises(ValueError, match="sensor size"):
        from_events([(ev, 0)])                          # never guessed


def test_tonic_toframe_frames_give_the_same_spikes_as_the_events():
    import tonic

    samples = _data(1, n=4)
    b = Binning(bin_us=1000, n_bins=10)
    ref = from_events(samples, sensor_size=SENSOR, binning=b)
    frames = [tonic.transforms.ToFrame(sensor_size=SENSOR, time_window=1000, include_incomplete=True)(ev)
              for ev, _ in samples]          # fixed 1 ms windows from t = 0: spikelfp's grid
    assert max(f.max() for f in frames) > 1             # ToFrame counts: more than one event per bin
    with pytest.raises(ValueError, match="counts='clip'"):
        from_frames(frames, [y for _, y in samples])
    got = from_frames(frames, [y for _, y in samples], counts="clip", n_classes=3)
    assert got.input_shape == ref.input_shape
    assert np.array_equal(got.to_dense(), ref.to_dense()) and np.array_equal(got.labels, ref.labels)
    # channels-last frames and flat frames: the same
    hwp = [f.transpose(0, 2, 3, 1) for f in frames]
    assert np.array_equal(from_frames(hwp, [0] * 4, layout="THWP", counts="clip").to_dense(), got.to_dense())
    flat = ref.to_dense()
    assert np.array_equal(from_frames(list(flat), ref.labels, layout="TN").to_dense(), flat)
    for bad, msg in [(dict(layout="PT"), "layout"), (dict(counts="sum"), "counts")]:
        with pytest.raises(ValueError, match=msg):
            from_frames(frames, [0] * 4, **bad)
    with pytest.raises(ValueError, match="labels"):
        from_frames(frames, [0] * 3, counts="clip")


def test_event_dataset_getitem_and_to_dense_round_trip():
    d = from_events(_data(2), sensor_size=SENSOR)
    x, y = d[3]
    assert x.shape == (d.n_steps, d.n_in) and x.dtype == np.uint8 and y == int(d.labels[3])
    assert np.array_equal(d[-1][0], d.to_dense([len(d) - 1])[0])
    with pytest.raises(IndexError):
        d[len(d)]
    back = from_frames(list(d.to_dense()), d.labels, layout="TN")
    assert np.array_equal(back.steps, d.steps) and np.array_equal(back.channels, d.channels)


class _TonicLike:
    """tonic's dataset interface: sensor_size, classes, __getitem__ applying a transform."""

    def __init__(self, samples, transform=None):
        self.samples, self.transform = samples, transform
        self.sensor_size, self.classes = SENSOR, ["a", "b", "c"]

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, k):
        ev, y = self.samples[k]
        return (self.transform(ev) if self.transform else ev), y


def test_trainer_fits_tonic_style_and_torch_data_directly():
    import torch

    from spikelfp.train import TrainConfig, Trainer

    train, test = _TonicLike(_data(3, n=30)), _TonicLike(_data(4, n=9))
    cfg = TrainConfig(hidden=[16], epochs=1, seed=0)
    m = Trainer(cfg, progress=False).fit(train, test)
    assert m["binning"]["n_bins"] == 30 and m["binning"]["bin_us"] == pytest.approx(334.0)
    ref_tr, ref_te, b = as_event_datasets(train, test)
    assert b == m["binning"] and ref_tr.classes == ["a", "b", "c"]
    m2 = Trainer(cfg, progress=False).fit(ref_tr, ref_te, binning=b)
    assert m2["test_accuracy"] == m["test_accuracy"]          # the same data, binned once
    # a torch DataLoader over the tonic-style dataset: its samples, one by one (no collate)
    loader = torch.utils.data.DataLoader(train, batch_size=4, shuffle=True)
    tr3, _, b3 = as_event_datasets(loader, test)
    assert b3 == b and np.array_equal(tr3.channels, ref_tr.channels)
    # a ToFrame transform is refused with the way out
    import tonic

    framed = _TonicLike(_data(5, n=3), transform=tonic.transforms.ToFrame(sensor_size=SENSOR, n_time_bins=5))
    with pytest.raises(ValueError, match="from_frames"):
        from_events(framed)
    with pytest.raises(ValueError, match="both"):
        as_event_datasets(ref_tr, test)


def test_load_refuses_a_dataset_object_with_the_way_in():
    from spikelfp import datasets

    with pytest.raises(TypeError, match="from_events"):
        datasets.load(_TonicLike(_data(6, n=2)))
    assert isinstance(datasets.from_events(_TonicLike(_data(6, n=2))), EventDataset)


def test_a_loaded_dataset_carries_its_binning_into_the_checkpoint(tmp_path, small_digits):
    from spikelfp.io import load_checkpoint
    from spikelfp.train import TrainConfig, Trainer

    train, test = small_digits
    assert train.binning["bin_us"] == 10_000.0 and train.subset([0, 1]).binning == train.binning
    Trainer(TrainConfig(hidden=[8], epochs=1), progress=False).fit(train, test, str(tmp_path / "r"))
    ck = load_checkpoint(tmp_path / "r" / "model.h5")
    assert ck.binning == train.binning and ck.network.dt == pytest.approx(0.01)   # NIR's tau follows from it


@pytest.mark.parametrize("classes, names", [(np.array([b"one", b"two"]), ["one", "two"]),   # tonic SHD: bytes
                                            (("a", "b"), ["a", "b"]), (np.array([]), None), (None, None)])
def test_class_names_from_any_container(classes, names):
    from spikelfp.datasets.interop import _classes

    class DS:
        pass

    ds = DS()
    ds.classes = classes
    assert _classes(ds, None) == names
