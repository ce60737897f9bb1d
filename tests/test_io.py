import json
import os

import h5py
import numpy as np
import pytest
from conftest import random_net

from spikelfp.io import (
    FORMAT_VERSION,
    Checkpoint,
    ModelFileError,
    load_checkpoint,
    load_network,
    save_checkpoint,
    write_json,
)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def _ckpt(rng):
    net = random_net(rng, [5, 4, 3], bias=True)
    net.layers[1] = type(net.layers[1])(net.layers[1].weight, None, 0.75, 1.5, "subtract")
    return Checkpoint(network=net, config={"lr": 1e-3, "hidden": [4]}, history=[{"epoch": 1, "acc": 0.5}],
                      binning={"bin_us": 10000.0, "n_bins": 30}, dataset="digits-saccade", seed=7,
                      optimizer={"state": {"name": "adam", "steps": 3}, "arrays": {"WT.m": rng.random(32)}},
                      rng_state=np.random.default_rng(1).bit_generator.state)


def test_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    ck = _ckpt(rng)
    path = tmp_path / "m.h5"
    save_checkpoint(path, ck)
    back = load_checkpoint(path)
    assert back.format_version == FORMAT_VERSION and back.library_version
    for a, b in zip(ck.network.layers, back.network.layers):
        np.testing.assert_array_equal(a.weight, b.weight)
        assert (a.bias is None) == (b.bias is None)
        if a.bias is not None:
            np.testing.assert_array_equal(a.bias, b.bias)
        assert (a.beta, a.threshold, a.reset) == (b.beta, b.threshold, b.reset)
    assert back.config == ck.config and back.history == ck.history and back.binning == ck.binning
    assert back.seed == 7 and back.dataset == "digits-saccade"
    np.testing.assert_array_equal(back.optimizer["arrays"]["WT.m"], ck.optimizer["arrays"]["WT.m"])
    assert back.optimizer["state"] == ck.optimizer["state"]
    assert back.rng_state == ck.rng_state


def test_float32_network_round_trips(tmp_path):
    net = random_net(np.random.default_rng(1), [3, 2]).astype(np.float32)
    save_checkpoint(tmp_path / "m.h5", Checkpoint(network=net))
    back = load_network(tmp_path / "m.h5")
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back.layers[0].weight, net.layers[0].weight)


def test_minimal_v1_fixture_loads_with_defaults():
    ck = load_checkpoint(os.path.join(FIXTURES, "model_v1_minimal.h5"))
    assert ck.network.sizes == (3, 2, 1)
    layer = ck.network.layers[0]
    assert (layer.beta, layer.threshold, layer.reset, layer.bias) == (0.9, 1.0, "zero", None)
    np.testing.assert_array_equal(layer.weight, [[0.5, -0.25, 1.5], [1.0, 0.0, 2.0]])
    assert ck.config == {} and ck.history == [] and ck.optimizer is None and ck.seed is None
    assert ck.network.dt == 1e-3


def test_v1_checkpoint_of_spikelfp_0_1_migrates(tmp_path):
    """model_v1.h5 was written by spikelfp's own writer at format_version 1 (commit b015b8d)."""
    from spikelfp.train import TrainConfig

    src = os.path.join(FIXTURES, "model_v1.h5")
    ck = load_checkpoint(src)
    assert ck.format_version == 1 and ck.network.sizes == (6, 4, 3) and ck.network.arch == "d4"
    assert all(not la.is_recurrent for la in ck.network.layers)
    cfg = TrainConfig.from_dict(ck.config)
    assert cfg.arch == "d4" and cfg.hidden == [4] and cfg.recurrent == [False, False]
    assert cfg.contrib == "spikes"             # trained before graded credit existed: the rule it ran
    save_checkpoint(tmp_path / "m2.h5", ck)                  # written back as the current version
    back = load_checkpoint(tmp_path / "m2.h5")
    assert back.format_version == FORMAT_VERSION == 2
    with h5py.File(tmp_path / "m2.h5") as f:
        assert f["network"].attrs["arch"] == "d4" and f["network/layer_0"].attrs["type"] == "dense"
    for a, b in zip(ck.network.layers, back.network.layers):
        np.testing.assert_array_equal(a.weight, b.weight)
        np.testing.assert_array_equal(a.bias, b.bias)


