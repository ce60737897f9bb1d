#!/usr/bin/env python
"""spikelfp against lfprop 1.0.0, the authors' LFP package: one LFP step on the same nets and data.

Set-up (once; lfprop lives in its own environment, never the project's ``.venv``: its imports pull
transformers and torchvision; the steps of ``tests/fixtures/make_lfprop_golden.py``)::

    python3.11 -m venv /tmp/lfpvenv
    /tmp/lfpvenv/bin/pip install torch==2.13.0          # the CPU wheel
    /tmp/lfpvenv/bin/pip install "snntorch>=0.9.1,<0.10" h5py
    /tmp/lfpvenv/bin/pip install --no-deps lfprop==1.0.0 "lxt>=0.6.1,<0.7" "zennit>=0.5.1,<0.6"
    /tmp/lfpvenv/bin/pip install numpy pillow click tabulate "transformers>=4.52.4,<5"
    /tmp/lfpvenv/bin/pip install --no-deps torchvision==0.28.0

Run (with the project's environment; ``--lfprop-python`` or ``$LFPROP_PYTHON``)::

    .venv/bin/python benchmarks/lfprop.py --lfprop-python /tmp/lfpvenv/bin/python [--quick]

Nets (float32, subtract reset, the paper's rule: ``Temporal(form="paper", contrib="spikes")``,
rate-coded reward ``RateReward`` = lfprop's ``SnnCorrectClassRewardSpikesRateCoded``, eps 1e-6;
weights scaled so every trained layer fires ~5 % of its steps; batch 128):

* ``smalllifmlp-T25`` / ``-T15``: lfprop's SmallLifMLP, 784-1000-10, rate-coded MNIST-sized input at
  13 % density;
* ``lifcnn``: lfprop's LifCNN shape on 28x28x1 input, Conv12k5 -> LIF -> pool2 -> Conv64k5 -> LIF ->
  pool2 -> 10, T = 25, 13 %; pooling as spikelfp does it (``p2``: a LIF layer of fixed synapses,
  OR-pooling of spikes, the rule through it), built in lfprop as a SpikingLayer of that fixed Conv2d
  so both sides run the same network and rule (lfprop's own MaxPool2d passes the reward to one
  arg-max input, spiking or not: another rule);
* ``shd-like``: 700-256-20, T = 100, 2 %.

Before timing, the feedback is checked equal: the first 16 samples in float64 on both sides, same
output spikes, every trained layer's F_W to rtol 1e-9. Timed (float32, 2 threads each, medians):
lfprop's forward over T + reward + backward; spikelfp's ``Rule.feedback`` on events built once (as
its trainer does) and on the dense (B, T, n) array (the conversion included). No optimizer step on
either side. Results: ``benchmarks/results/lfprop.{json,md}``.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import simulator as S  # noqa: E402  (timed, make_input, set_threads)
from layers import calibrated  # noqa: E402

CASES = {
    "smalllifmlp-T25": dict(arch="d1000", in_shape=784, n_out=10, T=25, density=0.13),
    "smalllifmlp-T15": dict(arch="d1000", in_shape=784, n_out=10, T=15, density=0.13),
    "lifcnn": dict(arch="c12k5-p2-c64k5-p2", in_shape=(28, 28, 1), n_out=10, T=25, density=0.13),
    "shd-like": dict(arch="d256", in_shape=700, n_out=20, T=100, density=0.02),
}
BATCH = 128
EPS = 1e-6
RATE = 0.05


def make_net(arch, in_shape, n_out, T, density, seed=0):
    """float32 net, subtract reset, calibrated as benchmarks/layers.py's (each trained layer ~5 % of
    steps; pooling layers keep their fixed synapses)."""
    import spikelfp

    net = spikelfp.Network.from_arch(arch, in_shape, n_out, seed=seed, dtype=np.float32, reset="subtract")
    for la in net.layers:        # snntorch keeps beta as a float32 tensor: the float64 check runs that value
        la.beta = float(np.float32(la.beta))
    return calibrated(net, T, density, seed=seed, rate=RATE)


def case_arrays(net, x, labels) -> dict:
    from spikelfp.network import ConvLayer

    d = {"n_layers": np.int64(len(net.layers)), "x": x, "labels": labels, "eps": np.float64(EPS)}
    for l, la in enumerate(net.layers):
        conv = isinstance(la, ConvLayer)
        d[f"layer{l}/kind"] = np.array("pool" if conv and not la.trainable else "conv" if conv else "dense")
        d[f"layer{l}/weight"] = la.weight.astype(np.float64)
        d[f"layer{l}/beta"] = np.float64(la.beta)
        d[f"layer{l}/threshold"] = np.float64(la.threshold)
        if conv:
            d[f"layer{l}/in_shape"] = np.array(la.in_shape, np.int64)
            d[f"layer{l}/out_shape"] = np.array(la.out_shape, np.int64)
            d[f"layer{l}/stride"] = np.int64(la.stride)
    return d


def run_lfprop(python, case, threads, repeats, check_batch):
    with tempfile.TemporaryDirectory() as d:
        cin, cout = os.path.join(d, "case.npz"), os.path.join(d, "out.npz")
        np.savez(cin, **case)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        subprocess.run([python, os.path.join(HERE, "lfprop_worker.py"), cin, cout, "--threads", str(threads),
                        "--repeats", str(repeats), "--check-batch", str(check_batch)], check=True, env=env,
                       timeout=3600)
        with np.load(cout, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}


def check(net, x, labels, lf, check_batch):
    """spikelfp's float64 feedback on the first samples against lfprop's: spikes and F_W."""
    import spikelfp
    from spikelfp.feedback import RateReward

    n = min(check_batch, x.shape[0])
    net64 = net.astype(np.float64)
    rec = spikelfp.simulate(net64, x[:n], raster=True)
    same_spikes = bool(np.array_equal(rec.rasters[-1].transpose(1, 0, 2), lf["check_spikes"]))
    fb = spikelfp.Temporal(eps=EPS, reward=RateReward(), form="paper", contrib="spikes",
                           n_chunks=1).feedback(net64, x[:n], labels[:n])
    worst = 0.0
    for l in range(len(net.layers)):
        key = f"feedback{l}"
        if key not in lf:
            continue
        ref, got = lf[key], fb.weight[l]
        scale = float(np.abs(ref).max())
        if scale == 0:
            raise SystemExit(f"layer {l}: lfprop's feedback is all zero: the check would be vacuous")
        worst = max(worst, float(np.abs(got - ref).max()) / scale)
    return {"samples": n, "same_output_spikes": same_spikes, "max_rel_feedback_error": worst,
            "equal": same_spikes and worst < 1e-9}


def bench(name, cfg, python, quick, log):
    import spikelfp
    from spikelfp.feedback import RateReward

    T = cfg["T"]
    net = make_net(cfg["arch"], cfg["in_shape"], cfg["n_out"], T, cfg["density"])
    eb = S.make_input(np.random.default_rng(1), BATCH, T, net.n_in, cfg["density"])
    labels = np.random.default_rng(2).integers(0, cfg["n_out"], BATCH)
    x = eb.to_dense()
    reps = 3 if quick else 7
    lf = run_lfprop(python, case_arrays(net, x, labels), S.THREADS, reps, 16)
    chk = check(net, x, labels, lf, 16)
    log(f"{name}: feedback check against lfprop (float64, {chk['samples']} samples): output spikes "
        f"{'identical' if chk['same_output_spikes'] else 'DIFFER'}, max relative F_W error "
        f"{chk['max_rel_feedback_error']:.1e}")
    if not chk["equal"]:
        raise SystemExit(f"{name}: spikelfp's feedback is not lfprop's: nothing timed")
    rule = spikelfp.Temporal(eps=EPS, reward=RateReward(), form="paper", contrib="spikes")
    dense32 = x.astype(np.float32)
    t_ev = S.timed(lambda: rule.feedback(net, eb, labels), reps)
    t_dense = S.timed(lambda: rule.feedback(net, dense32, labels), reps)
    t_conv = S.timed(lambda: spikelfp.EventBatch.from_dense(dense32), reps)
    rec = spikelfp.simulate(net, eb)
    lf_s = float(np.median(lf["seconds"]))
    out = {"arch": f"{net.n_in}-{net.arch}-{cfg['n_out']}", "T": T, "batch": BATCH, "density": cfg["density"],
           "rates": [float(c.mean() / T) for c in rec.counts], "synops_per_sample": float(rec.synops.mean()),
           "check": chk, "lfprop_s": {"median_s": lf_s, "all_s": [float(v) for v in lf["seconds"]]},
           "spikelfp_events_s": t_ev, "spikelfp_dense_s": t_dense, "dense_conversion_s": t_conv,
           "speedup": lf_s / t_ev["median_s"], "speedup_dense_input": lf_s / t_dense["median_s"],
           "versions": [str(v) for v in lf["versions"]]}
    log(f"{name}: lfprop {lf_s * 1e3:.1f} ms, spikelfp {t_ev['median_s'] * 1e3:.1f} ms (events) / "
        f"{t_dense['median_s'] * 1e3:.1f} ms (dense input): {out['speedup']:.1f}x / {out['speedup_dense_input']:.1f}x "
        f"(other CPU load up to {max(t_ev['other_cpu_load'], t_dense['other_cpu_load']):.2f})")
    return out


def markdown(r):
    lines = [f"spikelfp vs lfprop 1.0.0, one LFP step (paper form, rate reward, subtract reset, float32, batch "
             f"{BATCH}; {r['machine']['processor']}, {r['machine']['cpus']} CPUs, {r['threads']} threads each; "
             f"{', '.join(next(iter(r['nets'].values()))['versions'])})", "",
             "| net | T | input density | spikes/neuron/step | feedback check (float64) | lfprop | spikelfp (events) "
             "| ratio | spikelfp (dense input) | ratio | conversion |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, n in r["nets"].items():
        c = n["check"]
        lines.append(f"| {name} {n['arch']} | {n['T']} | {n['density']:.0%} | "
                     f"{', '.join(f'{v:.3f}' for v in n['rates'])} | spikes equal, F_W to "
                     f"{c['max_rel_feedback_error']:.0e} | {n['lfprop_s']['median_s'] * 1e3:.1f} ms | "
                     f"{n['spikelfp_events_s']['median_s'] * 1e3:.1f} ms | **{n['speedup']:.1f}x** | "
                     f"{n['spikelfp_dense_s']['median_s'] * 1e3:.1f} ms | {n['speedup_dense_input']:.1f}x | "
                     f"{n['dense_conversion_s']['median_s'] * 1e3:.1f} ms |")
    load = max(max(n["spikelfp_events_s"]["other_cpu_load"], n["spikelfp_dense_s"]["other_cpu_load"])
               for n in r["nets"].values())
    lines += ["", "Per batch, medians of repeats; the feedback only (no optimizer step). Other processes' CPU "
              f"load during spikelfp's timings: up to {load:.2f} of the machine"
              + (" — **high: the ratios are not reliable**" if load > 0.25 else "") + ".", "",
              f"Command: `python benchmarks/lfprop.py --lfprop-python PATH{' --quick' if r['quick'] else ''}` "
              f"({r['date']})"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lfprop-python", default=os.environ.get("LFPROP_PYTHON"),
                    help="python of an environment with lfprop 1.0.0 (the set-up above); or $LFPROP_PYTHON")
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--nets", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    ap.add_argument("--json", default=os.path.join(S.RESULTS, "lfprop.json"))
    S.add_threads_option(ap)
    a = ap.parse_args(argv)
    if not a.lfprop_python or not os.path.exists(a.lfprop_python):
        raise SystemExit("benchmarks/lfprop.py needs lfprop's own environment: --lfprop-python PATH (or "
                         "$LFPROP_PYTHON); the set-up is in this script's docstring")
    S.set_threads(a.threads)
    import numba

    from spikelfp.blas import single_threaded_blas
    from spikelfp.io import atomic_path, write_json

    numba.set_num_threads(S.THREADS)
    names = [n.strip() for n in a.nets.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise SystemExit(f"unknown nets {unknown}; choose from {', '.join(CASES)}")
    with single_threaded_blas():
        r = {"quick": a.quick, "threads": S.THREADS, "date": time.strftime("%Y-%m-%d %H:%M"),
             "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                         "cpus": os.cpu_count(), "loadavg_start": os.getloadavg()},
             "nets": {n: bench(n, CASES[n], a.lfprop_python, a.quick, lambda m: print(m, flush=True))
                      for n in names}}
    write_json(a.json, r)
    md = os.path.splitext(a.json)[0] + ".md"
    with atomic_path(md) as tmp, open(tmp, "w") as fh:
        fh.write(markdown(r))
    print(markdown(r))
    print(f"written: {a.json}, {md}")


if __name__ == "__main__":
    main()
