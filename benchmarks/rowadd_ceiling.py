"""How fast can the forward possibly be? The row adds alone, three schedules, against snntorch.

The event-driven forward spends most of its time adding weight rows (one per input spike and
hidden neuron block). This script times *only* those row adds of the hidden layer, on the same
Bernoulli events as ``benchmarks/simulator.py`` (batch 128, 2 % input, float32), with no LIF
update, no spike compress and no readout, in three schedules:

* ``fused``: the simulator's own :func:`spikelfp.kernels.lif.add_rows`, sample by sample (eight
  rows per pass over the accumulator);
* ``batch-major-G``: G samples in lockstep; per step the union of their input channels, each
  weight row fetched once and added to the accumulator of every sample that has the channel
  (issue 13's "one weight row serves them all"); G = 2, 4, 8, 16;
* ``tiled-G``: G samples in lockstep and the hidden neurons in tiles of 64; per step and tile,
  each sample's rows are added eight per pass (as ``fused``), so a row segment shared by two
  samples is fetched from L2/L3 once and then read from L1.

Every schedule adds each sample's rows in ascending channel order (the simulator's bits); a test
checks that all of them give the plain sum's bits. The script also times snntorch's forward
of the same net and reports the **ceiling**: snntorch's time over the time of the row adds
alone at the best schedule. A forward cannot be faster than its row adds, so a ceiling below a
target says the target is out of reach for an event-driven forward on this machine.

    python benchmarks/rowadd_ceiling.py [--quick] [--threads N]

Writes ``benchmarks/results/rowadd-ceiling.json`` and ``.md``.
"""

from __future__ import annotations

import os
import sys

import numpy as np
from numba import njit, prange

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import simulator as S  # noqa: E402  (timed, make_net, make_input, run_snntorch_forward, threads)

from spikelfp.kernels.lif import _cttz, add_rows  # noqa: E402

TILE = 64
GROUPS = (2, 4, 8, 16)