def test_recurrent_network_round_trips(tmp_path):
    import spikelfp

    net = spikelfp.Network.random([5, 4, 3, 2], seed=2, recurrent=[True, False, True], bias=True)
    save_checkpoint(tmp_path / "r.h5", Checkpoint(network=net))
    back = load_network(tmp_path / "r.h5")
    assert back.arch == "r4-d3"
    for a, b in zip(net.layers, back.layers):
        assert (a.recurrent is None) == (b.recurrent is None)
        if a.recurrent is not None:
            np.testing.assert_array_equal(a.recurrent, b.recurrent)
    with h5py.File(tmp_path / "r.h5", "r+") as f:          # a recurrent layer without its V
        del f["network/layer_0/recurrent"]
    with pytest.raises(ModelFileError, match="lacks recurrent weights"):
        load_checkpoint(tmp_path / "r.h5")
    save_checkpoint(tmp_path / "r.h5", Checkpoint(network=net))
    with h5py.File(tmp_path / "r.h5", "r+") as f:
        f["network/layer_1"].attrs["type"] = "conv3d"
    with pytest.raises(ModelFileError, match="type .conv3d.*upgrade spikelfp"):
        load_checkpoint(tmp_path / "r.h5")
    save_checkpoint(tmp_path / "r.h5", Checkpoint(network=net))
    with h5py.File(tmp_path / "r.h5", "r+") as f:          # V of the wrong shape
        del f["network/layer_0/recurrent"]
        f["network/layer_0"].create_dataset("recurrent", data=np.zeros((4, 3)))
    with pytest.raises(ModelFileError, match="recurrent weights must have shape"):
        load_checkpoint(tmp_path / "r.h5")


def test_newer_format_is_refused(tmp_path):
    path = tmp_path / "new.h5"
    save_checkpoint(path, _ckpt(np.random.default_rng(0)))
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(ModelFileError, match="Upgrade spikelfp"):
        load_checkpoint(path)


def test_truncated_foreign_and_missing_files(tmp_path):
    path = tmp_path / "m.h5"
    save_checkpoint(path, _ckpt(np.random.default_rng(0)))
    data = path.read_bytes()
    (tmp_path / "trunc.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="not a readable HDF5|corrupt"):
        load_checkpoint(tmp_path / "trunc.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(ModelFileError, match="not a readable HDF5"):
        load_checkpoint(tmp_path / "text.h5")
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f.create_dataset("x", data=[1, 2])
    with pytest.raises(ModelFileError, match="not a spikelfp model"):
        load_checkpoint(tmp_path / "foreign.h5")
    with pytest.raises(ModelFileError, match="no such file"):
        load_checkpoint(tmp_path / "absent.h5")
    with h5py.File(path, "r+") as f:
        del f["network/layer_1/weight"]
    with pytest.raises(ModelFileError, match="layer_1/weight is missing"):
        load_checkpoint(path)


def test_failed_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "m.h5"
    good = _ckpt(np.random.default_rng(0))
    save_checkpoint(path, good)
    before = path.read_bytes()

    class Boom(Exception):
        pass

    def explode(*a, **k):
        raise Boom("disk full")

    monkeypatch.setattr(h5py.Group, "create_dataset", explode)
    with pytest.raises(Boom):
        save_checkpoint(path, good)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.h5"], "temporary file left behind"


def test_write_json_is_atomic(tmp_path):
    p = tmp_path / "x.json"
    write_json(p, {"a": np.float64(1.5), "b": np.arange(2)})
    assert p.read_text().strip().startswith("{")
    with pytest.raises(TypeError):
        write_json(p, {"bad": object()})
    assert '"a": 1.5' in p.read_text()


def test_atomic_writes_go_through_links_and_into_fifos_and_devices(tmp_path):
    import os
    import stat
    import threading

    from spikelfp.io import write_json

    target = tmp_path / "real.json"
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_json(link, {"a": 1})
    assert link.is_symlink() and json.loads(target.read_text()) == {"a": 1}     # the link stays a link
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo).read()), daemon=True)
    reader.start()
    write_json(fifo, {"b": 2})
    reader.join(10)
    assert json.loads(got[0]) == {"b": 2} and stat.S_ISFIFO(os.stat(fifo).st_mode)
    write_json("/dev/null", {"c": 3})
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)                           # never replaced by a file
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
