#!/usr/bin/env python
"""Simulator and training speed: spikelfp vs snntorch vs a plain numpy reference, in one run.

For batch 128 at input densities 0.5/2/5/10 % on two nets (SHD-like 700-256-20, T=100;
N-MNIST-like 2312-512-10, T=300), with the same float32 weights in every approach:

* forward (inference) time per sample: spikelfp (event-driven numba), snntorch (torch CPU),
  numpy (dense, time-stepped, BLAS matmul per step);
* one training step per sample: spikelfp LFP spike-count and temporal rules (+ Adam) vs snntorch
  BPTT + Adam (atan surrogate, ce_rate_loss);
* the machine's limit: a numba row-add microbenchmark (SynOps/s when every synaptic event is one
  weight-row add, on the same weight matrix and event pattern) and numpy matmul GFLOP/s;
* SynOps per sample, achieved SynOps/s and the fraction of the row-add limit;
* peak memory for each approach, each in a fresh subprocess: the resident high-water mark while
  it sets up and runs the batch twice, above the resident size after import, the shared sparse
  input and a warm-up call on 2 samples (so JIT caches and thread pools, paid once, are not
  counted; the dense input copies torch and numpy need, and their activations, are);
* scaling of the spikelfp forward with density, batch size and hidden size.

Threads (``--threads N``, default 2): numba N, torch N, numpy BLAS N for the numpy reference and 1 around
numba work.
Every timing is the median of several repeats; the spread (min..max) and the other processes' CPU
load during the measurement are recorded. Results: ``benchmarks/results/simulator.{json,md}``.

Usage: ``python benchmarks/simulator.py [--quick] [--json PATH] [--threads N]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

from spikelfp.loadmeter import HIGH_LOAD  # other processes' CPU share above which a timing is flagged

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
NETS = {"shd-like": dict(sizes=[700, 256, 20], T=100), "nmnist-like": dict(sizes=[2312, 512, 10], T=300)}
DENSITIES = [0.005, 0.02, 0.05, 0.10]
# numba = torch = BLAS threads in every comparison (--threads; children of the memory probe read the
# environment variable the parent sets)
THREADS = int(os.environ.get("SPIKELFP_BENCH_THREADS") or 2)


# ----------------------------------------------------------------------------- helpers
def timed(fn, repeats, warmup=1, min_s=0.5):
    """Median seconds of ``fn()`` over ``repeats`` runs (more, until ``min_s`` have passed, so that
    the other processes' CPU share can be told: spikelfp.loadmeter), the spread, and that load."""
    from spikelfp.loadmeter import OtherLoad

    for _ in range(warmup):
        fn()
    ts = []
    meter = OtherLoad()
    w0 = time.perf_counter()
    while len(ts) < repeats or time.perf_counter() - w0 < min_s:
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    other = meter.stop()
    return {"median_s": float(np.median(ts)), "min_s": float(np.min(ts)), "max_s": float(np.max(ts)),
            "repeats": len(ts), "other_cpu_load": other if other is not None else float("nan")}


def make_net(sizes, T, seed=0, rate=0.05, density=0.02):
    """float32 net, W ~ N(mu, sigma) per layer, scaled (bisection on one probe batch) so that each
    layer fires at about ``rate`` spikes per neuron and step at ``density`` input: a realistic
    regime (a silent or saturated net would flatter or punish an event-driven simulator)."""
    import spikelfp

    rng = np.random.default_rng(seed)
    probe = make_input(np.random.default_rng(seed + 99), 16, T, sizes[0], density)
    layers = []
    for k in range(len(sizes) - 1):
        n_in, n_out = sizes[k], sizes[k + 1]
        base = rng.normal(0.3, 1.0, size=(n_out, n_in)).astype(np.float32)
        lo, hi = 1e-3, 10.0
        for _ in range(30):
            g = np.sqrt(lo * hi)
            trial = layers + [spikelfp.LIFLayer(base * np.float32(g / np.sqrt(n_in)), beta=0.9, threshold=1.0)]
            r = spikelfp.simulate(spikelfp.Network(trial), probe).counts[-1].mean() / T
            lo, hi = (g, hi) if r < rate else (lo, g)
        layers.append(spikelfp.LIFLayer(base * np.float32(np.sqrt(lo * hi) / np.sqrt(n_in)), beta=0.9,
                                        threshold=1.0))
    return spikelfp.Network(layers)


def make_input(rng, B, T, n_in, density):
    """Bernoulli(density) spikes per (sample, step, channel), built sample by sample (no huge temporaries)."""
    from spikelfp import EventBatch

    rows, chans = [], []
    for b in range(B):
        x = rng.random((T, n_in), dtype=np.float32) < density
        r, c = np.nonzero(x)
        rows.append(r + b * T)
        chans.append(c)
    rows = np.concatenate(rows)
    ptr = np.zeros(B * T + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=B * T), out=ptr[1:])
    return EventBatch(ptr, np.concatenate(chans).astype(np.int32), B, T, n_in)


