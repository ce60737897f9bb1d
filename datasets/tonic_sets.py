"""Real neuromorphic datasets, read through tonic's own dataset classes (never re-implemented).

Each entry knows where tonic keeps its files under ``<root>/<ClassName>/``: the archive tonic
downloads and checks for, and what the archive extracts to. With a network, tonic downloads and
extracts (with its progress bar). Without one, an archive placed by hand is extracted by tonic
(N-MNIST, SHD, SSC, DVS Gesture) or by us (POKER-DVS, whose tonic class only copies archives from
its own package folder); a missing archive gives one message naming the file, its md5 and where to
put it.
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass, field

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
    extract_ourselves: bool = False
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

    def open(self, root: str, split: str, download: bool = True):
        """The tonic dataset of ``split`` (``train``/``test``).

        With ``download`` (the default), tonic checks, downloads and extracts as it always does.
        Offline (``download=False``) what is on disk is used as it is: tonic's class with its
        existence check replaced by ours (the extracted files present) and its download
        replaced by an error; reading, labels and ordering stay tonic's.
        """
        tonic = require_tonic()
        cls = getattr(tonic.datasets, self.cls_name)
        a = self.archives[split]
        if not self.present(root, split) and self.archive_present(root, split) and self.extract_ourselves:
            _safe_extract(os.path.join(self.folder(root), a.filename), self.folder(root))
        if not download:
            # offline, the extracted files are what is read (an archive beside them is not needed)
            if not os.path.exists(os.path.join(self.folder(root), a.extracted)):
                raise DatasetNotAvailable(self.missing_message(root, split))
            message = self.missing_message(root, split)

            def _check_exists(_self):
                return True

            def _download(_self):  # pragma: no cover - _check_exists is true
                raise DatasetNotAvailable(message)

            cls = type(self.cls_name, (cls,), {"_check_exists": _check_exists, "download": _download,
                                               "_copy_and_extract_local_data": _download})
        extracted = os.path.join(self.folder(root), a.extracted)
        try:
            return cls(save_to=root, **self.split_kwargs[split])
        except DatasetNotAvailable:
            raise
        except (OSError, ValueError, RuntimeError, KeyError) as e:
            if os.path.exists(extracted):
                raise DatasetNotAvailable(f"{extracted}: unreadable or corrupt ({type(e).__name__}: {e})") from None
            raise DatasetNotAvailable(f"{self.missing_message(root, split)} (tonic said: {e})") from None


def _safe_extract(archive: str, dest: str) -> None:
    """Extract a tar archive, refusing members that would land outside ``dest``."""
    dest_abs = os.path.abspath(dest)
    try:
        with tarfile.open(archive) as tar:
            for m in tar.getmembers():
                target = os.path.abspath(os.path.join(dest, m.name))
                if not target.startswith(dest_abs + os.sep) and target != dest_abs:
                    raise DatasetNotAvailable(f"{archive}: member {m.name!r} would extract outside {dest}")
                if m.issym() or m.islnk():
                    raise DatasetNotAvailable(f"{archive}: links are not allowed ({m.name!r})")
            tar.extractall(dest)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DatasetNotAvailable(f"{archive}: corrupt or truncated archive ({e})") from None


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
    extract_ourselves=True,
    notes="tonic 1.7 does not ship the POKER-DVS archives, so spikelfp extracts them from that folder.",
)
