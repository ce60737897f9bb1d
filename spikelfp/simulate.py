"""Thin driver around the event-driven forward kernel.

Example
-------
>>> import numpy as np, spikelfp
>>> net = spikelfp.Network([spikelfp.LIFLayer([[0.6]], beta=1.0)])
>>> x = np.ones((1, 4, 1), dtype=np.uint8)          # one input spike per step
>>> rec = spikelfp.simulate(net, x, raster=True)
>>> rec.rasters[0][0, :, 0].tolist()                # v = 0.6, 1.2 -> spike, reset, 0.6, 1.2 -> spike
[0, 1, 0, 1]
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from .events import EventBatch, as_event_batch
from .kernels.lif import MEM_NONE, MEM_TRACE, MEM_Z, MEM_Z_GRADED, forward
from .network import Network
from .packed import Packed, pack, synapse_fanout
from .scratch import scratch


@dataclass(frozen=True)
class Record:
    """What a simulation recorded.

    Attributes
    ----------
    counts : list of int32 arrays (B, n_l)
        Spike counts per layer over the window.
    rasters : list of uint8 arrays (B, T, n_l) or None
        Spike trains per layer (``raster=True``).
    membranes : list of float arrays (B, T, n_l) or None
        Membrane v[t] after the input, before reset (``membrane=True``).
    synops : int64 array (B,)
        Synaptic operations per sample (presynaptic spikes x fan-out, summed over layers; a
        recurrent layer's own spikes count with their fan-out through V).
    """

    counts: list
    rasters: list | None
    membranes: list | None
    synops: np.ndarray

    @property
    def output_counts(self) -> np.ndarray:
        return self.counts[-1]

    def predict(self) -> np.ndarray:
        """Argmax of output counts; ties (and silence) go to the lowest class index."""
        return predict(self.counts[-1])


def predict(output_counts: np.ndarray) -> np.ndarray:
    """Readout: argmax of spike counts (B, n_classes); ties go to the lowest index."""
    return np.argmax(output_counts, axis=1)


def tie_rate(output_counts: np.ndarray) -> float:
    """Fraction of samples whose top count is shared by two or more classes (silence included)."""
    top = output_counts.max(axis=1, keepdims=True)
    return float(np.mean((output_counts == top).sum(axis=1) > 1))


def default_chunks(batch_size: int) -> int:
    return max(1, min(batch_size, 4 * numba.get_num_threads()))


def simulate(network: Network | Packed, x, *, raster: bool = False, membrane: bool = False,
             time_first: bool = False) -> Record:
    """Run a network on a batch of binary spike input.

    Parameters
    ----------
    network : Network (or an already packed one)
    x : EventBatch or array (B, T, n_in) of 0/1 (or (T, B, n_in) with ``time_first=True``)
    raster, membrane : bool
        Also record spike trains / membrane traces (B, T, n) per layer.

    Returns
    -------
    Record
    """
    p = network if isinstance(network, Packed) else pack(network)
    eb = as_event_batch(x, int(p.sizes[0]), time_first)
    counts, ras, mem, synops = run_forward(p, eb, raster, membrane)
    return split_record(counts, ras, mem, p.n_off, raster, membrane, synops)


def run_forward(p: Packed, eb: EventBatch, raster: bool = False, membrane: bool = False,
                count_sums: bool = False, graded: bool = True):
    """The forward kernel on a packed network: all-layer (counts, rasters, membranes, synops),
    the buffers as :func:`record_buffers` makes them. With ``count_sums`` (and not ``membrane``)
    the membrane array is (B, 2, sum n_l), the spike-count rule's sums over t (docs/rules.md):
    ``[:, 1]`` each neuron's feed-forward input current ``b + W x[t]`` summed (z, without a
    recurrent layer's own rows), ``[:, 0]`` its graded count (clip(v[t] / theta, 0, 1) summed;
    zeros with ``graded=False``, which skips that pass)."""
    counts, ras, mem = record_buffers(eb, int(p.n_off[-1]), p.WT.dtype, raster, membrane, count_sums)
    mode = MEM_TRACE if membrane else ((MEM_Z_GRADED if graded else MEM_Z) if count_sums else MEM_NONE)
    n_chunks = default_chunks(eb.batch_size)
    wsi = scratch("forward.i", n_chunks, 2 * eb.n_steps * int(p.sizes[1:].max()), np.int32)
    synops = forward(eb.indptr, eb.indices, eb.batch_size, eb.n_steps, p.sizes, p.w_off, p.WT, p.n_off,
                     p.bias, p.has_bias, p.beta, p.theta, p.reset, p.rec, p.conv, p.ct_ptr, p.ct_out, p.ct_k,
                     n_chunks, counts, raster, ras, mode, mem, wsi)
    return counts, ras, mem, synops


def record_buffers(eb: EventBatch, n_tot: int, mem_dtype, raster: bool, membrane: bool,
                   count_sums: bool = False):
    """The kernels' output arrays: counts (B, n_tot) and, if asked, rasters/membranes (B, T, n_tot)
    or the spike-count rule's sums (B, 2, n_tot) (a (1, 1, 1) placeholder otherwise)."""
    B, T = eb.batch_size, eb.n_steps
    counts = np.zeros((B, n_tot), dtype=np.int32)
    ras = np.zeros((B, T, n_tot), np.uint8) if raster else np.zeros((1, 1, 1), np.uint8)
    mem_shape = (B, T, n_tot) if membrane else ((B, 2, n_tot) if count_sums else (1, 1, 1))
    mem = np.zeros(mem_shape, mem_dtype)
    return counts, ras, mem


