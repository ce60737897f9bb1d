#!/usr/bin/env python
"""Layer types: spikelfp's event-driven conv and recurrent layers vs snntorch, in one run.

Nets (float32, same weights in both, each layer tuned to fire ~5 % of steps at 2 % input density):

* ``nmnist-conv``: N-MNIST-like 34x34x2 input, T = 300, ``c16k5s2-c32k3s2-d10`` (conv 5x5/2 ->
  15x15x16, conv 3x3/2 -> 7x7x32, dense 10);
* ``shd-recurrent``: SHD-like 700 inputs, T = 100, ``r256-d20``.

For each: forward (inference) seconds per sample, spikelfp vs snntorch (``to_snntorch``: Conv2d /
explicit recurrent Linear + Leaky), and one training step per sample, LFP (spike-count and
temporal rules + Adam) vs snntorch BPTT (atan surrogate, ce_rate_loss, Adam). Threads: 2 for both
(numba and torch); medians of repeats, spread and the other processes' CPU load recorded (the
helpers of ``benchmarks/simulator.py``). Results: ``benchmarks/results/layers.{json,md}``.

Usage: ``python benchmarks/layers.py [--quick] [--json PATH]``
"""

from __future__ import annotations

import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import simulator as S  # noqa: E402  (timed, make_input, run_* helpers)

NETS = {
    "nmnist-conv": dict(arch="c16k5s2-c32k3s2", in_shape=(34, 34, 2), n_out=10, T=300, B=16),
    "shd-recurrent": dict(arch="r256", in_shape=700, n_out=20, T=100, B=64),
}
DENSITY = 0.02


def make_net(arch, in_shape, n_out, T, seed=0, rate=0.05):
    """float32 net for ``arch``, each layer's weights scaled (bisection on a probe batch) so that it
    fires ~``rate`` spikes per neuron and step at 2 % input density (as benchmarks/simulator.py)."""
    import spikelfp

    return calibrated(spikelfp.Network.from_arch(arch, in_shape, n_out, seed=seed, dtype=np.float32), T, DENSITY,
                      seed=seed, rate=rate)


def calibrated(net, T, density, seed=0, rate=0.05):
    """``net`` with each trained layer's weights scaled (bisection on a probe batch of ``density``
    input) to fire ~``rate`` spikes per neuron and step; pooling layers keep their fixed synapses."""
    import spikelfp

    probe = S.make_input(np.random.default_rng(seed + 99), 8, T, net.n_in, density)
    layers = list(net.layers)
    for k in range(len(layers)):
        base = layers[k]
        if not getattr(base, "trainable", True):
            continue
        lo, hi = 1e-2, 1e3
        for _ in range(25):
            g = np.sqrt(lo * hi)
            trial = spikelfp.Network(layers[:k] + [_scaled(base, g)])
            r = spikelfp.simulate(trial, probe).counts[-1].mean() / T
            lo, hi = (g, hi) if r < rate else (lo, g)
        layers[k] = _scaled(base, np.sqrt(lo * hi))
    return spikelfp.Network(layers)


def _scaled(layer, g):
    out = layer.copy()
    for a in out.weight_arrays():
        a *= np.float32(g)
    return out


def bench(name, cfg, quick, log):
    import spikelfp

    T, B = cfg["T"], cfg["B"] // (2 if quick else 1)
    net = make_net(cfg["arch"], cfg["in_shape"], cfg["n_out"], T)
    eb = S.make_input(np.random.default_rng(1), B, T, net.n_in, DENSITY)
    labels = np.random.default_rng(2).integers(0, cfg["n_out"], B)
    dense = eb.to_dense(np.float32)
    rec = spikelfp.simulate(net, eb)
    reps = 3 if quick else 7
    out = {"arch": f"{net.n_in}-{net.arch}-{cfg['n_out']}", "T": T, "batch": B, "density": DENSITY,
           "rates": [float(c.mean() / T) for c in rec.counts], "synops_per_sample": float(rec.synops.mean())}
    fw = {"spikelfp": S.timed(S.run_spikelfp_forward(net, eb), reps),
          "snntorch": S.timed(S.run_snntorch_forward(net, dense), max(2, reps // 2))}
    tr = {"lfp-spike-count": S.timed(S.run_spikelfp_train(net, eb, labels, "spike-count"), reps),
          "lfp-temporal": S.timed(S.run_spikelfp_train(net, eb, labels, "temporal"), reps),
          "snntorch-bptt": S.timed(S.run_snntorch_train(net, dense, labels), max(2, reps // 2))}
    out["forward_s_per_sample"] = {k: v["median_s"] / B for k, v in fw.items()}
    out["train_s_per_sample"] = {k: v["median_s"] / B for k, v in tr.items()}
    out["timings"] = {"forward": fw, "train": tr}
    out["forward_speedup_vs_snntorch"] = fw["snntorch"]["median_s"] / fw["spikelfp"]["median_s"]
    out["train_speedup_vs_snntorch"] = {k: tr["snntorch-bptt"]["median_s"] / tr[k]["median_s"]
                                        for k in ("lfp-spike-count", "lfp-temporal")}
    out["max_other_cpu_load"] = max((v["other_cpu_load"] for d in (fw, tr) for v in d.values()
                                     if v["other_cpu_load"] == v["other_cpu_load"]), default=float("nan"))
    log(f"{name}: forward {out['forward_speedup_vs_snntorch']:.1f}x snntorch; training "
        + ", ".join(f"{k} {v:.1f}x" for k, v in out["train_speedup_vs_snntorch"].items())
        + f" (other CPU load up to {out['max_other_cpu_load']:.2f})")
    return out


def markdown(r):
    lines = [f"Layer types vs snntorch ({r['machine']['processor']}, {r['machine']['cpus']} CPUs, "
             f"{r['threads']} threads each; input density {DENSITY:.0%})", "",
             "| net | spikes/neuron/step | forward spikelfp | forward snntorch | forward ratio | "
             "train LFP spike-count | train LFP temporal | train snntorch BPTT | ratios (sc / temporal) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, n in r["nets"].items():
        f, t = n["forward_s_per_sample"], n["train_s_per_sample"]
        lines.append(f"| {name} {n['arch']} T={n['T']} | {', '.join(f'{x:.3f}' for x in n['rates'])} | "
                     f"{f['spikelfp'] * 1e3:.2f} ms | {f['snntorch'] * 1e3:.2f} ms | "
                     f"**{n['forward_speedup_vs_snntorch']:.1f}x** | {t['lfp-spike-count'] * 1e3:.2f} ms | "
                     f"{t['lfp-temporal'] * 1e3:.2f} ms | {t['snntorch-bptt'] * 1e3:.2f} ms | "
                     f"{n['train_speedup_vs_snntorch']['lfp-spike-count']:.1f}x / "
                     f"{n['train_speedup_vs_snntorch']['lfp-temporal']:.1f}x |")
    load = max(n["max_other_cpu_load"] for n in r["nets"].values())
    lines += ["", f"Times are per sample (median of repeats). Other processes' CPU load during the timings: up to "
              f"{load:.2f} of the machine" + (" — **high: the ratios are not reliable**" if load > 0.25 else "") + ".",
              "", f"Command: `python benchmarks/layers.py{' --quick' if r['quick'] else ''}`"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    S.run_net_script(argv, __doc__, "layers.json", "half the batch, fewer repeats", bench, NETS, markdown)


if __name__ == "__main__":
    main()
