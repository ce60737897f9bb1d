#!/usr/bin/env python
"""A DVS-Gesture-sized workload: LFP temporal against snntorch BPTT on one conv net, time and memory.

    python benchmarks/dvs_gesture.py [--bptt-samples N] [--keep FILE]

1. Writes a recordings file (``spikelfp/datasets/custom.py``'s layout) with DVS128 Gesture's
   geometry and event statistics: 128x128 pixels x 2 polarities, 1.45 s per recording, 63-181 k
   events each (uniform), 11 classes, 1,077 training and 264 test recordings. The events are a
   moving blob (the arm: a class-specific circular or linear path, 70 % of the events) on sensor
   noise (30 %), polarity by the sign of the motion; no real recording is needed or shipped.
2. Bins it as ``spikelfp train --dataset FILE --spatial-factor 4 --bin-ms 10`` does (32x32x2 = 2,048
   inputs, T = 145) and reports the input density per bin.
3. Trains the same conv net (``c16k5s2-c32k3s2``, then 11 outputs; float32, batch 32, 2 threads) for
   one epoch, each method in its own process: LFP (temporal rule, the default optimizer;
   ``spikelfp.Trainer``) and snntorch BPTT (atan surrogate, Adam;
   ``spikelfp.backends.snntorch.train_sg``) on all 1,077 training recordings (BPTT on the first
   ``--bptt-samples`` of them if given, its time scaled to 1,077). Each process first trains one
   untimed epoch on 96 recordings: a process's first batches run slower than the rest (torch's
   first three 0.9, 0.7, 0.6 s against 0.5 s a batch here), and a time scaled up from a few
   batches would carry that start-up several times over. Training time only (no evaluation);
   peak memory is each process's maximum resident set while it trains (the binned dataset
   included; the high-water mark is reset after the warm-up).

Writes ``benchmarks/results/dvs-gesture.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
W = H = 128
DURATION_US = 1_450_000
EV_RANGE = (63_000, 181_000)
N_TRAIN, N_TEST, N_CLASSES = 1077, 264, 11
ARCH = "c16k5s2-c32k3s2"


def recording(rng, label):
    """One synthetic gesture: (t [us], x, y, p) sorted by t."""
    n = int(rng.integers(*EV_RANGE, endpoint=True))
    n_arm = int(0.7 * n)
    t = np.sort(rng.uniform(0, DURATION_US, n))
    arm = rng.permutation(n)[:n_arm]
    phase = 2 * np.pi * t[arm] / DURATION_US * (1 + label % 3)
    cx, cy = 64 + 30 * np.cos(phase + label), 64 + 30 * np.sin(phase * (1 if label % 2 else -1))
    if label >= 6:                                  # the linear gestures: a sweep across the field
        cx = 20 + 88 * (t[arm] / DURATION_US)
        cy = 30 + 10 * label + 0 * cx
    x = rng.integers(0, W, n)
    y = rng.integers(0, H, n)
    x[arm] = np.clip(np.round(cx + rng.normal(0, 8, n_arm)), 0, W - 1)
    y[arm] = np.clip(np.round(cy + rng.normal(0, 8, n_arm)), 0, H - 1)
    p = rng.integers(0, 2, n)
    return t, x.astype(np.int16), y.astype(np.int16), p.astype(np.int8)


def write_file(path, seed=0):
    import h5py

    from spikelfp.io import atomic_path

    rng = np.random.default_rng(seed)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["sensor_size"] = np.array([W, H, 2], np.int64)
        f.attrs["n_classes"] = N_CLASSES
        f.attrs["bin_us"] = 10_000.0
        f.attrs["n_bins"] = 145
        f.attrs["spatial_factor"] = 4
        for split, n in (("train", N_TRAIN), ("test", N_TEST)):
            labels = np.arange(n) % N_CLASSES
            rng.shuffle(labels)
            parts = [recording(rng, int(lab)) for lab in labels]
            ptr = np.zeros(n + 1, np.int64)
            np.cumsum([p[0].size for p in parts], out=ptr[1:])
            g = f.create_group(split)
            g.create_dataset("sample_ptr", data=ptr)
            g.create_dataset("labels", data=labels.astype(np.int64))
            for k, name in enumerate(("t", "x", "y", "p")):
                g.create_dataset(name, data=np.concatenate([p[k] for p in parts]))
            del parts
    return path


CHILD = r"""
import json, sys, time
import numpy as np
from spikelfp import datasets
method, path, n_timed, arch, out, root = sys.argv[1:7]
WARM = 96
train, test = datasets.load(path, root=root)
sub = train.subset(np.arange(int(n_timed)))
small_test = test.subset(np.arange(min(32, len(test))))   # (evaluation is not timed)