def split_record(counts, ras, mem, n_off, raster: bool, membrane: bool, synops) -> Record:
    """Cut the kernels' all-layer arrays into per-layer arrays of a :class:`Record`."""
    sl = [slice(int(n_off[l]), int(n_off[l + 1])) for l in range(len(n_off) - 1)]
    return Record(
        counts=[np.ascontiguousarray(counts[:, s]) for s in sl],
        rasters=[np.ascontiguousarray(ras[:, :, s]) for s in sl] if raster else None,
        membranes=[np.ascontiguousarray(mem[:, :, s]) for s in sl] if membrane else None,
        synops=synops,
    )


def nonzero_synops(p: Packed, eb: EventBatch, rec: Record, fanout=None) -> np.ndarray:
    """SynOps per sample (B,) counting only the synapses that carry a weight: every presynaptic
    spike times its non-zero fan-out (:func:`spikelfp.packed.synapse_fanout`), a recurrent
    layer's own spikes of steps 0..T-2 through V (those of the last step reach no later step).
    ``rec`` needs rasters when the network has a recurrent layer. Equal to ``rec.synops`` for a
    network without zero weights; the energy proxy of a pruned one."""
    fanout = synapse_fanout(p) if fanout is None else fanout
    B, T = eb.batch_size, eb.n_steps
    cs = np.concatenate([[0], np.cumsum(fanout[0][0][eb.indices], dtype=np.int64)])
    out = cs[eb.indptr[T:: T]] - cs[eb.indptr[:: T][:B]]          # input events of each sample
    for l, (ff, vf) in enumerate(fanout):
        if l > 0:
            out += rec.counts[l - 1].astype(np.int64) @ ff
        if vf is not None:
            if rec.rasters is None:
                raise ValueError("nonzero_synops: a recurrent layer needs the rasters (simulate(..., raster=True))")
            out += (rec.counts[l].astype(np.int64) - rec.rasters[l][:, T - 1, :]) @ vf
    return out


__all__ = ["Record", "nonzero_synops", "simulate", "predict", "tie_rate", "EventBatch"]


def score(p: Packed, data, run, batch_size: int = 256) -> dict:
    """Accuracy, tie rate, mean spikes and SynOps per sample over an EventDataset, in batches:
    ``run(eb, raster) -> Record`` simulates a batch of the network whose weights ``p`` holds
    (float or, for a fixed-point run, its integers as floats). SynOps count the synapses that
    carry a weight (:func:`nonzero_synops`); without zero weights, the simulator's own count."""
    n = len(data)
    correct, ties, spikes, synops = 0, 0.0, 0.0, 0.0
    pruned = bool(np.any(p.WT == 0))
    fanout = synapse_fanout(p) if pruned else None
    for lo in range(0, n, batch_size):
        idx = np.arange(lo, min(n, lo + batch_size))
        eb = data.batch(idx)
        rec = run(eb, pruned and bool(p.rec.any()))
        out = rec.counts[-1]
        correct += int(np.sum(predict(out) == data.labels[idx]))
        ties += tie_rate(out) * idx.size
        spikes += float(sum(c.sum() for c in rec.counts))
        synops += float((nonzero_synops(p, eb, rec, fanout) if pruned else rec.synops).sum())
    return {"accuracy": correct / n, "tie_rate": ties / n, "spikes_per_sample": spikes / n,
            "synops_per_sample": synops / n}