@njit(parallel=True, cache=True)
def rows_fused(ptr, idx, B, T, WT, n_out, n_chunks, out):
    """Sample by sample, step by step: the simulator's eight-rows-per-pass add (out: (B, n_out), the
    accumulator after the last step, each step's sum halved first: a stand-in for the leak)."""
    for c in prange(n_chunks):
        acc = np.zeros(n_out, dtype=WT.dtype)
        for b in range(c * B // n_chunks, (c + 1) * B // n_chunks):
            for j in range(n_out):
                acc[j] = 0.0
            for t in range(T):
                for j in range(n_out):
                    acc[j] *= 0.5
                add_rows(acc, WT, 0, n_out, idx, ptr[b * T + t], ptr[b * T + t + 1])
            out[b] = acc


@njit(parallel=True, cache=True)
def rows_batch_major(ptr, idx, B, T, WT, n_in, n_out, G, n_chunks, out):
    """G samples in lockstep; per step each channel of their union is fetched once and added to the
    accumulator of every sample that has it (channels ascending: each sample's order is kept). The
    union is merged from the samples' sorted channel lists (linear in the events)."""
    for c in prange(n_chunks):
        lo, hi = c * B // n_chunks, (c + 1) * B // n_chunks
        acc = np.zeros((G, n_out), dtype=WT.dtype)
        owners = np.zeros(n_in, dtype=np.uint64)       # bit g: sample g of the group has the channel
        ua = np.empty(n_in, dtype=np.int64)
        ub = np.empty(n_in, dtype=np.int64)
        for g0 in range(lo, hi, G):
            ng = min(G, hi - g0)
            acc[:, :] = 0.0
            for t in range(T):
                nu = 0
                for g in range(ng):                     # merge sample g's sorted channels into the union
                    r = (g0 + g) * T + t
                    e, e1, p, k = ptr[r], ptr[r + 1], 0, 0
                    while p < nu or e < e1:
                        if e == e1 or (p < nu and ua[p] < idx[e]):
                            ub[k] = ua[p]
                            p += 1
                        else:
                            i = idx[e]
                            ub[k] = i
                            owners[i] |= np.uint64(1) << np.uint64(g)
                            if p < nu and ua[p] == i:
                                p += 1
                            e += 1
                        k += 1
                    nu = k
                    ua, ub = ub, ua
                for g in range(ng):
                    a = acc[g]
                    for j in range(n_out):
                        a[j] *= 0.5
                for q in range(nu):
                    i = ua[q]
                    row = WT[i * n_out: (i + 1) * n_out]
                    m = owners[i]
                    owners[i] = 0
                    while m != 0:
                        a = acc[np.int64(_cttz(m))]
                        for j in range(n_out):
                            a[j] += row[j]
                        m &= m - np.uint64(1)
            for g in range(ng):
                out[g0 + g] = acc[g]


@njit(cache=True, inline="always")
def _add_rows_tile(a, WT, j0, tw, n_out, idx, e0, e1):
    """``a += WT[idx[e]*n_out + j0 : ... + tw]`` for e in e0..e1-1, eight rows per pass, in order."""
    e = e0
    while e + 8 <= e1:
        r0 = WT[idx[e] * n_out + j0: idx[e] * n_out + j0 + tw]
        r1 = WT[idx[e + 1] * n_out + j0: idx[e + 1] * n_out + j0 + tw]
        r2 = WT[idx[e + 2] * n_out + j0: idx[e + 2] * n_out + j0 + tw]
        r3 = WT[idx[e + 3] * n_out + j0: idx[e + 3] * n_out + j0 + tw]
        r4 = WT[idx[e + 4] * n_out + j0: idx[e + 4] * n_out + j0 + tw]
        r5 = WT[idx[e + 5] * n_out + j0: idx[e + 5] * n_out + j0 + tw]
        r6 = WT[idx[e + 6] * n_out + j0: idx[e + 6] * n_out + j0 + tw]
        r7 = WT[idx[e + 7] * n_out + j0: idx[e + 7] * n_out + j0 + tw]
        for j in range(tw):
            a[j] = (((((((a[j] + r0[j]) + r1[j]) + r2[j]) + r3[j]) + r4[j]) + r5[j]) + r6[j]) + r7[j]
        e += 8
    while e < e1:
        r0 = WT[idx[e] * n_out + j0: idx[e] * n_out + j0 + tw]
        for j in range(tw):
            a[j] += r0[j]
        e += 1


@njit(parallel=True, cache=True)
def rows_tiled(ptr, idx, B, T, WT, n_out, G, n_chunks, out):
    """G samples in lockstep, hidden neurons in tiles of TILE: per step and tile, each sample's rows
    eight per pass; a segment shared by samples of the group is read from L1 after its first use."""
    for c in prange(n_chunks):
        lo, hi = c * B // n_chunks, (c + 1) * B // n_chunks
        acc = np.zeros((G, n_out), dtype=WT.dtype)
        for g0 in range(lo, hi, G):
            ng = min(G, hi - g0)
            acc[:, :] = 0.0
            for t in range(T):
                for j0 in range(0, n_out, TILE):
                    tw = min(TILE, n_out - j0)
                    for g in range(ng):
                        a = acc[g, j0: j0 + tw]
                        for j in range(tw):
                            a[j] *= 0.5
                        r = (g0 + g) * T + t
                        _add_rows_tile(a, WT, j0, tw, n_out, idx, ptr[r], ptr[r + 1])
            for g in range(ng):
                out[g0 + g] = acc[g]


def sharing(eb, G):
    """Input events per distinct (group, step, channel): how many samples one fetched row serves."""
    B, T = eb.batch_size, eb.n_steps
    rows = np.repeat(np.arange(B * T), np.diff(eb.indptr))
    b, t = rows // T, rows % T
    key = ((b // G) * T + t) * eb.n_in + eb.indices
    return eb.n_events / np.unique(key).size


def run_schedules(eb, WT, n_out, repeats, groups=GROUPS):
    """{schedule: timing + GSynOps/s (fastest repeat)} on these events; all outputs must agree bit for bit."""
    B, T, n_in = eb.batch_size, eb.n_steps, eb.n_in
    n_chunks = 2 * S.THREADS
    ref = np.empty((B, n_out), WT.dtype)
    res = {}
    calls = {"fused": lambda o: rows_fused(eb.indptr, eb.indices, B, T, WT, n_out, n_chunks, o)}
    for G in groups:
        calls[f"batch-major-{G}"] = (lambda o, G=G: rows_batch_major(eb.indptr, eb.indices, B, T, WT, n_in, n_out, G,
                                                                      n_chunks, o))
        calls[f"tiled-{G}"] = lambda o, G=G: rows_tiled(eb.indptr, eb.indices, B, T, WT, n_out, G, n_chunks, o)
    for name, call in calls.items():
        out = np.empty((B, n_out), WT.dtype)
        call(out)
        if name == "fused":
            ref[:] = out
        elif not np.array_equal(out, ref):
            raise AssertionError(f"{name}: row sums differ from the simulator's")
        t = S.timed(lambda call=call, out=out: call(out), repeats)
        t["gsynops_per_s"] = eb.n_events * n_out / t["min_s"] / 1e9
        res[name] = t
    return res


def bench_net(name, cfg, quick, log):
    sizes, T = cfg["sizes"], cfg["T"]
    # batch 128 as benchmarks/simulator.py, --quick too: snntorch's time per sample, and so the
    # ceiling, depends on the batch
    B = 128
    reps = 3 if quick else 7
    net = S.make_net(sizes, T)
    eb = S.make_input(np.random.default_rng(1), B, T, sizes[0], 0.02)
    WT = np.ascontiguousarray(net.layers[0].weight.T).ravel()
    import spikelfp

    synops = float(spikelfp.simulate(net, eb).synops.mean())          # the whole forward's, per sample
    hidden_synops = eb.n_events * sizes[1] / B
    snn = S.timed(S.run_snntorch_forward(net, eb.to_dense(np.float32)), max(2, reps // 2))
    sched = run_schedules(eb, WT, sizes[1], reps)
    best = max(sched, key=lambda k: sched[k]["gsynops_per_s"])
    rows_s = sched[best]["min_s"]
    out = {"sizes": sizes, "T": T, "batch": B, "density": 0.02, "synops_per_sample": synops,
           "hidden_synops_per_sample": hidden_synops,
           "sharing": {str(G): sharing(eb, G) for G in GROUPS},
           "snntorch_forward": snn, "schedules": sched, "best": best,
           "ceiling_vs_snntorch": snn["median_s"] / rows_s,
           "gsynops_needed_for_30x": 30 * B / snn["median_s"] * hidden_synops / 1e9}
    log(f"{name}: best schedule {best} {sched[best]['gsynops_per_s']:.1f} GSynOps/s; row adds alone "
        f"{out['ceiling_vs_snntorch']:.1f}x faster than snntorch's whole forward (30x needs "
        f"{out['gsynops_needed_for_30x']:.1f} GSynOps/s of row adds and nothing else)")
    return out


def markdown(r):
    lines = [f"# Row-add ceiling of the forward ({r['machine']['processor']}, {r['machine']['cpus']} CPUs, "
             f"numba {r['threads']} threads, torch {r['threads']} threads; {r['date']})", "",
             "The hidden layer's row adds alone (no LIF update, no spike compress, no readout), same events "
             "as `benchmarks/simulator.py` (2 % input, float32), fastest repeat; GSynOps/s count each "
             "sample's input spike x fan-out once. Every schedule gives the simulator's bits (checked in the run).",
             ""]
    for name, n in r["nets"].items():
        sched = n["schedules"]
        lines += [f"## {name}: {'-'.join(map(str, n['sizes']))}, T={n['T']}, batch {n['batch']}", "",
                  "| schedule | GSynOps/s | samples served per fetched row | max other CPU load |", "|---|---|---|---|"]
        for k, t in sched.items():
            g = k.rsplit("-", 1)[-1]
            share = f"{n['sharing'][g]:.2f}" if g in n["sharing"] else "1"
            lines.append(f"| {k}{' (best)' if k == n['best'] else ''} | {t['gsynops_per_s']:.1f} | {share} | "
                         f"{t['other_cpu_load']:.2f} |")
        lines += ["", f"snntorch forward: {n['batch'] / n['snntorch_forward']['median_s']:,.0f} samples/s. "
                  f"Row adds alone at the best schedule: **{n['ceiling_vs_snntorch']:.1f}x** snntorch's whole "
                  f"forward; a 30x forward would need {n['gsynops_needed_for_30x']:.1f} GSynOps/s of row adds with "
                  f"nothing else in the step.", ""]
    load = max(t["other_cpu_load"] for n in r["nets"].values() for t in n["schedules"].values())
    if load > S.HIGH_LOAD:
        lines += [f"**Other processes used up to {load:.2f} of the machine during a timing: figures not reliable.**",
                  ""]
    lines.append(f"Command: `python benchmarks/rowadd_ceiling.py{' --quick' if r['quick'] else ''}`")
    return "\n".join(lines) + "\n"


def main(argv=None):
    S.run_net_script(argv, __doc__, "rowadd-ceiling.json", "fewer repeats (the same batch: the ceiling depends on it)",
                     bench_net, S.NETS, markdown)


if __name__ == "__main__":
    main()
