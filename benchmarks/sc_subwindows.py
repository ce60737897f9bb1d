#!/usr/bin/env python
"""Experiment (measured, not adopted): the spike-count rule over K sub-windows.

The spike-count rule (docs/rules.md, Rule A) sees each neuron's counts over the whole window, so
the timing inside the window is beyond it by construction. This script asks how much of its gap
to surrogate gradients on temporal data a coarse time axis closes: the window is cut into K equal
sub-windows and the rule runs on the counts of each (``a^k``, ``z^k = a^k W^T + |k| b``, graded
counts per sub-window, the bounded secant), with the output reward ``onehot - softmax(N)`` of the
whole window's counts N (N is the sum of the sub-windows' counts, so every sub-window gets the same
output rho); ``F_W = sum_k rho^k^T a^k``. K = 1 is the shipped rule (in float64, so not its bits);
K = T is a per-step rule without the temporal rule's carry. A slow numpy transcription for dense
feed-forward nets, run through the normal trainer (Adam, batch 32, the dataset's default binning).

Usage: ``python benchmarks/sc_subwindows.py --dataset spoken-digits --k 1,4,8,40 --seeds 0,1,2
[--epochs 20] [--out benchmarks/results/sc-subwindows]`` (writes results.json and results.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass

import numpy as np

from spikelfp.feedback import ChunkParts, SpikeCount
from spikelfp.io import atomic_path, write_json
from spikelfp.simulate import run_forward
from spikelfp.train import TrainConfig, Trainer


@dataclass(frozen=True)
class SubWindowCount(SpikeCount):
    """The spike-count rule over ``K`` sub-windows (dense feed-forward nets only)."""

    K: int = 1

    def parts(self, p, eb, y, bounds):
        if p.rec.any() or p.conv[:, 0].any():
            raise ValueError("sc_subwindows: dense feed-forward nets only")
        B, T = eb.batch_size, eb.n_steps
        counts, ras, mem, _ = run_forward(p, eb, raster=True, membrane=True)
        x = eb.to_dense(np.float64)
        L = len(p.sizes) - 1
        segs = np.array_split(np.arange(T), self.K)
        n_tot, n_w = int(p.n_off[-1]), int(p.w_off[-1])
        GT, Gb = np.zeros((1, n_w)), np.zeros((1, n_tot))
        acts, graded = [], []                       # per layer: (K, B, n) counts / graded counts
        for l in range(L + 1):
            arr = x if l == 0 else ras[:, :, p.n_off[l - 1]:p.n_off[l]].astype(np.float64)
            acts.append(np.stack([arr[:, s].sum(1) for s in segs]))
            if l > 0:
                v = mem[:, :, p.n_off[l - 1]:p.n_off[l]].astype(np.float64)
                f = np.where(arr > 0, 1.0, np.clip(v / float(p.theta[l - 1]), 0, 1))
                graded.append(np.stack([f[:, s].sum(1) for s in segs]))
        Ws = [p.WT[p.w_off[l]:p.w_off[l + 1]].reshape(p.sizes[l], p.sizes[l + 1]).T.astype(np.float64)
              for l in range(L)]
        bs = [p.bias[p.n_off[l]:p.n_off[l + 1]].astype(np.float64) for l in range(L)]
        seglen = np.array([len(s) for s in segs], float)[:, None, None]
        N = acts[L].sum(0)
        e = np.exp(N - N.max(1, keepdims=True))
        rho = -e / e.sum(1, keepdims=True)
        rho[np.arange(B), y] += 1
        rho = np.broadcast_to(rho, (self.K,) + rho.shape).copy()
        for l in range(L - 1, -1, -1):
            GT[0, p.w_off[l]:p.w_off[l + 1]] = np.einsum("kbj,kbi->ij", rho, acts[l]).ravel()
            if p.has_bias[l]:
                Gb[0, p.n_off[l]:p.n_off[l + 1]] = (seglen * rho).sum((0, 1))
            if l > 0:
                at = graded[l - 1] if self.contrib == "graded" else acts[l]
                R = at * (rho @ Ws[l])
                z = acts[l - 1] @ Ws[l - 1].T + seglen * bs[l - 1]
                th = float(p.theta[l - 1])
                den = np.where(at > 0, np.maximum(np.abs(z), th * at) + self.eps,
                               z + self.eps * np.where(z >= 0, 1.0, -1.0))
                rho = R / den
        zero = np.zeros((1, n_tot))
        return ChunkParts(GT, Gb, counts, zero, zero.copy())


def run(dataset, K, seed, epochs, optimizer="two-phase"):
    from spikelfp import datasets

    spec = datasets.get_spec(dataset)
    train, test = datasets.load(dataset, spec.default_binning, progress=False, download=False)
    tr = Trainer(TrainConfig(dataset=dataset, rule="spike-count", seed=seed, epochs=epochs, optimizer=optimizer),
                 progress=False)
    tr.rule = SubWindowCount(K=K, reward=tr.rule.reward, contrib=tr.rule.contrib)
    t0 = time.perf_counter()
    m = tr.fit(train, test, None, binning=spec.default_binning.to_dict())
    return {"K": K, "seed": seed, "test_accuracy": m["test_accuracy"], "test_tie_rate": m["test_tie_rate"],
            "train_accuracy": m["train_accuracy"], "wall_s": time.perf_counter() - t0}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--dataset", default="spoken-digits")
    ap.add_argument("--k", default="1,4,8,40", help="sub-window counts, comma-separated")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--optimizer", default="two-phase", help="LFP's optimizer (default two-phase, spikelfp train's)")
    ap.add_argument("--out", default=None, help="folder for results.json / results.md")
    a = ap.parse_args(argv)
    rows = []
    for K in [int(k) for k in a.k.split(",")]:
        for s in [int(s) for s in a.seeds.split(",")]:
            r = run(a.dataset, K, s, a.epochs, a.optimizer)
            print(json.dumps(r), flush=True)
            rows.append(r)
    lines = [f"Spike-count rule over K sub-windows on {a.dataset} ({a.epochs} epochs; test accuracy per seed)", "",
             "| K | test accuracy | mean | ties | train accuracy |", "|---|---|---|---|---|"]
    for K in dict.fromkeys(r["K"] for r in rows):
        rs = [r for r in rows if r["K"] == K]
        accs = " / ".join(f"{r['test_accuracy']:.3f}" for r in rs)
        lines.append(f"| {K} | {accs} | "
                     f"{np.mean([r['test_accuracy'] for r in rs]):.3f} | "
                     f"{np.mean([r['test_tie_rate'] for r in rs]):.2f} | "
                     f"{np.mean([r['train_accuracy'] for r in rs]):.3f} |")
    cmd = "python benchmarks/sc_subwindows.py " + " ".join(sys.argv[1:] if argv is None else argv)
    lines += ["", f"Command: `{cmd}` ({platform.machine()}, {os.cpu_count()} CPUs)"]
    print("\n".join(lines))
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        write_json(os.path.join(a.out, "results.json"), {"dataset": a.dataset, "epochs": a.epochs, "runs": rows})
        with atomic_path(os.path.join(a.out, "results.md")) as tmp, open(tmp, "w") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
