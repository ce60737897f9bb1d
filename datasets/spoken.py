"""``spoken-digits``: an offline, SHD-like spoken-digit set, built on this machine.

Made the way the Spiking Heidelberg Digits (SHD; Cramer et al. 2020) were made -- spoken digits
through a cochlea model into 700 spike channels -- with synthetic speakers instead of recordings:

* **Speech**: eSpeak NG, loaded from the ``espeakng-loader`` wheel (it ships ``libespeak-ng`` and
  its voice data; no system package), called through ``ctypes``. Words: the digits 0-9 in English
  (labels 0-9, English voice) and German (labels 10-19, German voice), as in SHD.
* **Speakers**: an eSpeak voice variant (``m1``, ``f3``, ``klatt2``, ...) with its own base pitch,
  pitch range and speaking rate. Each utterance varies pitch (+-6), rate (+-10 %), level (+-6 dB),
  onset (anywhere it fits in the 1 s window) and adds white noise (20-40 dB SNR).
  **The test split's speakers are voice variants that never occur in training.**
* **Cochlea**: :mod:`spikelfp.datasets.cochlea` (gammatone filterbank, hair cell, Poisson fibres
  with dead time), 700 channels from 50 Hz to 7.5 kHz; ~4,500 spikes per recording.
* **Files**: SHD's HDF5 layout (``spikes/times`` [s] and ``spikes/units`` as variable-length
  arrays, ``labels``, ``extra/speaker``, ``extra/keys``, ``extra/meta_info/...``) as
  ``shd_train.h5`` / ``shd_test.h5`` in tonic's ``SHD`` folder, and read back through tonic's own
  ``SHD`` class, the code path the real ``shd`` dataset uses.

Deterministic: eSpeak's two noise sources (libc ``rand`` and eSpeak NG's own generator, which it
seeds from the clock) are seeded before every utterance, and every utterance has its own ``numpy``
generator keyed by (seed, draw key, speaker, word, repetition), so the same version and seed give
the same bytes. The full set (3,120 recordings) builds in about
two minutes on two cores; ``size="tiny"`` (60 recordings) is what the tests build.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
from dataclasses import dataclass

import numpy as np

from .base import build_folder

# v2: eSpeak NG's own noise generator seeded per utterance (v1's breathy voices followed the clock)
GENERATOR_VERSION = 2
# key of the per-utterance draws: unchanged since v1, so v2 equals v1 wherever v1 was reproducible
_DRAWS = 1
FS = 16_000.0            # cochlea sampling rate [Hz]
WINDOW_S = 1.0           # length of every recording [s]
N_CHANNELS = 700
SENSOR_SIZE = (N_CHANNELS, 1, 1)

WORDS_EN = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
WORDS_DE = ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun")
CLASSES = tuple(f"english-{w}" for w in WORDS_EN) + tuple(f"german-{w}" for w in WORDS_DE)


@dataclass(frozen=True)
class Speaker:
    """A synthetic speaker: an eSpeak voice variant with its own pitch and rate."""

    variant: str
    pitch: int       # eSpeak base pitch, 0-99
    range: int       # eSpeak pitch range, 0-99
    rate: int        # words per minute


# 18 training speakers, 6 test-only speakers (different voice variants).
TRAIN_SPEAKERS = (
    Speaker("m1", 45, 50, 165), Speaker("m2", 40, 40, 175), Speaker("m3", 50, 60, 160),
    Speaker("m4", 35, 45, 180), Speaker("m5", 48, 55, 170), Speaker("m6", 42, 35, 155),
    Speaker("f1", 55, 60, 170), Speaker("f2", 60, 55, 165), Speaker("f3", 52, 65, 175),
    Speaker("klatt", 45, 50, 170), Speaker("klatt2", 50, 45, 160), Speaker("klatt3", 40, 55, 180),
    Speaker("Andy", 47, 50, 165), Speaker("Annie", 58, 60, 170), Speaker("Denis", 44, 40, 175),
    Speaker("Michael", 38, 50, 160), Speaker("linda", 62, 55, 165), Speaker("iven", 46, 45, 170),
)
TEST_SPEAKERS = (
    Speaker("m7", 43, 50, 170), Speaker("f4", 57, 55, 165), Speaker("f5", 54, 60, 175),
    Speaker("klatt4", 48, 50, 165), Speaker("edward", 41, 45, 170), Speaker("belinda", 59, 55, 160),
)
SIZES = {  # size -> (train speakers, test speakers, repetitions per speaker and word in train, in test)
    "full": (len(TRAIN_SPEAKERS), len(TEST_SPEAKERS), 7, 5),
    "tiny": (2, 1, 1, 1),
}


class Espeak:
    """Minimal ctypes binding of libespeak-ng (synchronous synthesis into memory)."""

    RATE, VOLUME, PITCH, RANGE = 1, 2, 3, 4

    def __init__(self):
        try:
            import espeakng_loader
        except ImportError:
            raise ImportError("spoken-digits synthesises speech with eSpeak NG: pip install espeakng-loader") from None
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.libc = ctypes.CDLL(None)
        self.sample_rate = self.lib.espeak_Initialize(2, 0, espeakng_loader.get_data_path().encode(), 0)
        if self.sample_rate <= 0:
            raise RuntimeError("eSpeak NG failed to initialise (espeakng-loader's data folder unreadable?)")
        self._chunks: list = []
        cb_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

        def _collect(wav, n, _events):
            if n > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._cb = cb_type(_collect)          # keep a reference: C holds the pointer
        self.lib.espeak_SetSynthCallback(self._cb)
        version = ctypes.c_char_p()
        self.lib.espeak_Info.restype = ctypes.c_char_p
        self.version = (self.lib.espeak_Info(ctypes.byref(version)) or b"?").decode()

    @staticmethod
    def check() -> None:
        """Raise a clear ImportError here (not in a worker) when espeakng-loader is missing."""
        try:
            import espeakng_loader  # noqa: F401
        except ImportError:
            raise ImportError("spoken-digits synthesises speech with eSpeak NG: pip install espeakng-loader") from None

    def synth(self, text: str, voice: str, *, pitch: int, range_: int, rate: int, seed: int) -> np.ndarray:
        """Speak ``text`` with ``voice`` (e.g. ``"en+m3"``); int16 samples at ``sample_rate``."""
        self._chunks.clear()
        # eSpeak NG draws noise from two generators: libc's rand() (Klatt voices) and its own
        # espeak_rand() (the "breath" of voice variants such as f2, f3, f5), which espeak_Initialize
        # seeds from the clock. Both are seeded before every utterance: the same bytes every build.
        self.libc.srand(ctypes.c_uint(seed & 0xFFFFFFFF))
        self.lib.espeak_ng_SetRandSeed(ctypes.c_long(seed & 0x7FFFFFFF))
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"eSpeak NG has no voice {voice!r}")
        for par, val in ((self.RATE, rate), (self.PITCH, pitch), (self.RANGE, range_), (self.VOLUME, 100)):
            self.lib.espeak_SetParameter(par, int(val), 0)
        data = text.encode("utf-8")
        self.lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, 1, None, None)
        self.lib.espeak_Synchronize()
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)


def _seed_of(*parts) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little")


def _speech_params(speaker: Speaker, word_idx: int, rep: int, gen_seed: int):
    key = (gen_seed, _DRAWS, speaker.variant, word_idx, rep)
    rng = np.random.default_rng(_seed_of("speech", *key))
    lang, words = ("en", WORDS_EN) if word_idx < 10 else ("de", WORDS_DE)
    return dict(text=words[word_idx % 10], voice=f"{lang}+{speaker.variant}",
                pitch=int(np.clip(speaker.pitch + rng.integers(-6, 7), 0, 99)), range_=speaker.range,
                rate=int(round(speaker.rate * rng.uniform(0.9, 1.1))), seed=_seed_of("espeak", *key))


def synthesise(jobs: list, gen_seed: int) -> tuple[list, str]:
    """eSpeak NG audio (int16 at its sample rate) of every (speaker, word, repetition) in ``jobs``.

    eSpeak keeps synthesiser state from one utterance to the next, so the same utterance can
    differ by history; :func:`build_recordings` therefore runs this in a fresh process per build
    (always the same jobs in the same order: the same bytes).
    """
    espeak = Espeak()
    out = []
    for speaker, word_idx, rep in jobs:
        p = _speech_params(speaker, word_idx, rep, gen_seed)
        out.append(espeak.synth(p.pop("text"), p.pop("voice"), **p))
    return out, espeak.version


def utterance(wav: np.ndarray, speaker: Speaker, word_idx: int, rep: int, gen_seed: int):
    """Spike times [s] and units of one recording (1 s window) from its eSpeak audio."""
    from scipy.signal import resample_poly

    from .cochlea import cochlea

    rng = np.random.default_rng(_seed_of(gen_seed, _DRAWS, speaker.variant, word_idx, rep))
    x = resample_poly(wav.astype(np.float64) / 32768.0, 320, 441)     # 22,050 Hz -> 16 kHz
    nz = np.flatnonzero(np.abs(x) > 1e-3)                               # trim eSpeak's silences
    x = x[nz[0]: nz[-1] + 1] if nz.size else x[:1]
    x = x[: int(0.9 * WINDOW_S * FS)]
    x = x / (np.sqrt(np.mean(x ** 2)) + 1e-12) * 10 ** (rng.uniform(-6, 6) / 20)   # level +-6 dB
    margin = int(0.03 * FS)
    x = np.concatenate([np.zeros(margin), x, np.zeros(2 * margin)])
    snr_db = rng.uniform(20, 40)
    x = x + rng.standard_normal(x.size) * np.sqrt(np.mean(x ** 2)) * 10 ** (-snr_db / 20)
    onset = rng.uniform(0.0, max(0.0, WINDOW_S - x.size / FS))
    times, units = cochlea(x, FS, rng, t0=onset)
    keep = times < WINDOW_S
    return times[keep].astype(np.float32), units[keep].astype(np.uint16)


def recordings_dir(root: str, gen_seed: int = 0, size: str = "full") -> str:
    """Folder holding tonic's SHD layout for this generator version, seed and size."""
    tag = "" if size == "full" else f"-{size}"
    return os.path.join(root, "spoken-digits", f"recordings-v{GENERATOR_VERSION}-seed{gen_seed}{tag}")


