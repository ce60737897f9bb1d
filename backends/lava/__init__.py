"""Lava backend: a spikelfp Network as Lava processes, run on Lava's CPU simulator (Loihi2SimCfg).

Per layer: ``Dense`` (weights) -> ``LIFReset`` (du, dv, vth, bias; reset to zero), fed by a
``RingBuffer`` source and watched by a :class:`~.procs.recorder.SpikeRecorder`.

* ``mode="float"`` (``floating_pt``): ``du = 1, dv = 1 - beta, vth = theta, bias_mant = b``; Lava's
  float LIF is then ``v = v (1 - dv) + W x + b`` with a reset to zero: spikelfp's contract.
* ``mode="fixed"`` (``fixed_pt``, bit-accurate Loihi): the parameters of
  :func:`spikelfp.loihi.quantize`; :func:`spikelfp.loihi.simulate_fixed` reproduces it bit-exactly.

Lava's Dense delays by one step per layer: layer l's spikes of step t appear at Lava step
t + l + 1 (0-based). A batch of B samples runs as one sequence of B*T + L steps; ``LIFReset``
clears u and v at each sample's first step in that layer (``reset_interval = T``,
``reset_offset = l + 2``), so the samples do not interact. The runner undoes the shift and returns
rasters aligned with spikelfp's.

A recurrent layer (``I = W x + V s[t-1] + b``) adds a Dense from its LIF's ``s_out`` back to its
``a_in``: Lava's one-step Dense delay is exactly the contract's t-1. That Dense's buffer would
carry a sample's last spikes into the next sample, so recurrent nets run one sample per Lava run.

A dense or recurrent layer with at most half of its weights non-zero (a pruned model, ``spikelfp
prune``) is connected by Lava's ``Sparse`` (a CSR matrix of only the remaining synapses; the same
arithmetic as Dense in both modes) instead of ``Dense``. Lava's Conv has no sparse form: a pruned
conv kernel keeps its zeros.

Lava forks worker processes: :meth:`LavaExport.run` always calls ``stop()`` (in ``finally``).

Example
-------
>>> from spikelfp.backends import lava                                  # doctest: +SKIP
>>> run = lava.export(net, mode="float").run(x)                          # doctest: +SKIP
>>> run.rasters[-1].shape                                               # doctest: +SKIP
(B, T, n_out)
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from spikelfp.events import as_event_batch
from spikelfp.loihi import UnsupportedNetworkError, check_loihi_compatible, quantize
from spikelfp.network import ConvLayer, Network

MODES = ("float", "fixed")
_AT_FORK = []

try:    # importing this module makes lava-nc 0.10 importable on Python 3.11 (spikelfp.compat.patch_lava)
    from spikelfp import compat as _compat

    _compat.patch_lava()
except ImportError:     # no lava-nc: the parameter files still work; running says what to install
    pass


def _die_with_parent() -> None:
    """In a forked Lava worker: ask the kernel to SIGKILL it when its parent dies (prctl
    PR_SET_PDEATHSIG), so a killed spikelfp (even by SIGKILL) leaves no orphaned workers."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)   # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):   # not Linux: the finally-block cleanup still applies
        pass


def _guard_workers() -> None:
    if not _AT_FORK:
        os.register_at_fork(after_in_child=_die_with_parent)
        _AT_FORK.append(True)


def remove_stale_tempdirs() -> list:
    """Remove ``spikelfp-lava-<pid>-*`` temp folders of runs that were killed (SIGKILL leaves them)."""
    from spikelfp.io import remove_orphaned_dirs

    return remove_orphaned_dirs(tempfile.gettempdir(), "spikelfp-lava-")


def _reap_workers(timeout: float = 5.0) -> None:
    """Kill whatever worker a failed or interrupted run left (after Lava's own stop(), if any).

    Lava's ``SystemProcess.join`` takes no timeout: the base class's join is used."""
    from multiprocessing.process import BaseProcess

    for p in multiprocessing.active_children():
        try:
            if timeout > 0:
                BaseProcess.join(p, timeout=0.1)
            if p.is_alive():
                p.kill()
            BaseProcess.join(p, timeout=max(timeout, 2.0))
        except Exception:  # noqa: BLE001 - best effort: PR_SET_PDEATHSIG still covers it
            pass