# ----------------------------------------------------------------------------- approaches
def run_spikelfp_forward(net, eb):
    import spikelfp
    from spikelfp.packed import pack

    p = pack(net)
    return lambda: spikelfp.simulate(p, eb)


def run_numpy_forward(net, dense):
    """Dense time-stepped reference: I = x W^T + b by BLAS each step, then the LIF update."""
    Ws = [la.weight.T.copy() for la in net.layers]
    betas = [np.float32(la.beta) for la in net.layers]
    ths = [np.float32(la.threshold) for la in net.layers]

    def fwd():
        x = dense
        B, T = x.shape[:2]
        counts = []
        for W, beta, th in zip(Ws, betas, ths):
            v = np.zeros((B, W.shape[1]), np.float32)
            s = np.zeros_like(v)
            out = np.empty((B, T, W.shape[1]), np.float32)
            for t in range(T):
                v = beta * v * (1 - s) + x[:, t] @ W
                s = (v > th).astype(np.float32)
                out[:, t] = s
            counts.append(out.sum(1))
            x = out
        return counts
    return fwd


def run_snntorch_forward(net, dense):
    import torch
    from spikelfp.backends.snntorch import to_snntorch

    torch.set_num_threads(THREADS)
    model = to_snntorch(net, dtype=torch.float32)
    x = torch.from_numpy(np.ascontiguousarray(dense.transpose(1, 0, 2)))

    def fwd():
        with torch.no_grad():
            return model(x)
    return fwd


def run_spikelfp_train(net, eb, labels, rule):
    import spikelfp
    from spikelfp.optim import Adam
    from spikelfp.packed import pack

    p = pack(net)
    r = spikelfp.Temporal() if rule == "temporal" else spikelfp.SpikeCount()
    opt = Adam(lr=1e-3)
    params = {"WT": p.WT, "bias": p.bias}
    B = eb.batch_size

    def step():
        fb = r.feedback(p, eb, labels)
        opt.step(params, {"WT": fb.weight_flat, "bias": fb.bias_flat}, scale=-1.0 / B)   # as the Trainer
    return step


