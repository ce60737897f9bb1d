"""Real neuromorphic datasets, read through tonic's own dataset classes (never re-implemented).

Each entry knows where tonic keeps its files under ``<root>/<ClassName>/``: the archive tonic
downloads and checks for, and what the archive extracts to. What is on disk is used first, with or
without a network: extracted files are read as they are (no archive needed beside them), and an
archive placed by hand is extracted (checked member by member, then by tonic's own extractor, into
a temporary folder renamed into place). Only when neither is there does tonic download and
extract, with its progress bar; offline, a missing set gives one message naming the file, its
md5 and where to put it.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .spec import require_tonic


class DatasetNotAvailable(FileNotFoundError):
    """A dataset's files are neither on disk nor downloadable here."""


@dataclass(frozen=True)
class Archive:
    filename: str
    md5: str
    url: str
    extracted: str          # what must exist (relative to the class folder) once extracted


@dataclass(frozen=True)
class TonicSource:
    """How one tonic dataset class lays out its files, per split."""

    cls_name: str
    archives: dict          # split -> Archive
    split_kwargs: dict      # split -> kwargs for the tonic class
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def folder(self, root: str) -> str:
        return os.path.join(root, self.cls_name)

    def present(self, root: str, split: str) -> bool:
        a = self.archives[split]
        base = self.folder(root)
        return os.path.exists(os.path.join(base, a.filename)) and os.path.exists(os.path.join(base, a.extracted))

    def archive_present(self, root: str, split: str) -> bool:
        return os.path.exists(os.path.join(self.folder(root), self.archives[split].filename))

    def missing_message(self, root: str, split: str) -> str:
        a = self.archives[split]
        return (f"{self.cls_name} {split} split is not on disk and cannot be downloaded here. Place "
                f"{a.filename} (md5 {a.md5}, from {a.url}) in {self.folder(root)}/ and run again: it is "
                f"extracted there. {self.notes}").strip()

    def extracted_present(self, root: str, split: str) -> bool:
        return os.path.exists(os.path.join(self.folder(root), self.archives[split].extracted))

    def open(self, root: str, split: str, download: bool = True):
        """The tonic dataset of ``split`` (``train``/``test``).

        Files on disk come first: extracted files are read as they are, a hand-placed archive is
        extracted (:func:`extract_archive`). Only with neither does tonic check, download and
        extract as it always does (``download``; else :class:`DatasetNotAvailable` naming the
        archive). On-disk files are read by tonic's class with its existence check replaced by
        ours (the extracted files present) and its download replaced by an error; reading, labels
        and ordering stay tonic's.
        """
        tonic = require_tonic()
        cls = getattr(tonic.datasets, self.cls_name)
        a = self.archives[split]
        if not self.extracted_present(root, split) and self.archive_present(root, split):
            extract_archive(os.path.join(self.folder(root), a.filename), self.folder(root), a.extracted,
                            f"(The {self.cls_name} {split} archive is {a.filename}, md5 {a.md5}, from {a.url}.)")
        if not self.extracted_present(root, split) and not download:
            raise DatasetNotAvailable(self.missing_message(root, split))
        if self.extracted_present(root, split):
            message = self.missing_message(root, split)

            def _check_exists(_self):
                return True

            def _download(_self):  # pragma: no cover - _check_exists is true
                raise DatasetNotAvailable(message)

            cls = type(self.cls_name, (cls,), {"_check_exists": _check_exists, "download": _download,
                                               "_copy_and_extract_local_data": _download})
        extracted = os.path.join(self.folder(root), a.extracted)
        if extracted.endswith(".h5") and os.path.isfile(extracted):
            _check_hsd_counts(extracted)
        try:
            return cls(save_to=root, **self.split_kwargs[split])
        except DatasetNotAvailable:
            raise
        except (OSError, ValueError, RuntimeError, KeyError) as e:
            if os.path.exists(extracted):
                raise DatasetNotAvailable(f"{extracted}: unreadable or corrupt ({type(e).__name__}: {e})") from None
            raise DatasetNotAvailable(f"{self.missing_message(root, split)} (tonic said: {e})") from None


def _check_hsd_counts(path: str) -> None:
    """An SHD/SSC file must hold one label per recording: tonic's class reads ``len(labels)``
    samples and would silently drop recordings beyond them."""
    import h5py

    from .spec import DatasetError

    try:
        with h5py.File(path, "r") as f:
            n = {k: len(f[k]) for k in ("spikes/times", "spikes/units", "labels") if k in f}
            if "spikes/times" in f:      # tonic casts times to int: a NaN would become a huge negative time
                bad = next((k for k, t in enumerate(f["spikes/times"]) if not np.all(np.isfinite(t))), None)
                if bad is not None:
                    raise DatasetError(f"{path}: recording {bad} has NaN or infinite spike times")
    except OSError as e:
        raise DatasetNotAvailable(f"{path}: unreadable or corrupt ({e})") from None
    if len(n) < 3:
        missing = sorted({"spikes/times", "spikes/units", "labels"} - set(n))
        raise DatasetError(f"{path}: no {', '.join(missing)} (not an SHD/SSC file?)")
    if len(set(n.values())) != 1:
        raise DatasetError(f"{path}: {n['spikes/times']} recordings, {n['spikes/units']} unit lists and "
                           f"{n['labels']} labels: one of each per sample")