def status(key):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key)) / 1024.0


load_peak = status("VmHWM")             # the loader's peak (a cache hit: the file's events are not read)
warm = train.subset(np.arange(WARM))


def run(data):
    if method == "lfp-temporal":
        from spikelfp.train import TrainConfig, Trainer
        return Trainer(TrainConfig(arch=arch, epochs=1, batch_size=32, seed=0), progress=False).fit(data, small_test)
    from spikelfp.backends.snntorch import train_sg
    return train_sg(data, small_test, arch=arch, epochs=1, batch_size=32, surrogate="atan", seed=0, threads=2)


# a process's first batches run slower than the rest (torch: 0.9 and 0.7 s against 0.5 s a batch of 32
# here; spikelfp: its buffers' first touch): an untimed epoch on WARM other recordings first, for both
run(warm)
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")                       # reset the high-water mark: from here on, training's own peak
m = run(sub)
train_s = m["history"][0]["train_seconds"]
load = m["other_cpu_load"]
# the training's high-water mark (VmHWM since the reset; ru_maxrss would carry the parent's over exec),
# the binned dataset (resident) included
json.dump({"train_seconds": train_s, "samples": int(n_timed), "peak_rss_mb": status("VmHWM"),
           "load_peak_rss_mb": load_peak, "other_cpu_load": load,
           "n_in": train.n_in, "n_steps": train.n_steps}, open(out, "w"))
