"""Versioned HDF5 checkpoints (h5py), written atomically.

Layout of ``format_version`` 2::

    /                 attrs: kind="spikelfp-model", format_version, library_version, created,
                             seed, dataset, config (JSON), history (JSON), binning (JSON),
                             rng_state (JSON)
    /network          attrs: n_layers, dt [s], arch (the hidden layers' spec, docs/layers.md)
    /network/layer_0  datasets: weight (n_out, n_in), bias (n_out,) [optional],
                                recurrent (n_out, n_out) [optional; a recurrent layer's V]
                      attrs: beta, threshold, reset, type ("dense", "recurrent" or "conv2d")
                      conv2d: weight (C_out, C_in, K, K), bias (C_out,); attrs in_shape (H, W, C_in),
                              stride, padding, trainable (False: a pooling layer's fixed synapses)
    /optimizer        [optional] attrs: state (JSON scalars); datasets: the optimizer's buffers
                      (in the packed layout of spikelfp.packed: V.T follows W.T per layer)

Version 1 (spikelfp 0.1: dense layers only, no ``arch``/``type``/``recurrent``) is read as the
same network; its config's ``hidden`` becomes the spec ``d<N>-...``; it is written back as
version 2. Every field but ``/network`` is optional on read and gets a default, so old files keep
loading. A file from a newer format is refused with a message saying so.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field

import numpy as np

from .network import ConvLayer, LIFLayer, Network

FORMAT_VERSION = 2
KIND = "spikelfp-model"


class ModelFileError(ValueError):
    """A file that is not a readable spikelfp model (missing, corrupt, foreign, or too new)."""


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    On any error the temporary file is removed and ``path`` is left as it was. A symlink is
    written through (its target is replaced, the link stays); a destination that is not a regular
    file (a FIFO, a device, ``/dev/stdout``) cannot be replaced: the finished content is copied
    into it instead.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):     # stat follows links
        if os.path.isdir(path):
            raise IsADirectoryError(21, "is a folder", path)
        fd, tmp = tempfile.mkstemp(prefix=".spikelfp-", suffix=".tmp")
        os.close(fd)
        try:
            yield tmp
            with open(tmp, "rb") as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
        return
    path = os.path.realpath(path)
    d = os.path.dirname(path)
    os.makedirs(d, exist_ok=True)
    # the writer's pid in the name: a temporary whose process is gone (SIGKILL) is removable by anyone
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.{os.getpid()}.", suffix=".tmp", dir=d)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())       # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def same_file(a, b) -> bool:
    """True when paths ``a`` and ``b`` name the same file (existing or not: resolved paths)."""
    a, b = os.fspath(a), os.fspath(b)
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def remove_stale_temporaries(folder) -> list:
    """Remove ``.<name>.*.tmp`` files that an interrupted atomic write left in ``folder``
    (call only while holding the folder's lock: no live writer can own them). Returns their names."""
    gone = []
    if not os.path.isdir(folder):
        return gone
    for name in os.listdir(folder):
        if name.startswith(".") and name.endswith(".tmp"):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(folder, name))
                gone.append(name)
    return gone


def remove_orphaned_temporaries(folder) -> list:
    """Remove the ``.<name>.<pid>.*.tmp`` files of atomic writes whose process ``pid`` is gone (a
    SIGKILL during a write); a live writer's temporaries stay. Safe without a lock. Returns names."""
    gone = []
    if not os.path.isdir(folder):
        return gone
    for name in os.listdir(folder):
        if not (name.startswith(".") and name.endswith(".tmp")):
            continue
        parts = name[:-4].rsplit(".", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        if pid != os.getpid() and not os.path.exists(f"/proc/{pid}"):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(folder, name))
                gone.append(name)
    return gone