def _members(archive: str) -> list[str]:
    """Member names of a zip or tar archive, refusing absolute paths, ``..`` and links."""
    if archive.endswith(".zip") or zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            names = z.namelist()
    else:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            links = [m.name for m in members if m.issym() or m.islnk()]
            if links:
                raise DatasetNotAvailable(f"{archive}: links are not allowed ({links[0]!r})")
            names = [m.name for m in members]
    for name in names:
        norm = os.path.normpath(name)
        if os.path.isabs(name) or norm == ".." or norm.startswith(".." + os.sep):
            raise DatasetNotAvailable(f"{archive}: member {name!r} would extract outside its folder")
    return names


def extract_archive(archive: str, dest: str, expected: str, hint: str = "") -> None:
    """Extract a hand-placed (or downloaded) archive so that ``dest/expected`` appears, atomically.

    Members are checked first (no absolute paths, ``..`` or links), then tonic's own extractor
    unpacks into a temporary folder beside ``dest/expected``, which is renamed into place: an
    interrupted extraction leaves nothing that looks extracted. A corrupt, truncated or foreign
    archive is one :class:`DatasetNotAvailable` naming it.
    """
    from tonic.download_utils import extract_archive as tonic_extract

    tmp = tempfile.mkdtemp(prefix=".extracting-", dir=dest)
    try:
        try:
            names = _members(archive)
            tonic_extract(archive, tmp)
        except DatasetNotAvailable:
            raise
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, RuntimeError, ValueError) as e:
            why = " ".join(str(e).split())                     # one line
            raise DatasetNotAvailable(f"{archive}: corrupt, truncated or not a zip/tar archive ({why}); "
                                      f"replace it. {hint}".strip()) from None
        got = os.path.join(tmp, expected)
        if not os.path.exists(got):
            top = sorted({n.split("/")[0] for n in names})[:5]
            raise DatasetNotAvailable(f"{archive} holds {top or 'nothing'}, not {expected}: is it the right "
                                      f"archive? {hint}".strip())
        os.replace(got, os.path.join(dest, expected))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


NMNIST = TonicSource(
    "NMNIST",
    {"train": Archive("train.zip", "20959b8e626244a1b502305a9e6e2031",
                      "https://data.mendeley.com/public-files/datasets/468j46mzdv/files/"
                      "39c25547-014b-4137-a934-9d29fa53c7a0/file_downloaded", "Train"),
     "test": Archive("test.zip", "69ca8762b2fe404d9b9bad1103e97832",
                     "https://data.mendeley.com/public-files/datasets/468j46mzdv/files/"
                     "05a4d654-7e03-4c15-bdfa-9bb2bcbea494/file_downloaded", "Test")},
    {"train": {"train": True}, "test": {"train": False}},
)

SHD = TonicSource(
    "SHD",
    {"train": Archive("shd_train.h5.zip", "f3252aeb598ac776c1b526422d90eecb",
                      "https://zenkelab.org/datasets/shd_train.h5.zip", "shd_train.h5"),
     "test": Archive("shd_test.h5.zip", "1503a5064faa34311c398fb0a1ed0a6f",
                     "https://zenkelab.org/datasets/shd_test.h5.zip", "shd_test.h5")},
    {"train": {"train": True}, "test": {"train": False}},
)

SSC = TonicSource(
    "SSC",
    {"train": Archive("ssc_train.h5.zip", "d102be95e7144fcc0553d1f45ba94170",
                      "https://zenkelab.org/datasets/ssc_train.h5.zip", "ssc_train.h5"),
     "test": Archive("ssc_test.h5.zip", "a35ff1e9cffdd02a20eb850c17c37748",
                     "https://zenkelab.org/datasets/ssc_test.h5.zip", "ssc_test.h5")},
    {"train": {"split": "train"}, "test": {"split": "test"}},
)

DVS_GESTURE = TonicSource(
    "DVSGesture",
    {"train": Archive("ibmGestureTrain.tar.gz", "3a8f0d4120a166bac7591f77409cb105",
                      "https://figshare.com/ndownloader/files/38022171", "ibmGestureTrain"),
     "test": Archive("ibmGestureTest.tar.gz", "56070e45dadaa85fff82e0fbfbc06de5",
                     "https://figshare.com/ndownloader/files/38020584", "ibmGestureTest")},
    {"train": {"train": True}, "test": {"train": False}},
)

POKER_DVS = TonicSource(
    "POKERDVS",
    {"train": Archive("pips_train.tar.gz", "412bcfb96826e4fcb290558e8c150aae",
                      "https://www.neuromorphic-vision.com (POKER-DVS, pips)", "pips_train"),
     "test": Archive("pips_test.tar.gz", "eef2bf7d0d3defae89a6fa98b07c17af",
                     "https://www.neuromorphic-vision.com (POKER-DVS, pips)", "pips_test")},
    {"train": {"train": True}, "test": {"train": False}},
    notes="tonic 1.7 does not ship the POKER-DVS archives, so spikelfp extracts them from that folder.",
)
