import json

import numpy as np
import pytest

import spikelfp
from spikelfp import plot
from spikelfp.cli import main


def test_raster_draws_one_dot_per_spike_where_it_is():
    import matplotlib.pyplot as plt

    s = np.zeros((6, 4), np.uint8)
    s[[0, 2, 2, 5], [1, 0, 3, 3]] = 1
    ax = plot.raster(s)
    assert np.array_equal(ax.collections[0].get_offsets(), [[0, 1], [2, 0], [2, 3], [5, 3]])
    ax = plot.raster(s, dt=0.01)                                   # 10 ms bins: x in ms
    assert np.array_equal(ax.collections[0].get_offsets()[:, 0], [0, 20, 20, 50])
    assert ax.get_xlabel() == "time [ms]"
    with pytest.raises(ValueError, match=r"shape \(T, n\)"):
        plot.raster(np.zeros((2, 3, 4)))
    plt.close("all")


def test_membranes_draw_the_traces_and_the_threshold():
    import matplotlib.pyplot as plt

    v = np.random.default_rng(0).random((5, 3))
    ax = plot.membranes(v, threshold=0.7, neurons=[0, 2])
    assert len(ax.lines) == 3 and np.array_equal(ax.lines[1].get_ydata(), v[:, 2])
    assert list(ax.lines[2].get_ydata()) == [0.7, 0.7]
    plt.close("all")


def test_sample_figure_is_the_simulation(small_digits, tmp_path):
    import matplotlib.pyplot as plt

    train, test = small_digits
    net = spikelfp.Network.from_arch("d32", test.n_in, test.n_classes, seed=0, gain=3.0)
    fig, rec = plot.sample_figure(net, test, 3, tmp_path / "f.png")
    ref = spikelfp.simulate(net, test.batch(np.array([3])), raster=True)
    assert all(np.array_equal(a, b) for a, b in zip(rec.rasters, ref.rasters))
    # every layer's panel holds exactly that layer's spikes
    for ax, sp in zip(fig.axes[1:-1], rec.rasters):
        assert len(ax.collections[0].get_offsets()) == int(sp[0].sum())
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="outside the split"):
        plot.sample_figure(net, test, len(test))
    plt.close("all")


def test_plot_cli(tmp_path, data_root, digits, capsys):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--hidden", "16", "--out", str(out), "--no-progress",
                 "--data-root", data_root]) == 0
    assert main(["plot", str(out / "model.h5"), "--sample", "5", "--json", str(tmp_path / "p.json"),
                 "--data-root", data_root]) == 0
    r = json.loads((tmp_path / "p.json").read_text())
    assert r["out"] == str(out / "model-test-sample5.png") and (out / "model-test-sample5.png").stat().st_size > 0
    assert r["label"] == int(digits[1].labels[5]) and len(r["spikes_per_layer"]) == 2
    capsys.readouterr()
    assert main(["plot", str(out / "model.h5"), "--sample", "100000", "--data-root", data_root]) == 2
    assert "outside the split" in capsys.readouterr().err
    before = (out / "model.h5").read_bytes()
    assert main(["plot", str(out / "model.h5"), "--out", str(out / "model.h5"), "--data-root", data_root]) == 2
    assert (out / "model.h5").read_bytes() == before