def _write_split(path: str, recs: list, speakers: list, speaker_ids: dict, espeak_version: str, split: str):
    import h5py

    n = len(recs)
    with h5py.File(path, "w", track_order=False) as f:
        vf = h5py.vlen_dtype(np.dtype(np.float32))
        vu = h5py.vlen_dtype(np.dtype(np.uint16))
        times = f.create_dataset("spikes/times", (n,), dtype=vf, track_times=False)
        units = f.create_dataset("spikes/units", (n,), dtype=vu, track_times=False)
        for k, (t, u, _label, _spk) in enumerate(recs):
            times[k] = t
            units[k] = u
        f.create_dataset("labels", data=np.array([r[2] for r in recs], np.uint16), track_times=False)
        f.create_dataset("extra/speaker", data=np.array([speaker_ids[r[3]] for r in recs], np.uint16),
                         track_times=False)
        f.create_dataset("extra/keys", data=np.array([c.encode() for c in CLASSES]), track_times=False)
        order = sorted(speaker_ids, key=speaker_ids.get)
        by_name = {s.variant: s for s in speakers}
        meta = f.create_group("extra/meta_info")
        meta.create_dataset("variant", data=np.array([v.encode() for v in order]), track_times=False)
        for field in ("pitch", "range", "rate"):
            meta.create_dataset(field, data=np.array([getattr(by_name[v], field) for v in order], np.uint16),
                                track_times=False)
        f.attrs["description"] = (f"spikelfp spoken-digits {split} split: eSpeak NG {espeak_version} speech "
                                  f"through spikelfp's 700-channel cochlea, generator v{GENERATOR_VERSION}")