def remove_orphaned_dirs(parent, prefix: str) -> list:
    """Remove folders ``<prefix><pid>-*`` in ``parent`` whose process ``pid`` is gone (a killed
    process cannot clean up after itself; the next one does). Returns the names removed."""
    import shutil

    gone = []
    if not os.path.isdir(parent):
        return gone
    for name in os.listdir(parent):
        if not name.startswith(prefix):
            continue
        try:
            pid = int(name[len(prefix):].split("-")[0])
        except ValueError:
            continue
        if pid != os.getpid() and not os.path.exists(f"/proc/{pid}"):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
            gone.append(name)
    return gone


class RunInUse(RuntimeError):
    """Another process holds the run folder's lock."""


class RunLock:
    """An exclusive ``fcntl`` lock on ``<folder>/.lock`` for the life of a run (released on exit,
    also when the process is killed: the kernel drops it with the file descriptor)."""

    def __init__(self, folder):
        self.folder = os.fspath(folder)
        self.fh = None

    def __enter__(self):
        import fcntl

        self.fh = open(os.path.join(self.folder, ".lock"), "a+")
        try:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.seek(0)
            owner = self.fh.read().strip() or "?"
            self.fh.close()
            raise RunInUse(f"{self.folder} is in use by another spikelfp run (pid {owner}); wait for it or "
                           "choose another --out") from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(str(os.getpid()))
        self.fh.flush()
        return self

    def __exit__(self, *exc):
        import fcntl

        if self.fh is not None:
            with contextlib.suppress(OSError):
                self.fh.truncate(0)
                fcntl.flock(self.fh.fileno(), fcntl.LOCK_UN)
            self.fh.close()


def write_json(path, obj) -> None:
    """Write JSON atomically."""
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=False, default=_json_default)
        fh.write("\n")


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


@dataclass
class Checkpoint:
    """Everything a run saves: the network plus how it was made."""

    network: Network
    config: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    binning: dict | None = None
    dataset: str | None = None
    seed: int | None = None
    optimizer: dict | None = None     # {"state": {json scalars}, "arrays": {name: ndarray}}
    rng_state: dict | None = None
    pruning: dict | None = None       # spikelfp prune: amount, criterion, scope, synapse counts, source model
    format_version: int = FORMAT_VERSION
    library_version: str = ""


def save_checkpoint(path, ckpt: Checkpoint) -> None:
    """Write ``ckpt`` to ``path`` (HDF5) atomically: an existing file survives any failure."""
    with atomic_path(path) as tmp:
        _write_checkpoint(tmp, ckpt)


def check_checkpoint(ckpt: Checkpoint) -> None:
    """Serialise ``ckpt`` into memory only: what the first epoch's checkpoint will hold (settings,
    dataset name, binning, seed) fails here, before any training, if it cannot be written."""
    import uuid

    _write_checkpoint(f"spikelfp-check-{uuid.uuid4().hex}.h5", ckpt, driver="core", backing_store=False)