def _lava():
    from spikelfp import compat

    compat.patch_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIFReset
    from lava.utils.weightutils import SignMode

    from .procs.recorder import SpikeRecorder

    return RunSteps, Loihi2SimCfg, Dense, RingBuffer, LIFReset, SignMode, SpikeRecorder


def float_parameters(layer) -> dict:
    """LIF parameters of a float layer for Lava's ``floating_pt`` model (the one place for it).
    A conv layer's LIF is shaped (H', W', C_out) and its channel bias expanded to every position."""
    dv = 1.0 - layer.beta
    if isinstance(layer, ConvLayer):
        b = np.zeros(layer.out_shape) if layer.bias is None else \
            np.broadcast_to(layer.bias.astype(np.float64), layer.out_shape).copy()
    else:
        b = np.zeros(layer.n_out) if layer.bias is None else layer.bias.astype(np.float64)
    return {"du": 1.0, "dv": dv, "vth": float(layer.threshold), "bias_mant": b, "bias_exp": 0}


def lava_kernel(kernel: np.ndarray) -> np.ndarray:
    """spikelfp's (C_out, C_in, K, K) cross-correlation kernel as Lava's ``Conv`` weight.

    Lava's Conv takes (C_out, X, Y, C_in) on (X, Y, C) tensors and convolves (it flips the kernel
    before torch's correlation). spikelfp's channels-last (H, W, C) is handed over as Lava's
    (X, Y, C) -- X is spikelfp's y -- so the weight is the kernel with (ky, kx) on (X, Y), flipped.
    """
    return np.ascontiguousarray(kernel.transpose(0, 2, 3, 1)[:, ::-1, ::-1, :])


@dataclass
class LavaRun:
    """Spikes of every layer as Lava produced them, shifted back to spikelfp's time axis."""

    rasters: list          # uint8 (B, T, n_l) per layer
    mode: str
    lava_steps: int
    seconds: float
    workers_seen: list     # pids of the worker processes Lava forked (all stopped on return)

    @property
    def counts(self) -> list:
        return [r.sum(1).astype(np.int32) for r in self.rasters]

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / max(1, self.lava_steps)