"""


def run_child(method, path, n_timed, root):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "r.json")
        subprocess.run([sys.executable, "-c", CHILD, method, path, str(n_timed), ARCH, out, root], check=True,
                       timeout=3600)
        with open(out) as fh:
            return json.load(fh)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bptt-samples", type=int, default=N_TRAIN,
                    help="training recordings in BPTT's timed epoch (default: all; fewer are scaled up)")
    ap.add_argument("--keep", default=None, help="write (or reuse) the recordings file here")
    ap.add_argument("--json", default=os.path.join(RESULTS, "dvs-gesture.json"))
    a = ap.parse_args(argv)
    from spikelfp import datasets
    from spikelfp.io import atomic_path, write_json
    from spikelfp.loadmeter import OtherLoad

    tmpdir = tempfile.TemporaryDirectory()          # the binned cache goes here too, not to $SPIKELFP_DATA
    root = os.path.join(tmpdir.name, "cache")
    path = a.keep or os.path.join(tmpdir.name, "dvs-gesture-like.h5")
    t0 = time.time()
    if not os.path.exists(path):
        write_file(path)
    gen_s = time.time() - t0
    t0 = time.time()
    train, test = datasets.load(path, root=root)
    bin_s = time.time() - t0
    n_ev = np.diff(train.sample_ptr)
    density = float(n_ev.mean() / (train.n_steps * train.n_in))
    per_bin = []
    for k in range(0, len(train), max(1, len(train) // 50)):
        eb = train.batch(np.array([k]))
        per_bin.append(np.diff(eb.indptr) / train.n_in)
    per_bin = np.concatenate(per_bin)
    meter = OtherLoad()
    runs = {"lfp-temporal": run_child("lfp-temporal", path, N_TRAIN, root),
            "snntorch-bptt": run_child("snntorch-bptt", path, a.bptt_samples, root)}
    load = meter.stop()
    for r in runs.values():
        r["epoch_seconds"] = r["train_seconds"] / r["samples"] * N_TRAIN
    res = {"date": time.strftime("%Y-%m-%d %H:%M"),
           "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()},
           "file": {"train": N_TRAIN, "test": N_TEST, "classes": N_CLASSES, "sensor": [W, H, 2],
                    "duration_s": DURATION_US / 1e6, "events_per_recording": list(EV_RANGE),
                    "size_bytes": os.path.getsize(path), "write_seconds": gen_s},
           "binning": {"spatial_factor": 4, "bin_ms": 10, "n_in": train.n_in, "T": train.n_steps,
                       "seconds": bin_s, "mean_density": density,
                       "active_channels_per_bin": {"mean": float(per_bin.mean()),
                                                   "p95": float(np.percentile(per_bin, 95)),
                                                   "max": float(per_bin.max())}},
           "arch": f"{train.n_in}-{ARCH}-{N_CLASSES}", "batch_size": 32,
           "runs": runs, "speedup": runs["snntorch-bptt"]["epoch_seconds"] / runs["lfp-temporal"]["epoch_seconds"],
           "other_cpu_load": load}
    write_json(a.json, res)
    md = os.path.splitext(a.json)[0] + ".md"
    with atomic_path(md) as tmp, open(tmp, "w") as fh:
        fh.write(markdown(res))
    print(markdown(res))
    tmpdir.cleanup()


def markdown(r) -> str:
    b, f = r["binning"], r["file"]
    lines = [f"DVS-Gesture-sized workload ({r['machine']['processor']}, {r['machine']['cpus']} CPUs, 2 threads each): "
             f"{f['train']}/{f['test']} synthetic recordings, 128x128x2, {f['duration_s']} s, "
             f"{f['events_per_recording'][0] // 1000}-{f['events_per_recording'][1] // 1000} k events each "
             f"({f['size_bytes'] / 1e9:.2f} GB file); binned at --spatial-factor 4, 10 ms: {b['n_in']} inputs x "
             f"T = {b['T']}, active channels per bin {b['active_channels_per_bin']['mean']:.1%} mean, "
             f"{b['active_channels_per_bin']['p95']:.1%} p95, {b['active_channels_per_bin']['max']:.1%} max", "",
             "| method | net | s / epoch (1,077 recordings, batch 32) | peak memory |", "|---|---|---|---|"]
    for name, x in r["runs"].items():
        lines.append(f"| {name} | {r['arch']} | {x['epoch_seconds']:.1f} s | {x['peak_rss_mb'] / 1024:.2f} GB |")
    load = r["other_cpu_load"] or 0.0
    nb = r['runs']['snntorch-bptt']['samples']
    bptt = "one full epoch" if nb >= f["train"] else f"one epoch on {nb} recordings scaled to {f['train']:,}"
    lines += ["", f"LFP temporal is **{r['speedup']:.1f}x** faster per epoch than snntorch BPTT. LFP: one full epoch; "
              f"BPTT: {bptt} (training only, batch 32 both; each after an untimed warm-up epoch on 96 "
              f"recordings in the same process); peak memory is each "
              f"process's maximum resident set while it trains, the binned dataset included (loading it from "
              f"the binned cache peaked at {r['runs']['lfp-temporal']['load_peak_rss_mb'] / 1024:.2f} GB "
              f"before). Other processes' CPU load "
              f"{load:.2f}" + (" (high: times unreliable)" if load > 0.25 else "") + ".", "",
              "Command: `python benchmarks/dvs_gesture.py"
              + (f" --bptt-samples {nb}`" if nb < f["train"] else "`") + " "
              f"({r['date']})", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
