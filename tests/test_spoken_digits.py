"""spoken-digits: the cochlea kernel against a slow reference, the builder (determinism, SHD layout,
speaker split) and loading through tonic's SHD class -- all on the tiny build."""

import ctypes
import hashlib
import math
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from spikelfp.datasets import spoken
from spikelfp.datasets.cochlea import cochlea, cochlea_spikes, erb_space

from spikelfp import datasets


def reference_cochlea(x, fs, cf, bw_scale, compress, level, lp_hz, adapt_tau, gain, refrac, thresholds):
    """The cochlea's equations, one channel at a time, with complex numbers (datasets/cochlea.py)."""
    dt = 1.0 / fs
    a_lp = math.exp(-2 * math.pi * lp_hz * dt)
    a_ad = math.exp(-dt / adapt_tau)
    out = []
    for c, f in enumerate(cf):
        a = math.exp(-2 * math.pi * bw_scale * 24.7 * (4.37e-3 * f + 1.0) * dt)
        y = [0j] * 4
        lp = mean = acc = 0.0
        k, dead_until, spikes = 0, -1.0, []
        for n, xn in enumerate(x):
            u = xn * np.exp(-1j * 2 * math.pi * f * dt * n)
            for q in range(4):
                y[q] = a * y[q] + (1 - a) * (u if q == 0 else y[q - 1])
            bm = 2.0 * (y[3] * np.exp(1j * 2 * math.pi * f * dt * n)).real
            lp = a_lp * lp + (1 - a_lp) * max(bm, 0.0)
            mean = a_ad * mean + (1 - a_ad) * lp
            uu = ((lp / (1 + mean / level)) / level) ** compress
            t = n * dt
            if t < dead_until:
                continue
            acc += gain * uu / (1 + uu) * dt
            if acc >= thresholds[c, k]:
                spikes.append(t)
                k += 1
                acc = 0.0
                dead_until = t + refrac
        out.append(np.array(spikes))
    return out


def test_cochlea_kernel_matches_reference():
    rng = np.random.default_rng(3)
    fs = 16000.0
    x = rng.standard_normal(800) * np.hanning(800) * 3
    cf = erb_space(100, 6000, 6)
    th = rng.exponential(1.0, size=(6, 81))
    out_t = np.empty((6, 80))
    out_n = np.zeros(6, np.int64)
    cochlea_spikes(x, fs, cf, 1.019, 2.0, 0.1, 1000.0, 0.04, 200.0, 1e-3, th, 80, out_t, out_n)
    ref = reference_cochlea(x, fs, cf, 1.019, 2.0, 0.1, 1000.0, 0.04, 200.0, 1e-3, th)
    assert sum(out_n) > 10, "vacuous: no spikes"
    for c in range(6):
        np.testing.assert_allclose(out_t[c, :out_n[c]], ref[c], rtol=0, atol=1e-12)


def test_cochlea_is_tonotopic_and_seeded():
    fs = 16000.0
    t = np.arange(int(0.2 * fs)) / fs
    cf = erb_space(50, 7500, 700)
    for f0 in (300.0, 2000.0):
        tone = np.sin(2 * np.pi * f0 * t)
        times, units = cochlea(tone, fs, np.random.default_rng(0))
        counts = np.bincount(units, minlength=700)
        best = cf[np.argmax(np.convolve(counts, np.ones(15), "same"))]
        assert abs(math.log2(best / f0)) < 0.5, (f0, best)       # most spikes within half an octave
        assert np.all(np.diff(times) >= 0)
    a = cochlea(tone, fs, np.random.default_rng(1))
    b = cochlea(tone, fs, np.random.default_rng(1))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("spoken")
    spoken.build_recordings(str(root), 0, size="tiny")
    return root


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_build_is_deterministic(tiny_root, tmp_path):
    spoken.build_recordings(str(tmp_path), 0, size="tiny")
    for split in ("train", "test"):
        rel = os.path.join("SHD", f"shd_{split}.h5")
        assert _sha(os.path.join(spoken.recordings_dir(str(tiny_root), 0, "tiny"), rel)) == \
            _sha(os.path.join(spoken.recordings_dir(str(tmp_path), 0, "tiny"), rel))
    assert not [p for p in os.listdir(tmp_path / "spoken-digits") if p.startswith(".building")]