def _write_checkpoint(target, ckpt: Checkpoint, **file_kw) -> None:
    import h5py

    from . import __version__

    with h5py.File(target, "w", **file_kw) as f:
        f.attrs["kind"] = KIND
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["library_version"] = __version__
        f.attrs["created"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        if ckpt.seed is not None:
            f.attrs["seed"] = int(ckpt.seed)
        if ckpt.dataset is not None:
            f.attrs["dataset"] = str(ckpt.dataset)
        f.attrs["config"] = json.dumps(ckpt.config, default=_json_default)
        f.attrs["history"] = json.dumps(ckpt.history, default=_json_default)
        if ckpt.binning is not None:
            f.attrs["binning"] = json.dumps(ckpt.binning, default=_json_default)
        if ckpt.rng_state is not None:
            f.attrs["rng_state"] = json.dumps(ckpt.rng_state, default=_json_default)
        if ckpt.pruning is not None:
            f.attrs["pruning"] = json.dumps(ckpt.pruning, default=_json_default)
        g = f.create_group("network")
        g.attrs["n_layers"] = len(ckpt.network)
        g.attrs["dt"] = float(ckpt.network.dt)
        g.attrs["arch"] = ckpt.network.arch
        for l, layer in enumerate(ckpt.network.layers):
            gl = g.create_group(f"layer_{l}")
            gl.attrs["type"] = ("conv2d" if isinstance(layer, ConvLayer) else
                                "recurrent" if layer.is_recurrent else "dense")
            if isinstance(layer, ConvLayer):
                gl.attrs["in_shape"] = np.asarray(layer.in_shape, dtype=np.int64)
                gl.attrs["stride"] = layer.stride
                gl.attrs["padding"] = layer.padding
                gl.attrs["trainable"] = bool(layer.trainable)
            gl.create_dataset("weight", data=layer.weight)
            if layer.bias is not None:
                gl.create_dataset("bias", data=layer.bias)
            if layer.recurrent is not None:
                gl.create_dataset("recurrent", data=layer.recurrent)
            gl.attrs["beta"] = float(layer.beta)
            gl.attrs["threshold"] = float(layer.threshold)
            gl.attrs["reset"] = layer.reset
        if ckpt.optimizer is not None:
            go = f.create_group("optimizer")
            go.attrs["state"] = json.dumps(ckpt.optimizer.get("state", {}), default=_json_default)
            for name, arr in ckpt.optimizer.get("arrays", {}).items():
                go.create_dataset(name, data=arr)


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _attr_json(f, name, default):
    if name not in f.attrs:
        return default
    try:
        return json.loads(f.attrs[name])
    except (TypeError, ValueError) as e:
        where = getattr(getattr(f, "file", f), "filename", "?")
        raise ModelFileError(f"{where}: attribute {name!r} is not valid JSON: {e}") from None


MAX_BINS = 1_000_000     # time steps per sample a stored binning may declare (1,000 s at 1 ms)


def load_checkpoint(path) -> Checkpoint:
    """Read a checkpoint; raises :class:`ModelFileError` with the reason for any unusable file."""
    import h5py

    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ModelFileError(f"{path} is a folder: give the model.h5 inside it")
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise ModelFileError(f"{path} is not a regular file (a FIFO, device or socket)")
    from .memory import available_bytes

    budget = int(0.8 * available_bytes())
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ModelFileError(f"{path}: not a readable HDF5 file (truncated or not a spikelfp model?): {e}") from None
    with f:
        try:
            if f.attrs.get("kind") != KIND or "network" not in f:
                raise ModelFileError(f"{path}: not a spikelfp model (no kind={KIND!r} / network group)")
            version = int(f.attrs.get("format_version", 0))
            if version > FORMAT_VERSION:
                raise ModelFileError(
                    f"{path}: written in format_version {version} by spikelfp "
                    f"{f.attrs.get('library_version', '?')}; this spikelfp reads up to "
                    f"{FORMAT_VERSION}. Upgrade spikelfp to read it.")
            g = f["network"]
            n_layers = int(g.attrs.get("n_layers", len([k for k in g if k.startswith("layer_")])))
            layers = []
            for l in range(n_layers):
                if f"layer_{l}" not in g:
                    raise ModelFileError(f"{path}: network/layer_{l} is missing")
                gl = g[f"layer_{l}"]
                if "weight" not in gl:
                    raise ModelFileError(f"{path}: network/layer_{l}/weight is missing")
                for name in ("weight", "bias", "recurrent"):
                    if name in gl and gl[name].dtype.kind != "f":
                        raise ModelFileError(f"{path}: network/layer_{l}/{name} holds {gl[name].dtype} values, "
                                             "not floats")
                    if name in gl and gl[name].size * gl[name].dtype.itemsize > budget:
                        raise ModelFileError(f"{path}: network/layer_{l}/{name} declares shape {gl[name].shape} "
                                             f"({gl[name].size * gl[name].dtype.itemsize / 2**30:.1f} GiB), more than "
                                             f"the {budget / 2**30:.1f} GiB of memory available")
                kind = _text(gl.attrs.get("type", "dense"))
                if kind not in ("dense", "recurrent", "conv2d"):
                    raise ModelFileError(f"{path}: network/layer_{l} has type {kind!r}, which this spikelfp "
                                         "cannot read (dense, recurrent, conv2d); upgrade spikelfp")
                if (kind == "recurrent") != ("recurrent" in gl):
                    raise ModelFileError(f"{path}: network/layer_{l} is typed {kind!r} but "
                                         f"{'lacks' if kind == 'recurrent' else 'has'} recurrent weights")
                bias = gl["bias"][()] if "bias" in gl else None
                rec = gl["recurrent"][()] if "recurrent" in gl else None
                if kind == "conv2d":
                    if "in_shape" not in gl.attrs:
                        raise ModelFileError(f"{path}: network/layer_{l} (conv2d) lacks its in_shape")
                    layers.append(ConvLayer(gl["weight"][()], tuple(int(v) for v in gl.attrs["in_shape"]),
                                            int(gl.attrs.get("stride", 1)), int(gl.attrs.get("padding", 0)), bias,
                                            float(gl.attrs.get("beta", 0.9)), float(gl.attrs.get("threshold", 1.0)),
                                            _text(gl.attrs.get("reset", "zero")),
                                            bool(gl.attrs.get("trainable", True))))
                    continue
                layers.append(LIFLayer(gl["weight"][()], bias, float(gl.attrs.get("beta", 0.9)),
                                       float(gl.attrs.get("threshold", 1.0)), _text(gl.attrs.get("reset", "zero")),
                                       recurrent=rec))
            net = Network(layers, dt=float(g.attrs.get("dt", 1e-3)))
            opt = None
            if "optimizer" in f:
                go = f["optimizer"]
                opt = {"state": _attr_json(go, "state", {}), "arrays": {k: go[k][()] for k in go}}
            seed = f.attrs.get("seed")
            ds = f.attrs.get("dataset")
            binning = _attr_json(f, "binning", None)
            if binning is not None:
                from spikelfp.datasets.binning import Binning

                if not isinstance(binning, dict):
                    raise ModelFileError(f"{path}: stored binning is corrupt (expected a JSON object)")
                try:
                    b = Binning(**binning)
                except (TypeError, ValueError) as e:
                    raise ModelFileError(f"{path}: stored binning is not valid ({e})") from None
                if b.n_bins > MAX_BINS:
                    raise ModelFileError(f"{path}: stored binning has {b.n_bins:,} time steps (at most {MAX_BINS:,})")
            pruning = _attr_json(f, "pruning", None)
            if pruning is not None and not isinstance(pruning, dict):
                raise ModelFileError(f"{path}: stored pruning record is corrupt (expected a JSON object)")
            history = _attr_json(f, "history", [])
            if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
                raise ModelFileError(f"{path}: stored training history is corrupt (expected a list of epochs)")
            config = _attr_json(f, "config", {})
            if not isinstance(config, dict):
                raise ModelFileError(f"{path}: stored training config is corrupt (expected a JSON object)")
            return Checkpoint(
                network=net,
                config=config,
                history=history,
                binning=binning,
                dataset=None if ds is None else str(ds),
                seed=None if seed is None else int(seed),
                optimizer=opt,
                rng_state=_attr_json(f, "rng_state", None),
                pruning=pruning,
                format_version=version,
                library_version=str(f.attrs.get("library_version", "")),
            )
        except ModelFileError:
            raise
        except (KeyError, OSError, ValueError, TypeError) as e:
            raise ModelFileError(f"{path}: corrupt spikelfp model: {e}") from None


def save_network(path, network: Network, **kwargs) -> None:
    save_checkpoint(path, Checkpoint(network=network, **kwargs))


def load_network(path) -> Network:
    return load_checkpoint(path).network