class LavaExport:
    """A network ready to run as Lava processes (built per run, for the batch's length)."""

    def __init__(self, network: Network, mode: str = "float", weight_bits: int = 8):
        if mode not in MODES:
            raise ValueError(f"unknown Lava mode {mode!r}; choose float or fixed")
        if not isinstance(network, Network):
            raise TypeError(f"expected a spikelfp Network, got {type(network).__name__}")
        check_loihi_compatible(network)
        self.network = network
        self.mode = mode
        self.quantized = quantize(network, bits=weight_bits) if mode == "fixed" else None

    def describe(self) -> list[dict]:
        """The Lava parameters of each layer (what ``run`` builds), with its connection process
        (Dense, Sparse or Conv) and its synapses: ``weights`` (matrix entries, W and V) and
        ``synapses`` (the non-zero ones, what Lava stores with Sparse; in fixed point after
        quantization, where a tiny weight can round to zero)."""
        out = []
        params = self.layer_parameters()
        for l, layer in enumerate(self.network.layers):
            pl = params[l]
            mats = [pl[k]["weight" if k == "conv" else "weights"] for k in ("dense", "conv", "recurrent") if k in pl]
            conn = {"connection": "Conv" if "conv" in pl else ("Sparse" if pl.get("sparse") else "Dense"),
                    "weights": int(sum(np.size(m) for m in mats)),
                    "synapses": int(sum(np.count_nonzero(m) for m in mats))}
            if self.mode == "float":
                p = float_parameters(layer)
                out.append({"layer": l, "shape": list(layer.weight.shape), "du": p["du"], "dv": p["dv"],
                            "vth": p["vth"], "bias": layer.bias is not None, "recurrent": layer.is_recurrent,
                            **conn})
            else:
                q = self.quantized.layers[l]
                out.append({"layer": l, "shape": list(q.weight.shape), "weight_exp": q.weight_exp,
                            "weight_bits": q.weight_bits,
                            "vth": q.vth, "du": q.du, "dv": q.dv, "bias_exp": q.bias_exp,
                            "scale": q.scale, "bias": layer.bias is not None, "recurrent": layer.is_recurrent,
                            **conn})
        return out

    def layer_parameters(self) -> list[dict]:
        """Per layer, the keyword arguments of Lava's ``Dense`` and ``LIF`` in this mode (one place)."""
        out = []
        for l, layer in enumerate(self.network.layers):
            if isinstance(layer, ConvLayer):
                out.append(self._conv_parameters(l, layer))
                continue
            if self.mode == "float":
                p = {"dense": {"weights": layer.weight.astype(np.float64)}, "lif": float_parameters(layer)}
                if layer.is_recurrent:
                    p["recurrent"] = {"weights": layer.recurrent.astype(np.float64)}
            else:
                q = self.quantized.layers[l]
                p = {"dense": {"weights": q.weight.astype(np.int32), "weight_exp": int(q.weight_exp),
                               "num_weight_bits": int(q.weight_bits)},
                     "lif": {"du": int(q.du), "dv": int(q.dv), "vth": int(q.vth),
                             "bias_mant": q.bias_mant.astype(np.int32),
                             "bias_exp": np.full(layer.n_out, q.bias_exp, dtype=np.int32)}}
                if q.recurrent is not None:    # the same scale and exponent as W: both feed one u
                    p["recurrent"] = {"weights": q.recurrent.astype(np.int32), "weight_exp": int(q.weight_exp),
                                      "num_weight_bits": int(q.weight_bits)}
            mats = [p["dense"]["weights"]] + ([p["recurrent"]["weights"]] if "recurrent" in p else [])
            p["sparse"] = bool(sum(np.count_nonzero(m) for m in mats) <= SPARSE_DENSITY * sum(m.size for m in mats))
            out.append(p)
        return out

    def _conv_parameters(self, l: int, layer: ConvLayer) -> dict:
        geo = {"input_shape": np.asarray(layer.in_shape, dtype=np.int64), "stride": int(layer.stride),
               "padding": int(layer.padding)}
        if self.mode == "float":
            return {"conv": {"weight": lava_kernel(layer.weight.astype(np.float64)), **geo},
                    "lif": float_parameters(layer)}
        q = self.quantized.layers[l]
        return {"conv": {"weight": lava_kernel(q.weight.astype(np.int32)), "weight_exp": 0,
                         "num_weight_bits": int(q.weight_bits),
                         **geo},
                "lif": {"du": int(q.du), "dv": int(q.dv), "vth": int(q.vth),
                        "bias_mant": np.broadcast_to(q.bias_mant.astype(np.int32), layer.out_shape).copy(),
                        "bias_exp": np.full(layer.out_shape, q.bias_exp, dtype=np.int32)}}

    def run(self, x) -> LavaRun:
        """Run a batch (EventBatch or dense (B, T, n_in)) through Lava; returns aligned rasters.

        Feed-forward nets run the batch as one stream of back-to-back samples (``LIFReset`` clears
        each layer between them). A recurrent layer's Dense would carry the last step's spikes of
        one sample into the next sample's first step (Lava's Dense buffers one step, and the reset
        clears only u and v), so nets with recurrent layers run each sample in a Lava run of its own.
        """
        net = self.network
        eb = as_event_batch(x, net.n_in)
        B, T, L = eb.batch_size, eb.n_steps, len(net)
        dense_in = eb.to_dense(np.float64 if self.mode == "float" else np.int32)
        recurrent = any(layer.is_recurrent for layer in net.layers)
        groups = [[b] for b in range(B)] if recurrent else [list(range(B))]
        rasters = [np.zeros((B, T, layer.n_out), np.uint8) for layer in net.layers]
        workers: list[int] = []
        seconds, lava_steps = 0.0, 0
        for group in groups:
            n = len(group)
            steps = n * T + L
            data = np.zeros((net.n_in, steps), dtype=dense_in.dtype)
            data[:, : n * T] = dense_in[group].reshape(n * T, net.n_in).T
            recs, secs, seen = self._run_stream(data, steps, None if recurrent else T, steps if recurrent else None)
            workers += seen
            seconds += secs
            lava_steps += steps
            for l, (rec, layer) in enumerate(zip(recs, net.layers)):
                idx = (np.arange(n)[:, None] * T + np.arange(T)[None, :] + l + 1).ravel()
                rasters[l][group] = rec[idx].reshape(n, T, layer.n_out)
        return LavaRun(rasters, self.mode, lava_steps, seconds, workers)

    def _run_stream(self, data, steps: int, n_steps: int | None, one_sample_steps: int | None):
        """One Lava run of ``steps`` steps on source ``data`` (n_in, steps); returns every layer's
        recorded spikes (steps, n_l), the seconds it took and the worker pids seen."""
        RunSteps, Loihi2SimCfg, Dense, RingBuffer, LIFReset, SignMode, SpikeRecorder = _lava()
        net = self.network
        remove_stale_tempdirs()
        tmp = tempfile.mkdtemp(prefix=f"spikelfp-lava-{os.getpid()}-")   # pid: whose it is
        src = None
        workers: list[int] = []
        t0 = time.perf_counter()
        _guard_workers()
        try:
            src = RingBuffer(data=data)
            procs = build_processes(self.layer_parameters(), self.mode, n_steps=n_steps,
                                    one_sample_steps=one_sample_steps)
            procs.connect_source(src.s_out)
            recorders = []
            for l, (layer, lif) in enumerate(zip(net.layers, procs.lifs, strict=True)):
                rec = SpikeRecorder(shape=(layer.n_out,), n_steps=steps, path=os.path.join(tmp, f"layer{l}.npy"))
                (lif.s_out.flatten() if len(lif.s_out.shape) > 1 else lif.s_out).connect(rec.a_in)
                recorders.append(rec)
            cfg = Loihi2SimCfg(select_tag=procs.select_tag)
            src.run(condition=RunSteps(num_steps=steps), run_cfg=cfg)
            workers = [p.pid for p in multiprocessing.active_children()]
        except BaseException as e:
            interrupted = isinstance(e, (KeyboardInterrupt, SystemExit))
            if interrupted:
                from spikelfp import interrupts
                interrupts.acknowledge()          # handled here: no re-raise during the cleanup
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        else:
            interrupted = False
        finally:
            # On an interrupt, Lava's stop() can block for good while workers are still starting
            # (seen under SIGTERM): kill the workers instead; otherwise stop Lava the normal way.
            if src is not None and not interrupted:
                try:
                    src.stop()
                except Exception:  # noqa: BLE001 - a failed run may already have stopped
                    pass
            _reap_workers(timeout=0.0 if interrupted else 5.0)
        seconds = time.perf_counter() - t0
        try:
            recs = []
            for l in range(len(net.layers)):
                path = os.path.join(tmp, f"layer{l}.npy")
                if not os.path.exists(path):
                    raise RuntimeError(f"Lava run ended without writing layer {l}'s spikes")
                recs.append(np.load(path))                       # (steps, n)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return recs, seconds, workers