def _synth_after_clock_seed(clock_seed):
    """A fresh process's eSpeak whose own generator was seeded as espeak_Initialize seeds it
    (from the clock: here a given value), then one utterance of a voice variant with breath noise."""
    e = spoken.Espeak()
    e.lib.espeak_ng_SetRandSeed(ctypes.c_long(clock_seed))
    return e.synth("drei", "de+f2", pitch=55, range_=55, rate=165, seed=7)


def test_breathy_voices_do_not_depend_on_the_clock():
    # f2, f3 and f5 carry "breath" noise from eSpeak NG's own generator, which espeak_Initialize
    # seeds from the clock: two builds differed in those speakers' recordings until the
    # generator was seeded per utterance. Each synthesis runs in its own fresh process (eSpeak
    # keeps other state from one utterance to the next).
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    waves = []
    for clock_seed in (1, 123456789):
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            waves.append(pool.submit(_synth_after_clock_seed, clock_seed).result())
    assert waves[0].size > 1000 and np.abs(waves[0]).max() > 1000, "vacuous: no speech"
    np.testing.assert_array_equal(waves[0], waves[1])


def test_shd_layout_labels_and_speaker_split(tiny_root):
    base = Path(spoken.recordings_dir(str(tiny_root), 0, "tiny")) / "SHD"
    speakers = {}
    for split in ("train", "test"):
        with h5py.File(base / f"shd_{split}.h5", "r") as f:
            assert f["spikes/times"].dtype.metadata["vlen"] == np.float32
            assert f["spikes/units"].dtype.metadata["vlen"] == np.uint16
            labels = f["labels"][()]
            assert labels.dtype == np.uint16 and sorted(set(labels)) == list(range(20))
            keys = [k.decode() for k in f["extra/keys"][()]]
            assert keys[0] == "english-zero" and keys[10] == "german-null" and len(keys) == 20
            speakers[split] = set(f["extra/speaker"][()].tolist())
            variants = [v.decode() for v in f["extra/meta_info/variant"][()]]
            assert len(variants) == len(spoken.TRAIN_SPEAKERS) + len(spoken.TEST_SPEAKERS)
            for k in range(labels.size):
                t, u = f["spikes/times"][k], f["spikes/units"][k]
                assert t.size == u.size > 500
                assert np.all(np.diff(t) >= 0) and t.min() >= 0 and t.max() < 1.0 and u.max() < 700
    assert speakers["train"] and speakers["test"] and not speakers["train"] & speakers["test"]


def test_loads_through_tonics_shd_class(tiny_root):
    import tonic
    from spikelfp.datasets.registry import get_spec

    raw = get_spec("spoken-digits").splits(str(tiny_root), size="tiny")
    assert isinstance(raw["train"], tonic.datasets.SHD)
    events, label = raw["test"][0]
    assert events.dtype.names == ("t", "x", "p") and 0 <= label < 20
    train, test = datasets.load("spoken-digits", root=str(tiny_root), size="tiny")
    assert (train.n_in, train.n_steps, train.n_classes) == (700, 40, 20)
    assert len(train) == 40 and len(test) == 20
    assert 1000 < train.events_per_sample < 5000


def test_size_option_only_for_spoken_digits(tmp_path):
    with pytest.raises(ValueError, match="no size option"):
        datasets.load("digits-saccade", root=str(tmp_path), size="tiny")
    with pytest.raises(ValueError, match="unknown spoken-digits size"):
        spoken.build_recordings(str(tmp_path), 0, size="huge")


def test_build_folder_is_atomic_and_clears_killed_builds(tmp_path):
    from spikelfp.datasets.base import build_folder

    final = tmp_path / "set" / "v1"
    (tmp_path / "set").mkdir()
    dead = tmp_path / "set" / ".building-999999999-abc"          # a build whose process was killed
    dead.mkdir()
    with pytest.raises(RuntimeError):
        with build_folder(str(final)) as b:
            (open(os.path.join(b.path, "x"), "w")).close()
            raise RuntimeError("interrupted build")
    assert not final.exists() and not dead.exists()
    assert not [p for p in os.listdir(tmp_path / "set") if p.startswith(".building")]
    with build_folder(str(final)) as b:
        b.note = "done"
    assert (final / "COMPLETE").read_text() == "done\n"