def run_snntorch_train(net, dense, labels):
    import snntorch.functional as SF
    import torch
    from spikelfp.backends.snntorch import to_snntorch

    torch.set_num_threads(THREADS)
    model = to_snntorch(net, surrogate="atan", dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = SF.ce_rate_loss()
    x = torch.from_numpy(np.ascontiguousarray(dense.transpose(1, 0, 2)))
    y = torch.from_numpy(labels)

    def step():
        out = model(x)
        loss = loss_fn(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def rowadd_limit(net, eb, repeats, fused=False):
    """SynOps/s of the bare row-add loop on the first layer's weights and this event pattern.

    ``fused=False``: one weight row per pass over the accumulator (the classic event-driven loop:
    two loads and a store per SynOp, the limit the simulator was first measured against);
    ``fused=True``: the simulator's own :func:`spikelfp.kernels.lif.add_rows` (eight rows per pass,
    same order and bits), the limit of the kernel as it is now."""
    from numba import njit, prange

    from spikelfp.kernels.lif import add_rows

    @njit(parallel=True, cache=True)
    def rowadd(W2, idx, ptr, n_chunks, out):
        R = ptr.size - 1
        n_out = W2.shape[1]
        for c in prange(n_chunks):
            acc = np.zeros(n_out, dtype=W2.dtype)
            for r in range(c * R // n_chunks, (c + 1) * R // n_chunks):
                for j in range(n_out):
                    acc[j] = 0.0
                for e in range(ptr[r], ptr[r + 1]):
                    row = W2[idx[e]]
                    for j in range(n_out):
                        acc[j] += row[j]
                out[c] += acc[0]

    @njit(parallel=True, cache=True)
    def rowadd_fused(WT, n_out, idx, ptr, n_chunks, out):
        R = ptr.size - 1
        for c in prange(n_chunks):
            acc = np.zeros(n_out, dtype=WT.dtype)
            for r in range(c * R // n_chunks, (c + 1) * R // n_chunks):
                for j in range(n_out):
                    acc[j] = 0.0
                add_rows(acc, WT, 0, n_out, idx, ptr[r], ptr[r + 1])
                out[c] += acc[0]

    W2 = np.ascontiguousarray(net.layers[0].weight.T)
    out = np.zeros(64)
    n_chunks = 4 * THREADS
    if fused:
        flat = W2.ravel()
        t = timed(lambda: rowadd_fused(flat, W2.shape[1], eb.indices, eb.indptr, n_chunks, out), repeats)
    else:
        t = timed(lambda: rowadd(W2, eb.indices, eb.indptr, n_chunks, out), repeats)
    # a limit is the best the machine did, not a typical run: the fastest repeat
    t["synops_per_s"] = eb.n_events * W2.shape[1] / t["min_s"]
    return t


def matmul_gflops(repeats):
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    with threadpool_limits(THREADS, "blas"):
        t = timed(lambda: a @ a, repeats)
    t["gflops"] = 2 * 1024**3 / t["median_s"] / 1e9
    return t


# ----------------------------------------------------------------------------- memory (subprocess)
MEM_CHILD = r"""
import json, os, resource, sys
sys.path.insert(0, {here!r})
import numpy as np
import simulator as S
import spikelfp, torch, snntorch, numba
from spikelfp.backends import snntorch as _b
net = S.make_net({sizes}, {T})
rng = np.random.default_rng(1)
eb = S.make_input(rng, {B}, {T}, {sizes}[0], {density})     # the shared sparse input: before the reset
labels = rng.integers(0, {sizes}[-1], {B})
def status(key):
    for line in open('/proc/self/status'):
        if line.startswith(key):
            return int(line.split()[1])
kind = {kind!r}
def build(eb, labels):
    if kind == 'spikelfp-forward': return S.run_spikelfp_forward(net, eb)
    if kind == 'numpy-forward': return S.run_numpy_forward(net, eb.to_dense(np.float32))
    if kind == 'snntorch-forward': return S.run_snntorch_forward(net, eb.to_dense(np.float32))
    if kind == 'spikelfp-train-spike-count': return S.run_spikelfp_train(net, eb, labels, 'spike-count')
    if kind == 'spikelfp-train-temporal': return S.run_spikelfp_train(net, eb, labels, 'temporal')
    return S.run_snntorch_train(net, eb.to_dense(np.float32), labels)
if kind.startswith('spikelfp-train'):
    from spikelfp.blas import single_threaded_blas
    single_threaded_blas().__enter__()
build(S.make_input(rng, 2, {T}, {sizes}[0], {density}), labels[:2])()   # warm-up on 2 samples: JIT, pools
with open('/proc/self/clear_refs', 'w') as fh:   # reset the high-water mark (VmHWM) to now
    fh.write('5')
rss0 = status('VmRSS:')
f = build(eb, labels)
f(); f()
print(json.dumps({{"peak_above_import_mb": max(0, status('VmHWM:') - rss0) / 1024}}))
"""


def peak_memory(kind, sizes, T, B, density):
    code = MEM_CHILD.format(here=HERE, sizes=sizes, T=T, B=B, density=density, kind=kind)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        return {"error": r.stderr[-500:]}
    return json.loads(r.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- main
def bench_net(name, cfg, quick, repeats, log):
    import spikelfp

    sizes, T = cfg["sizes"], cfg["T"]
    B = 128
    rng = np.random.default_rng(0)
    net = make_net(sizes, T)
    labels = rng.integers(0, sizes[-1], B)
    out = {"sizes": sizes, "T": T, "batch": B, "by_density": {}}
    densities = [0.02] if quick else DENSITIES
    for d in densities:
        eb = make_input(rng, B, T, sizes[0], d)
        dense = eb.to_dense(np.float32)
        rec = spikelfp.simulate(net, eb)
        synops = float(rec.synops.mean())
        row = {"density": d, "events_per_sample": eb.n_events / B, "synops_per_sample": synops,
               "hidden_rate_per_step": float(rec.counts[0].mean() / T)}
        f = run_spikelfp_forward(net, eb)
        row["spikelfp_forward"] = timed(f, repeats)
        row["snntorch_forward"] = timed(run_snntorch_forward(net, dense), max(2, repeats // 2))
        row["numpy_forward"] = timed(run_numpy_forward(net, dense), max(2, repeats // 2))
        row["rowadd_limit"] = rowadd_limit(net, eb, repeats)
        row["fused_rowadd_limit"] = rowadd_limit(net, eb, repeats, fused=True)
        fw = row["spikelfp_forward"]["median_s"]
        row["spikelfp_synops_per_s"] = synops * B / fw
        # the row-add limits cover layer 0's events; the whole forward's SynOps against them (above
        # 100 % of the one-row limit: the fused adds beat it)
        row["fraction_of_rowadd_limit"] = row["spikelfp_synops_per_s"] / row["rowadd_limit"]["synops_per_s"]
        row["fraction_of_fused_rowadd_limit"] = (row["spikelfp_synops_per_s"]
                                                 / row["fused_rowadd_limit"]["synops_per_s"])
        row["forward_samples_per_s"] = {k: B / row[k]["median_s"] for k in
                                        ("spikelfp_forward", "snntorch_forward", "numpy_forward")}
        row["forward_speedup_vs_snntorch"] = row["snntorch_forward"]["median_s"] / fw
        row["forward_speedup_vs_numpy"] = row["numpy_forward"]["median_s"] / fw
        if d == 0.02 or not quick:
            from spikelfp.blas import single_threaded_blas
            for rule in ("spike-count", "temporal"):
                with single_threaded_blas():   # as the trainer runs it
                    row[f"spikelfp_train_{rule}"] = timed(run_spikelfp_train(net, eb, labels, rule), repeats)
            row["snntorch_train"] = timed(run_snntorch_train(net, dense, labels), max(2, repeats // 2))
            sg = row["snntorch_train"]["median_s"]
            row["train_speedup_vs_snntorch"] = sg / row["spikelfp_train_spike-count"]["median_s"]
            row["train_speedup_vs_snntorch_temporal"] = sg / row["spikelfp_train_temporal"]["median_s"]
        log(f"{name} density {d:.3f}: forward spikelfp {B / fw:,.0f} samples/s "
            f"({row['forward_speedup_vs_snntorch']:.1f}x snntorch, {row['forward_speedup_vs_numpy']:.1f}x numpy), "
            f"{row['spikelfp_synops_per_s'] / 1e9:.1f} GSynOps/s = {row['fraction_of_rowadd_limit']:.0%} of the "
            f"one-row add limit, {row['fraction_of_fused_rowadd_limit']:.0%} of the fused one; "
            f"train {row.get('train_speedup_vs_snntorch', float('nan')):.1f}x (spike-count) "
            f"{row.get('train_speedup_vs_snntorch_temporal', float('nan')):.1f}x (temporal)")
        if max_other_load(row) > HIGH_LOAD:
            log(f"warning: other processes kept {max_other_load(row):.0%} of the CPUs busy during a timing of "
                f"{name} at {d:.1%}: these ratios are indicative only")
        out["by_density"][str(d)] = row
    at2 = out["by_density"]["0.02"]
    out["forward_speedup_vs_snntorch"] = at2["forward_speedup_vs_snntorch"]
    out["train_speedup_vs_snntorch"] = at2["train_speedup_vs_snntorch"]
    out["train_speedup_vs_snntorch_temporal"] = at2["train_speedup_vs_snntorch_temporal"]
    out["fraction_of_rowadd_limit"] = at2["fraction_of_rowadd_limit"]
    out["fraction_of_fused_rowadd_limit"] = at2["fraction_of_fused_rowadd_limit"]
    out["forward_samples_per_s_2pct"] = at2["forward_samples_per_s"]["spikelfp_forward"]
    # memory, each approach in a fresh process
    out["peak_memory_mb"] = {k: peak_memory(k, sizes, T, B, 0.02) for k in
                             ("spikelfp-forward", "snntorch-forward", "numpy-forward", "spikelfp-train-spike-count",
                              "spikelfp-train-temporal", "snntorch-train")}
    log(f"{name} peak memory above import (MB): " + ", ".join(
        f"{k} {v.get('peak_above_import_mb', float('nan')):.0f}" for k, v in out["peak_memory_mb"].items()))
    return out


def scaling(quick, repeats, log):
    """spikelfp forward on the SHD-like net: cost vs spikes (density), batch size, hidden size."""
    rng = np.random.default_rng(5)
    rows = []
    grid = ([("density", d, 128, 256) for d in DENSITIES] + [("batch", 0.02, b, 256) for b in (32, 128, 512)]
            + [("hidden", 0.02, 128, h) for h in (128, 256, 512)])
    if quick:
        grid = [g for g in grid if g[0] == "density"]
    for kind, d, B, H in grid:
        net = make_net([700, H, 20], 100)
        eb = make_input(rng, B, 100, 700, d)
        import spikelfp
        rec = spikelfp.simulate(net, eb)
        t = timed(run_spikelfp_forward(net, eb), repeats)
        synops = float(rec.synops.sum())
        rows.append({"vary": kind, "density": d, "batch": B, "hidden": H, "events": eb.n_events,
                     "synops": synops, "seconds": t["median_s"], "us_per_sample": t["median_s"] / B * 1e6,
                     "ns_per_synop": t["median_s"] / synops * 1e9, "other_cpu_load": t["other_cpu_load"]})
        log(f"scaling {kind}: density {d} batch {B} hidden {H}: {t['median_s'] / B * 1e6:.1f} us/sample, "
            f"{t['median_s'] / synops * 1e9:.3f} ns/SynOp")
    return rows


def max_other_load(row) -> float:
    """The highest other-CPU load (share of all CPUs) during any timing of a table row."""
    return max([v["other_cpu_load"] for v in row.values() if isinstance(v, dict)
                and v.get("other_cpu_load") == v.get("other_cpu_load", 0.0)], default=0.0)   # (not NaN)


def markdown(r):
    lines = [f"# Simulator benchmark ({r['machine']['cpu']}, {r['machine']['cpus']} CPUs, numba {THREADS} threads, "
             f"torch {THREADS} threads; {r['date']})", "",
             f"numpy matmul: {r['matmul']['gflops']:.1f} GFLOP/s (float32, {THREADS} threads). Batch 128, float32, "
             "median of repeats (spread and other CPU load in the JSON).", ""]
    for name, n in r["nets"].items():
        lines += [f"## {name}: {'-'.join(map(str, n['sizes']))}, T={n['T']}", "",
                  "| input density | SynOps/sample | spikelfp fwd samples/s | snntorch fwd | numpy fwd | "
                  "fwd speedup vs snntorch | GSynOps/s | row-add limit one-row / fused (GSynOps/s) | "
                  "of one-row limit | of fused limit | LFP spike-count train speedup | "
                  "LFP temporal train speedup | max other CPU load |", "|" + "---|" * 13]
        for d, row in n["by_density"].items():
            fs = row["forward_samples_per_s"]
            lines.append(
                f"| {float(d):.1%} | {row['synops_per_sample']:,.0f} | {fs['spikelfp_forward']:,.0f} | "
                f"{fs['snntorch_forward']:,.0f} | {fs['numpy_forward']:,.0f} | "
                f"{row['forward_speedup_vs_snntorch']:.1f}× | "
                f"{row['spikelfp_synops_per_s'] / 1e9:.1f} | {row['rowadd_limit']['synops_per_s'] / 1e9:.1f} / "
                f"{row.get('fused_rowadd_limit', {}).get('synops_per_s', float('nan')) / 1e9:.1f} | "
                f"{row['fraction_of_rowadd_limit']:.0%} | "
                f"{row.get('fraction_of_fused_rowadd_limit', float('nan')):.0%} | "
                f"{row.get('train_speedup_vs_snntorch', float('nan')):.1f}× | "
                f"{row.get('train_speedup_vs_snntorch_temporal', float('nan')):.1f}× | {max_other_load(row):.2f} |")
        mem = n["peak_memory_mb"]
        lines += ["", "Peak memory above import at 2 % (MB): " + ", ".join(
            f"{k} {v.get('peak_above_import_mb', float('nan')):.0f}" for k, v in mem.items()), ""]
    busy = [(name, d, max_other_load(row)) for name, n in r["nets"].items() for d, row in n["by_density"].items()
             if max_other_load(row) > HIGH_LOAD]
    if busy:
        lines += [f"**Warning: other processes kept more than {HIGH_LOAD:.0%} of the CPUs busy during some timings** ("
                  + ", ".join(f"{name} at {float(d):.1%}: {x:.0%}" for name, d, x in busy)
                  + "): their ratios are indicative only.", ""]
    if r.get("scaling"):
        lines += ["## Scaling of the spikelfp forward (SHD-like net, T=100)", "",
                  "| vary | density | batch | hidden | SynOps | µs/sample | ns/SynOp |", "|" + "---|" * 7]
        for s in r["scaling"]:
            lines.append(f"| {s['vary']} | {s['density']:.1%} | {s['batch']} | {s['hidden']} | {s['synops']:,.0f} | "
                         f"{s['us_per_sample']:.1f} | {s['ns_per_synop']:.3f} |")
    return "\n".join(lines) + "\n"


def add_threads_option(ap):
    ap.add_argument("--threads", type=int, default=THREADS,
                    help=f"threads for numba, torch and BLAS alike (default {THREADS}, or $SPIKELFP_BENCH_THREADS)")


def run_net_script(argv, doc, json_name, quick_help, bench, nets, markdown):
    """main() of a per-net benchmark script (benchmarks/layers.py, rowadd_ceiling.py): --quick,
    --json (default benchmarks/results/<json_name>), --threads; numba on that many threads, BLAS on
    one around numba work (as here); ``bench(name, cfg, quick, log)`` per net of ``nets``; writes
    the JSON and ``markdown(r)`` beside it (atomically)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help=quick_help)
    ap.add_argument("--json", default=os.path.join(RESULTS, json_name))
    add_threads_option(ap)
    args = ap.parse_args(argv)
    set_threads(args.threads)
    import numba

    from spikelfp.blas import single_threaded_blas
    from spikelfp.io import atomic_path, write_json

    numba.set_num_threads(THREADS)
    single_threaded_blas().__enter__()
    r = {"quick": args.quick, "threads": THREADS, "date": time.strftime("%Y-%m-%d %H:%M"),
         "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                     "cpus": os.cpu_count()},
         "nets": {name: bench(name, cfg, args.quick, print) for name, cfg in nets.items()}}
    write_json(args.json, r)
    md = os.path.splitext(args.json)[0] + ".md"
    with atomic_path(md) as tmp, open(tmp, "w") as fh:
        fh.write(markdown(r))
    print(f"written: {args.json}, {md}")


def set_threads(n: int) -> None:
    """Use n threads for numba, torch and BLAS in every comparison (and in the memory probes)."""
    global THREADS
    cpus = os.cpu_count() or 1
    if not 1 <= n <= cpus:
        raise SystemExit(f"--threads must lie in 1..{cpus} (this machine's CPUs); got {n}")
    THREADS = n
    os.environ["SPIKELFP_BENCH_THREADS"] = str(n)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 %% density only, fewer repeats (< 2 minutes)")
    ap.add_argument("--json", help="also write the JSON here")
    ap.add_argument("--out", default=RESULTS, help="results folder (default benchmarks/results)")
    add_threads_option(ap)
    args = ap.parse_args(argv)
    set_threads(args.threads)
    import numba
    numba.set_num_threads(THREADS)
    repeats = 3 if args.quick else 7
    t0 = time.time()
    log = lambda m: print(m, flush=True)  # noqa: E731
    r = {"date": time.strftime("%Y-%m-%d %H:%M"), "quick": args.quick,
         "machine": {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                     "platform": platform.platform(), "python": platform.python_version(),
                     "loadavg_start": os.getloadavg()},
         "threads": {"numba": THREADS, "torch": THREADS, "blas_numpy_reference": THREADS, "blas_in_numba_work": 1},
         "matmul": matmul_gflops(repeats), "nets": {}}
    for name, cfg in NETS.items():
        r["nets"][name] = bench_net(name, cfg, args.quick, repeats, log)
    r["scaling"] = scaling(args.quick, repeats, log)
    r["machine"]["loadavg_end"] = os.getloadavg()
    r["wall_s"] = time.time() - t0
    for name, n in r["nets"].items():
        r[f"{name}/forward_speedup_vs_snntorch"] = n["forward_speedup_vs_snntorch"]
    r["forward_speedup_vs_snntorch"] = {k: n["forward_speedup_vs_snntorch"] for k, n in r["nets"].items()}
    r["train_speedup_vs_snntorch"] = {k: n["train_speedup_vs_snntorch"] for k, n in r["nets"].items()}
    r["train_speedup_vs_snntorch_temporal"] = {k: n["train_speedup_vs_snntorch_temporal"] for k, n in r["nets"].items()}
    r["fraction_of_rowadd_limit"] = {k: n["fraction_of_rowadd_limit"] for k, n in r["nets"].items()}
    os.makedirs(args.out, exist_ok=True)
    stem = "simulator-quick" if args.quick else "simulator"
    sys.path.insert(0, os.path.dirname(HERE))
    from spikelfp.io import write_json
    write_json(os.path.join(args.out, f"{stem}.json"), r)
    with open(os.path.join(args.out, f"{stem}.md"), "w") as fh:
        fh.write(markdown(r))
    if args.json:
        write_json(args.json, r)
    log(markdown(r))
    log(f"wall {r['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