@dataclass
class LavaProcesses:
    """A spikelfp network as a chain of Lava processes: per layer ``Dense -> LIF`` (``LIFReset``
    when samples of ``n_steps`` steps are to be separated by a reset).

    Connect a source's ``s_out`` to :attr:`s_in` and :attr:`s_out` to a sink's ``a_in``; run with
    ``Loihi2SimCfg(select_tag=procs.select_tag)``. Each Dense adds one step of delay: the spikes of
    layer l for input step t appear at Lava step t + l + 1.
    """

    denses: list
    lifs: list
    mode: str
    n_steps: int | None
    recurrent: list = None     # per layer: the recurrent Dense (lif.s_out -> lif.a_in) or None

    @property
    def s_in(self):
        """The first layer's input port (a conv layer's is shaped (H, W, C): see :meth:`connect_source`)."""
        return self.denses[0].s_in

    @property
    def s_out(self):
        return self.lifs[-1].s_out

    def connect_source(self, src_out) -> None:
        """Connect a flat source port (n_in,) to the first layer, reshaped to its input shape
        (spikelfp's flat channels are channels-last, which a C-order reshape to (H, W, C) keeps)."""
        shape = tuple(self.s_in.shape)
        (src_out.reshape(shape) if tuple(src_out.shape) != shape else src_out).connect(self.s_in)

    @property
    def select_tag(self) -> str:
        return "floating_pt" if self.mode == "float" else "fixed_pt"


