#!/usr/bin/env python
"""Binning throughput: spikelfp's numba binning vs tonic's ToFrame, on the same recordings.

Both turn each recording's events into a fixed grid of T = 30 bins of 10 ms over 300 ms (tonic:
``ToFrame(sensor_size, time_window=10_000)`` after cropping to [0, 300 ms), then the downsampling
and binarisation spikelfp's input needs; spikelfp: :func:`spikelfp.datasets.bin_events`, which
does all of it). Recordings: the digits-saccade N-MNIST files, read once by tonic's reader before
timing. Reports events per second (median of repeats) and writes
``benchmarks/results/binning.{json,md}``.

Usage: ``python benchmarks/binning.py [--quick] [--json PATH]``
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args(argv)

    import tonic
    from simulator import timed
    from spikelfp.datasets import Binning, bin_events
    from spikelfp.datasets.registry import DATASETS, data_root

    from spikelfp.io import write_json

    n = 200 if args.quick else 1000
    raw = DATASETS["digits-saccade"].splits(data_root(), None, False)["train"]
    recs = [raw[k][0] for k in range(n)]
    n_events = sum(len(r) for r in recs)
    sensor = (34, 34, 2)
    binning = Binning(bin_us=10_000.0, n_bins=30, spatial_factor=2)
    to_frame = tonic.transforms.ToFrame(sensor_size=sensor, time_window=10_000.0, start_time=0.0, end_time=300_000.0)

    def ours():
        for r in recs:
            bin_events(r["x"], r["y"], r["t"], r["p"], binning, sensor)

    def theirs():
        for r in recs:
            fr = to_frame(r[r["t"] < 300_000])                    # (T, P, H, W) counts
            T = fr.shape[0]
            ds = fr.reshape(T, 2, 17, 2, 17, 2).sum(axis=(3, 5))  # 2x2 spatial downsampling
            np.nonzero(ds.transpose(0, 2, 3, 1).reshape(T, -1))   # binary (t, channel) events

    def theirs_frame_only():
        for r in recs:
            to_frame(r[r["t"] < 300_000])

    reps = 3 if args.quick else 7
    res = {"recordings": n, "events": n_events, "machine": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M")}
    for name, f in (("spikelfp_bin_events", ours), ("tonic_ToFrame_plus_downsample", theirs),
                    ("tonic_ToFrame_only", theirs_frame_only)):
        t = timed(f, reps)
        t["events_per_s"] = n_events / t["median_s"]
        res[name] = t
    ours_s = res["spikelfp_bin_events"]["median_s"]
    res["speedup_vs_tonic"] = res["tonic_ToFrame_plus_downsample"]["median_s"] / ours_s
    res["speedup_vs_tonic_ToFrame_only"] = res["tonic_ToFrame_only"]["median_s"] / ours_s
    md = (f"# Binning throughput ({n} digits-saccade recordings, {n_events:,} events; {res['date']})\n\n"
          "| method | events/s | median s | other CPU load |\n|---|---|---|---|\n" +
          "\n".join(f"| {k} | {res[k]['events_per_s']:,.0f} | {res[k]['median_s']:.4f} | {res[k]['other_cpu_load']} |"
                    for k in ("spikelfp_bin_events", "tonic_ToFrame_plus_downsample", "tonic_ToFrame_only")) +
          f"\n\nspikelfp is {res['speedup_vs_tonic']:.1f}x faster than ToFrame + downsampling + binarising "
          f"({res['speedup_vs_tonic_ToFrame_only']:.1f}x faster than ToFrame alone).\n")
    os.makedirs(args.out, exist_ok=True)
    write_json(os.path.join(args.out, "binning.json"), res)
    with open(os.path.join(args.out, "binning.md"), "w") as fh:
        fh.write(md)
    if args.json:
        write_json(args.json, res)
    print(md)


if __name__ == "__main__":
    main()
