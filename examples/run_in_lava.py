"""Run a spikelfp model in Lava from its exported file, as a Lava user would.

    spikelfp export runs/default/model.h5 --to lava          # writes runs/default/model.lava.h5
    python examples/run_in_lava.py runs/default/model.lava.h5 [--mode fixed] [--samples 8]

It builds the Lava processes from the file (``spikelfp.backends.lava.load``), feeds test samples of
the model's dataset back to back through a RingBuffer source, collects the output layer's spikes
in a RingBuffer sink, and prints Lava's prediction next to spikelfp's for each sample.
"""

import argparse
import os

import numpy as np
from spikelfp.backends import lava

from spikelfp import compat, datasets, simulate
from spikelfp.io import load_checkpoint

compat.patch_lava()          # lava-nc 0.10 on Python 3.11: import lava only after this
from lava.magma.core.run_conditions import RunSteps  # noqa: E402
from lava.magma.core.run_configs import Loihi2SimCfg  # noqa: E402
from lava.proc.io.sink import RingBuffer as Sink  # noqa: E402
from lava.proc.io.source import RingBuffer as Source  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("lava_file")
    ap.add_argument("--model", help="the checkpoint it came from (default: the .lava.h5 name with .h5)")
    ap.add_argument("--mode", choices=["float", "fixed"], default="float")
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0,
                    help="which test samples (drawn at random; the split is sorted by class)")
    ap.add_argument("--data-root")
    args = ap.parse_args()
    model = args.model or args.lava_file.replace(".lava.h5", ".h5")
    ckpt = load_checkpoint(model)
    binning = datasets.Binning(**ckpt.binning) if ckpt.binning else None
    _, test = datasets.load(ckpt.dataset, binning, root=args.data_root, download=False)
    idx = np.sort(np.random.default_rng(args.seed).choice(len(test), size=min(args.samples, len(test)),
                                                           replace=False))
    eb = test.batch(idx)
    B, T, L = len(idx), test.n_steps, len(ckpt.network)

    net = lava.load(args.lava_file, mode=args.mode, n_steps=T)   # Dense -> LIFReset per layer
    steps = B * T + L                                            # each Dense delays by one step
    spikes_in = np.zeros((ckpt.network.n_in, steps))
    spikes_in[:, : B * T] = eb.to_dense(np.float64).reshape(B * T, -1).T
    src = Source(data=spikes_in)
    sink = Sink(shape=(ckpt.network.n_out,), buffer=steps)
    net.connect_source(src.s_out)          # a flat (n_in,) source; reshaped for a conv first layer
    net.s_out.connect(sink.a_in)
    try:
        src.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag=net.select_tag))
        out = sink.data.get()                                    # (n_out, steps)
    finally:
        src.stop()
    # the output layer's spikes of sample b, step t arrive at Lava step b*T + t + L
    counts = np.stack([out[:, b * T + L: (b + 1) * T + L].sum(1) for b in range(B)])
    lava_pred = counts.argmax(1)
    ours = simulate(ckpt.network, eb).counts[-1].argmax(1)
    for b in range(B):
        print(f"sample {idx[b]}: label {test.labels[idx[b]]}  Lava {lava_pred[b]}  spikelfp {ours[b]}")
    agree = float(np.mean(lava_pred == ours))
    print(f"Lava ({args.mode}) and spikelfp agree on {agree:.0%} of predictions")
    return counts


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