def build_processes(layer_params: list[dict], mode: str, n_steps: int | None = None, *,
                    one_sample_steps: int | None = None) -> LavaProcesses:
    """Lava ``Dense -> LIF`` processes of every layer, connected in a chain.

    ``layer_params`` as :meth:`LavaExport.layer_parameters` gives them (or :func:`load` reads them).
    With ``n_steps`` = T, ``LIFReset`` clears each layer's u and v at the first step of every
    sample in a stream of back-to-back samples of T steps (offset by the layer's Dense delays:
    ``reset_interval = T``, ``reset_offset = (l + 2) % T``); without it, plain ``LIF`` (one stream).

    A layer with a ``"recurrent"`` entry gets a second Dense from its own ``s_out`` back to its
    ``a_in``: Lava's one-step Dense delay is exactly the contract's ``V s[t-1]``. Such a net cannot
    separate back-to-back samples in one stream (that Dense hands the last step's spikes of a
    sample to the next one's first step; ``LIFReset`` clears only u and v), so ``n_steps`` is
    refused for it: run each sample from a fresh start, as :meth:`LavaExport.run` does, with
    ``one_sample_steps`` = the run's length: each layer is reset once, at its first step (so a
    bias does not charge the membrane during the Dense delays before the sample reaches it).
    """
    if mode not in MODES:
        raise ValueError(f"unknown Lava mode {mode!r}; choose float or fixed")
    if n_steps and any(p.get("recurrent") for p in layer_params):
        raise ValueError("n_steps: a recurrent layer carries the last spikes of one sample into the next one's "
                         "first step through its Dense's one-step buffer, which LIFReset does not clear; run each "
                         "sample in its own Lava run (n_steps=None), as spikelfp's LavaExport.run does")
    _, _, Dense, _, LIFReset, SignMode, _ = _lava()
    from lava.proc.conv.process import Conv
    from lava.proc.lif.process import LIF
    from lava.proc.sparse.process import Sparse

    denses, lifs, recs = [], [], []
    for l, p in enumerate(layer_params):
        if "conv" in p:
            kw = dict(p["conv"])
            kw["input_shape"] = tuple(int(v) for v in kw["input_shape"])
            dense = Conv(**kw)                     # Lava's Conv delays by one step like Dense
            shape = tuple(dense.output_shape)
        else:
            kw = dict(p["dense"])
            if mode == "fixed":
                kw["sign_mode"] = SignMode.MIXED
            conn = Sparse if p.get("sparse") else Dense    # a pruned layer: only its remaining synapses
            dense = conn(**kw)
            shape = (kw["weights"].shape[0],)
        period = int(n_steps or one_sample_steps or 0)
        if period:
            lif = LIFReset(shape=shape, reset_interval=period, reset_offset=(l + 2) % period, **p["lif"])
        else:
            lif = LIF(shape=shape, **p["lif"])
        if lifs:
            prev = lifs[-1].s_out
            want = tuple(dense.s_in.shape)
            (prev.reshape(want) if tuple(prev.shape) != want else prev).connect(dense.s_in)
        dense.a_out.connect(lif.a_in)
        rec = None
        if p.get("recurrent"):
            rkw = dict(p["recurrent"])
            if mode == "fixed":
                rkw["sign_mode"] = SignMode.MIXED
            rec = conn(**rkw)
            lif.s_out.connect(rec.s_in)
            rec.a_out.connect(lif.a_in)           # Lava sums the two Dense inputs of a_in
        denses.append(dense)
        lifs.append(lif)
        recs.append(rec)
    return LavaProcesses(denses, lifs, mode, n_steps, recs)


SPARSE_DENSITY = 0.5   # a dense/recurrent layer with at most this fraction of non-zero weights runs as Sparse


def write_parameters(path, network: Network, weight_bits: int = 8) -> None:
    """Write the Lava parameters of both modes to an HDF5 file (``spikelfp export --to lava``).

    Layout: ``/layer_<l>/{floating_pt,fixed_pt}/{dense,lif,recurrent}/<name>`` (datasets and
    attributes named as Lava's ``Dense`` and ``LIF`` keyword arguments; ``recurrent`` only for a
    recurrent layer: the Dense from the layer's spikes back to itself), attributes ``kind``, ``n_layers``. Read it
    back with :func:`load`, which builds the Lava processes. ``weight_bits``: the fixed-point weights'
    precision (``num_weight_bits``; a model trained with ``--quantize loihi --weight-bits N``: N).
    """
    import h5py

    from spikelfp.io import atomic_path

    modes = {"floating_pt": LavaExport(network, "float"), "fixed_pt": LavaExport(network, "fixed", weight_bits)}
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["kind"] = "spikelfp-lava-parameters"
        f.attrs["format_version"] = 2
        f.attrs["n_layers"] = len(network)
        f.attrs["dt"] = float(network.dt)
        for tag, ex in modes.items():
            for l, p in enumerate(ex.layer_parameters()):
                for part in ("dense", "conv", "lif", "recurrent"):
                    if part not in p:
                        continue
                    g = f.require_group(f"layer_{l}/{tag}/{part}")
                    for k, v in p[part].items():
                        if np.ndim(v) == 0:
                            g.attrs[k] = v
                        else:
                            g.create_dataset(k, data=v)
                if "sparse" in p:
                    f[f"layer_{l}/{tag}"].attrs["sparse"] = bool(p["sparse"])
        q = modes["fixed_pt"].quantized
        for l, ql in enumerate(q.layers):
            f[f"layer_{l}/fixed_pt"].attrs["scale"] = ql.scale


