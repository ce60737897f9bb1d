"""Compile (and cache on disk) every numba kernel a run uses: ``python -m spikelfp.warmup``.

``make venv`` runs it once after installing, so the first ``spikelfp train`` starts at full speed
instead of spending its first epoch in the JIT compiler. It compiles each kernel for the types a
run passes (float64 and float32 networks of every layer type, both rules, both resets, every
optimizer, the Loihi mode's forward and training at 8 and fewer weight bits, the dense-input
conversion, the binning and the cochlea). Prints the seconds it took.
"""

from __future__ import annotations

import sys
import time

import numpy as np


def warm_up() -> float:
    from spikelfp import Network, SpikeCount, Temporal, simulate
    from spikelfp.datasets.base import EventDataset
    from spikelfp.datasets.binning import Binning, bin_events
    from spikelfp.events import as_event_batch
    from spikelfp.loihi import hold_of, quantize, quantized_training_pair, simulate_fixed
    from spikelfp.optim import OPTIMIZERS, NeuronAdam
    from spikelfp.packed import neuron_segments, pack

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    x = (rng.random((2, 6, 8)) < 0.4).astype(np.uint8)
    y = np.array([0, 1])
    for dtype in (np.float64, np.float32):
        for reset in ("zero", "subtract"):
            net = Network.random([8, 5, 3], seed=0, gain=3.0, reset=reset, dtype=dtype)
            conv = Network.from_arch("c2k2-p1-r3", (2, 2, 2), 3, seed=0, gain=3.0, reset=reset, dtype=dtype)
            for n in (conv, net):                      # conv/recurrent paths: the spike-count rule's extras
                simulate(n, x, raster=True, membrane=True)
                simulate(n, x)
                fbs = [rule.feedback(n, x, y) for rule in (Temporal(), Temporal(form="paper"), SpikeCount())]
            p = pack(net)
            for fb in (fbs[0], fbs[2]):     # the temporal rule's feedback is float64, the spike-count rule's
                for name in OPTIMIZERS:     # the weights' dtype: the optimizers see both
                    kw = {"segments": {"WT": neuron_segments(p)}} if issubclass(OPTIMIZERS[name], NeuronAdam) else {}
                    OPTIMIZERS[name](lr=1e-3, **kw).step({"WT": p.WT.copy(), "bias": p.bias.copy()},
                                                  {"WT": fb.weight_flat, "bias": fb.bias_flat}, scale=-0.5)
    from spikelfp.events import EventBatch

    for dense in (x.astype(np.float32), x.astype(np.bool_)):     # torch tensors' and masks' dtypes (uint8: above)
        EventBatch.from_dense(dense)
    simulate_fixed(quantize(Network.random([8, 5, 3], seed=0, gain=3.0)), x, raster=True)
    simulate_fixed(quantize(Network.from_arch("c2k2-r3", (2, 2, 2), 3, seed=0, gain=3.0)), x, raster=True)
    for dtype in (np.float32, np.float64):        # --quantize loihi training: both rules through the integer run
        for bits in (8, 4):                       # (and the low-bit clip search)
            for n in (Network.random([8, 5, 3], seed=0, gain=3.0, dtype=dtype),
                      Network.from_arch("c2k2-r3", (2, 2, 2), 3, seed=0, gain=3.0, dtype=dtype)):
                p = pack(n)
                pq, fx = quantized_training_pair(p, n, hold_of(p, n, bits), bits=bits)
                for rule in (Temporal(), SpikeCount()):
                    rule.reduce(pq, rule.parts(pq, as_event_batch(x, n.n_in), y, rule.bounds(2), fixed=fx))
    ds = EventDataset.from_samples([(np.array([0, 1], np.int32), np.array([2, 3], np.int32))] * 2, [0, 1], 6, 8, 2)
    ds.batch(np.array([0, 1]))
    bin_events(np.array([1, 2]), np.array([0, 1]), np.array([10.0, 2000.0]), np.array([0, 1]),
               Binning(bin_us=1000.0, n_bins=4), (4, 2, 2))
    try:
        from spikelfp.datasets.cochlea import cochlea

        cochlea(np.zeros(160), 16000.0, rng, n_channels=4)
    except ImportError:   # pragma: no cover - scipy is a dependency
        pass
    return time.perf_counter() - t0


if __name__ == "__main__":
    s = warm_up()
    print(f"spikelfp: numba kernels compiled and cached in {s:.1f} s", file=sys.stderr)
