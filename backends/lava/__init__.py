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
from spikelfp.network import Network

MODES = ("float", "fixed")


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
    """LIF parameters of a float layer for Lava's ``floating_pt`` model (the one place for it)."""
    dv = 1.0 - layer.beta
    return {"du": 1.0, "dv": dv, "vth": float(layer.threshold),
            "bias_mant": (np.zeros(layer.n_out) if layer.bias is None else layer.bias.astype(np.float64)),
            "bias_exp": 0}


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

    def __init__(self, network: Network, mode: str = "float"):
        if mode not in MODES:
            raise ValueError(f"unknown Lava mode {mode!r}; choose float or fixed")
        if not isinstance(network, Network):
            raise TypeError(f"expected a spikelfp Network, got {type(network).__name__}")
        check_loihi_compatible(network)
        self.network = network
        self.mode = mode
        self.quantized = quantize(network) if mode == "fixed" else None

    def describe(self) -> list[dict]:
        """The Lava parameters of each layer (what ``run`` builds)."""
        out = []
        for l, layer in enumerate(self.network.layers):
            if self.mode == "float":
                p = float_parameters(layer)
                out.append({"layer": l, "shape": list(layer.weight.shape), "du": p["du"], "dv": p["dv"],
                            "vth": p["vth"], "bias": layer.bias is not None})
            else:
                q = self.quantized.layers[l]
                out.append({"layer": l, "shape": list(q.weight.shape), "weight_exp": q.weight_exp,
                            "vth": q.vth, "du": q.du, "dv": q.dv, "bias_exp": q.bias_exp,
                            "scale": q.scale, "bias": layer.bias is not None})
        return out

    def run(self, x) -> LavaRun:
        """Run a batch (EventBatch or dense (B, T, n_in)) through Lava; returns aligned rasters."""
        RunSteps, Loihi2SimCfg, Dense, RingBuffer, LIFReset, SignMode, SpikeRecorder = _lava()
        net = self.network
        eb = as_event_batch(x, net.n_in)
        B, T, L = eb.batch_size, eb.n_steps, len(net)
        steps = B * T + L
        dense_in = eb.to_dense(np.float64 if self.mode == "float" else np.int32)
        data = np.zeros((net.n_in, steps), dtype=dense_in.dtype)
        data[:, : B * T] = dense_in.reshape(B * T, net.n_in).T
        tmp = tempfile.mkdtemp(prefix="spikelfp-lava-")
        src = None
        workers: list[int] = []
        t0 = time.perf_counter()
        try:
            src = RingBuffer(data=data)
            prev = src.s_out
            recorders = []
            for l, layer in enumerate(net.layers):
                if self.mode == "float":
                    dense = Dense(weights=layer.weight.astype(np.float64))
                    lif = LIFReset(shape=(layer.n_out,), reset_interval=T, reset_offset=(l + 2) % T,
                                   **float_parameters(layer))
                else:
                    q = self.quantized.layers[l]
                    dense = Dense(weights=q.weight.astype(np.int32), weight_exp=q.weight_exp,
                                  num_weight_bits=8, sign_mode=SignMode.MIXED)
                    lif = LIFReset(shape=(layer.n_out,), du=q.du, dv=q.dv, vth=q.vth,
                                   bias_mant=q.bias_mant.astype(np.int32),
                                   bias_exp=np.full(layer.n_out, q.bias_exp, dtype=np.int32),
                                   reset_interval=T, reset_offset=(l + 2) % T)
                rec = SpikeRecorder(shape=(layer.n_out,), n_steps=steps, path=os.path.join(tmp, f"layer{l}.npy"))
                prev.connect(dense.s_in)
                dense.a_out.connect(lif.a_in)
                lif.s_out.connect(rec.a_in)
                prev = lif.s_out
                recorders.append(rec)
            cfg = Loihi2SimCfg(select_tag="floating_pt" if self.mode == "float" else "fixed_pt")
            src.run(condition=RunSteps(num_steps=steps), run_cfg=cfg)
            workers = [p.pid for p in multiprocessing.active_children()]
        finally:
            if src is not None:
                try:
                    src.stop()
                except Exception:  # noqa: BLE001 - a failed run may already have stopped
                    pass
        seconds = time.perf_counter() - t0
        try:
            rasters = []
            for l, layer in enumerate(net.layers):
                path = os.path.join(tmp, f"layer{l}.npy")
                if not os.path.exists(path):
                    raise RuntimeError(f"Lava run ended without writing layer {l}'s spikes")
                rec = np.load(path)                              # (steps, n)
                idx = (np.arange(B)[:, None] * T + np.arange(T)[None, :] + l + 1).ravel()
                rasters.append(rec[idx].reshape(B, T, layer.n_out))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return LavaRun(rasters, self.mode, steps, seconds, workers)


def export(network: Network, mode: str = "float") -> LavaExport:
    """Build the Lava export of a network (``mode`` float or fixed)."""
    return LavaExport(network, mode)


__all__ = ["export", "LavaExport", "LavaRun", "UnsupportedNetworkError", "float_parameters", "MODES"]