def read_parameters(path, mode: str = "float") -> list[dict]:
    """Per-layer Lava keyword arguments stored by :func:`write_parameters` for ``mode``."""
    import h5py

    if mode not in MODES:
        raise ValueError(f"unknown Lava mode {mode!r}; choose float or fixed")
    tag = "floating_pt" if mode == "float" else "fixed_pt"
    try:
        with h5py.File(os.fspath(path), "r") as f:
            if f.attrs.get("kind") != "spikelfp-lava-parameters":
                raise ValueError(f"{path}: not a spikelfp Lava parameter file (kind={f.attrs.get('kind')!r})")
            if int(f.attrs.get("format_version", 1)) < 2:
                raise ValueError(f"{path}: written by spikelfp 0.1; export the model again to load it into Lava")
            out = []
            for l in range(int(f.attrs["n_layers"])):
                layer = {}
                for part in ("dense", "conv", "lif", "recurrent"):
                    if part in ("recurrent", "conv", "dense") and part not in f[f"layer_{l}/{tag}"]:
                        continue
                    g = f[f"layer_{l}/{tag}/{part}"]
                    d = {k: g[k][()] for k in g}
                    d.update({k: (v.item() if hasattr(v, "item") else v) for k, v in g.attrs.items()})
                    layer[part] = d
                if "dense" in layer:
                    layer["sparse"] = bool(f[f"layer_{l}/{tag}"].attrs.get("sparse", False))
                out.append(layer)
            return out
    except (OSError, KeyError) as e:
        raise ValueError(f"{path}: unreadable Lava parameter file ({type(e).__name__}: {e})") from None


def load(path, mode: str = "float", n_steps: int | None = None) -> LavaProcesses:
    """Build the Lava processes of an exported model (``spikelfp export --to lava``).

    Parameters
    ----------
    path : str
        The ``.lava.h5`` file.
    mode : ``"float"`` or ``"fixed"``
        ``floating_pt`` (spike-exact with spikelfp) or ``fixed_pt`` (8-bit weights, Loihi 2 integer
        arithmetic; bit-exact with :func:`spikelfp.loihi.simulate_fixed`).
    n_steps : int, optional
        Steps per sample T: reset every layer between back-to-back samples (see
        :func:`build_processes`). None: one continuous stream.

    Example (``examples/run_in_lava.py`` is the full, runnable version)::

        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.io.sink import RingBuffer as Sink
        from lava.proc.io.source import RingBuffer as Source
        from spikelfp.backends import lava

        net = lava.load("model.lava.h5", mode="float", n_steps=30)
        src, sink = Source(data=spikes_in), Sink(shape=(10,), buffer=n)   # spikes_in: (n_in, n)
        net.connect_source(src.s_out); net.s_out.connect(sink.a_in)   # (reshapes for a conv input)
        src.run(condition=RunSteps(num_steps=n), run_cfg=Loihi2SimCfg(select_tag=net.select_tag))
        out = sink.data.get(); src.stop()
    """
    return build_processes(read_parameters(path, mode), mode, n_steps)


def export(network: Network, mode: str = "float", weight_bits: int = 8) -> LavaExport:
    """Build the Lava export of a network (``mode`` float or fixed; fixed at ``weight_bits``)."""
    return LavaExport(network, mode, weight_bits)


__all__ = ["export", "load", "build_processes", "write_parameters", "read_parameters", "LavaExport", "LavaRun",
           "LavaProcesses", "UnsupportedNetworkError", "float_parameters", "MODES"]
