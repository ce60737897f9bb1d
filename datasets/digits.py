"""``digits-saccade``: the embedded default dataset, made offline.

scikit-learn's bundled 8x8 digits (1,797 images) are swept along N-MNIST's saccades by
:mod:`spikelfp.datasets.saccade`, written as real N-MNIST ``.bin`` recordings in tonic's N-MNIST
folder layout (``<root>/DigitsSaccade/{Train,Test}/<label>/<index>.bin``) and read back by tonic's
own ``NMNIST`` class, so the default run walks the same code path as real N-MNIST data.

The train/test split is fixed (stratified, 20 % test, its own seed); the recordings are
deterministic for a generator seed and built once into the cache folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np

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


def recordings_dir(root: str, gen_seed: int = 0) -> str:
    """Folder holding tonic's layout for this generator version and seed."""
    return os.path.join(root, "digits-saccade", f"recordings-v{GENERATOR_VERSION}-seed{gen_seed}")


def build_recordings(root: str, gen_seed: int = 0, progress=None) -> str:
    """Write all 1,797 recordings (if not there yet); returns the tonic ``save_to`` folder.

    Built in a temporary folder and renamed into place, so a killed build leaves nothing half made.
    """
    from sklearn.datasets import load_digits

    final = recordings_dir(root, gen_seed)
    if os.path.exists(os.path.join(final, "COMPLETE")):
        return final
    digits = load_digits()
    images = digits.images / 16.0
    labels = digits.target.astype(np.int64)
    train_idx, test_idx = split_indices(labels)
    parent = os.path.dirname(final)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".building-", dir=parent)
    try:
        rng = np.random.default_rng([gen_seed, GENERATOR_VERSION])
        folder = {int(k): "Train" for k in train_idx} | {int(k): "Test" for k in test_idx}
        it = range(len(labels))
        if progress is not None:
            it = progress(it, desc="digits-saccade: recording", unit="sample")
        for k in it:
            x, y, t, p = emulate_saccades(images[k], rng)
            d = os.path.join(tmp, "DigitsSaccade", folder[k], str(labels[k]))
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, f"{k:05d}.bin"), "wb") as fh:
                fh.write(encode_nmnist(x, y, t, p))
        with open(os.path.join(tmp, "COMPLETE"), "w") as fh:
            fh.write(f"{len(labels)} recordings, generator v{GENERATOR_VERSION}, seed {gen_seed}\n")
        if os.path.exists(final):
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def tonic_dataset(save_to: str, train: bool):
    """tonic's ``NMNIST`` reader over our recordings (a subclass that only changes the folder
    name and the completeness check; reading, labels and ordering are tonic's)."""
    from spikelfp.datasets.registry import require_tonic

    tonic = require_tonic()

    class DigitsSaccade(tonic.datasets.NMNIST):
        def _check_exists(self) -> bool:
            return os.path.isdir(os.path.join(self.location_on_system, self.folder_name))

        def download(self):  # pragma: no cover - _check_exists is true once built
            raise FileNotFoundError(f"digits-saccade recordings missing under {self.location_on_system}")

    return DigitsSaccade(save_to=save_to, train=train)