def build_recordings(root: str, gen_seed: int = 0, progress=None, size: str = "full") -> str:
    """Write ``shd_train.h5`` and ``shd_test.h5`` (if not there yet); returns tonic's ``save_to``.

    Built in a temporary folder and renamed into place: a killed build leaves nothing half made.
    """
    if size not in SIZES:
        raise ValueError(f"unknown spoken-digits size {size!r}; choose one of {', '.join(SIZES)}")
    final = recordings_dir(root, gen_seed, size)
    if os.path.exists(os.path.join(final, "COMPLETE")):
        return final
    n_tr, n_te, rep_tr, rep_te = SIZES[size]
    jobs = {"train": [(s, w, r) for s in TRAIN_SPEAKERS[:n_tr] for w in range(20) for r in range(rep_tr)],
            "test": [(s, w, r) for s in TEST_SPEAKERS[:n_te] for w in range(20) for r in range(rep_te)]}
    flat = jobs["train"] + jobs["test"]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    Espeak.check()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        waves, version = pool.submit(synthesise, flat, gen_seed).result()
    with build_folder(final) as b:
        tmp = b.path
        os.makedirs(os.path.join(tmp, "SHD"))
        all_speakers = list(TRAIN_SPEAKERS) + list(TEST_SPEAKERS)
        speaker_ids = {s.variant: k for k, s in enumerate(all_speakers)}
        total = len(flat)
        bar = progress(total=total, desc="spoken-digits: cochlea", unit="recording") if progress else None
        k = 0
        for split, todo in jobs.items():
            recs = []
            for s, w, r in todo:
                t, u = utterance(waves[k], s, w, r, gen_seed)
                k += 1
                recs.append((t, u, w, s.variant))
                if bar is not None:
                    bar.update(1)
            _write_split(os.path.join(tmp, "SHD", f"shd_{split}.h5"), recs, all_speakers, speaker_ids,
                         version, split)
        if bar is not None:
            bar.close()
        b.note = (f"{total} recordings, generator v{GENERATOR_VERSION}, seed {gen_seed}, size {size}, "
                  f"eSpeak NG {version}")
    return final
