"""``spikelfp bench lfp-vs-sg``: LFP against surrogate-gradient BPTT on the same network and data.

Every method trains the same architecture from the same initial weights (one seed draws the init
and the batch order for all of them), on the same batches, for the same epochs; timings come from
the same run on the same machine, with the thread counts stated. Reported per method, mean and
standard deviation over seeds:

* test accuracy (last epoch), seconds of training per epoch, training samples per second;
* spikes and SynOps per inference (test set);
* sparsity of |W| (all layers pooled): Gini index and the fraction of |w| < 1e-3;
* pruning curves, the paper's protocol (:mod:`spikelfp.prune`; nothing is retrained): accuracy
  after removing 0, 5, ..., 100 % of the weights by magnitude and by LFP relevance, each ranked
  globally and per weight matrix; spikes and SynOps per inference (live synapses only) along the
  same curves. The main table quotes global magnitude pruning at 50/70/90/95 %.

Every trained model (LFP and SG) is saved under ``models/`` as a normal checkpoint, so that
``spikelfp prune``, ``eval`` and ``export`` take it.
"""

from __future__ import annotations

import math
import os
import platform
import time

import numpy as np

from .io import Checkpoint, save_checkpoint, write_json
from .loadmeter import HIGH_LOAD
from .prune import prune, relevance_scores
from .train import TrainConfig, Trainer, evaluate

METHODS = ("lfp-spike-count", "lfp-temporal", "sg-fast-sigmoid", "sg-atan")
LOIHI_METHOD = "lfp-temporal-loihi"      # with --quantize loihi: the temporal rule trained in fixed point
PRUNE_FRACTIONS = (0.5, 0.7, 0.9, 0.95)                          # the main table's columns
PRUNE_CURVE = tuple(round(0.05 * k, 2) for k in range(21))       # 0, 0.05, ..., 1.0
PRUNE_KINDS = (("magnitude", "global"), ("magnitude", "layer"), ("relevance", "global"), ("relevance", "layer"))
RELEVANCE_SAMPLES = 512


def gini(values: np.ndarray) -> float:
    """Gini index of non-negative values (0: all equal, -> 1: all mass in one entry)."""
    x = np.sort(np.abs(np.asarray(values, dtype=np.float64)).ravel())
    n = x.size
    if n == 0 or x.sum() == 0:
        return 0.0
    return float((2.0 * np.sum(np.arange(1, n + 1) * x)) / (n * x.sum()) - (n + 1.0) / n)


def pruning_curves(net, train, test, cfg: TrainConfig, fractions=PRUNE_CURVE) -> dict:
    """``{"<criterion>-<scope>": {"accuracy": [...], "spikes_per_sample": [...], "synops_per_sample": [...]}}``
    over ``fractions``, for every criterion and scope (relevance over RELEVANCE_SAMPLES training
    samples, the LFP rule of ``cfg``, seeded by ``cfg.seed``)."""
    rel = relevance_scores(net, train, rule=cfg.rule, n_samples=RELEVANCE_SAMPLES, seed=cfg.seed,
                           contrib=cfg.contrib, form=cfg.form, eps=cfg.eps)
    out = {}
    for criterion, scope in PRUNE_KINDS:
        rows = {"accuracy": [], "spikes_per_sample": [], "synops_per_sample": []}
        for f in fractions:
            pruned, _ = prune(net, f, criterion=criterion, scope=scope,
                              scores=rel if criterion == "relevance" else None)
            ev = evaluate(pruned, test)
            rows["accuracy"].append(ev["accuracy"])
            rows["spikes_per_sample"].append(ev["spikes_per_sample"])
            rows["synops_per_sample"].append(ev["synops_per_sample"])
        out[f"{criterion}-{scope}"] = rows
    return out


def _threads() -> int:
    """One thread count for both sides of every comparison: numba's (torch is given the same)."""
    import numba

    return int(numba.get_num_threads())


def _mean_std(xs):
    a = np.asarray(xs, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def _sg_optimizer(cfg: TrainConfig) -> str:
    """The optimizer the SG baseline runs beside an LFP config: SGD with SGD, Adam otherwise."""
    return cfg.optimizer if cfg.optimizer == "sgd" else "adam"


def _train_one(method, train, test, cfg: TrainConfig, binning, sg_lr, progress, log):
    t0 = time.perf_counter()
    c = cfg
    loihi = cfg.quantize                 # the bench's --quantize: every model is also measured in fixed point
    if method.startswith("lfp-"):
        rule = "temporal" if method == LOIHI_METHOD else method[len("lfp-"):]
        loihi_run = method == LOIHI_METHOD
        c = TrainConfig.from_dict({**cfg.to_dict(), "rule": rule, "reward": None,
                                   "quantize": cfg.quantize if loihi_run else None,
                                   "weight_bits": cfg.weight_bits if loihi_run else 8})
        tr = Trainer(c, progress=progress)
        m = tr.fit(train, test, binning=binning)
        net, hist, other_load = tr.network, m["history"], m["other_cpu_load"]
    else:
        from spikelfp.backends.snntorch import train_sg

        surrogate = method[len("sg-"):]
        r = train_sg(train, test, arch=cfg.arch, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=sg_lr,
                     optimizer=_sg_optimizer(cfg), momentum=cfg.momentum,
                     schedule=cfg.schedule,
                     surrogate=surrogate, beta=cfg.beta, threshold=cfg.threshold, reset=cfg.reset, bias=cfg.bias,
                     init_gain=cfg.init_gain, init_min_rate=cfg.init_min_rate, seed=cfg.seed, threads=_threads(),
                     progress=progress)
        net, hist, other_load = r["network"], r["history"], r["other_cpu_load"]
    wall = time.perf_counter() - t0
    fixed = {}
    if loihi:                            # float models quantized after training; the loihi one as it trained
        from spikelfp.prune import prune

        bits = cfg.weight_bits
        fixed = {"fixed_accuracy": evaluate(net, test, quantize=loihi, weight_bits=bits)["accuracy"],
                 "fixed_accuracy_pruned_90": evaluate(prune(net, 0.9)[0], test, quantize=loihi,
                                                      weight_bits=bits)["accuracy"]}
    final = evaluate(net, test)
    if method == LOIHI_METHOD:         # measured as it trained (its float network's accuracy kept beside)
        final = {**final, "accuracy": fixed["fixed_accuracy"], "float_accuracy": final["accuracy"]}
    weights = np.concatenate([w.ravel() for la in net.layers for w in la.weight_arrays()])
    curves = pruning_curves(net, train, test, c)    # SG models: relevance by the bench's own LFP rule
    mg = curves["magnitude-global"]["accuracy"]
    pruned = {str(f): mg[PRUNE_CURVE.index(f)] for f in PRUNE_FRACTIONS}
    epoch_s = float(np.mean([h["train_seconds"] for h in hist]))
    log(f"  {method} seed {cfg.seed}: test {final['accuracy']:.4f}, {epoch_s:.2f} s/epoch, "
        f"pruned 90% {pruned['0.9']:.4f}")
    if other_load is not None and other_load > HIGH_LOAD:
        log(f"  warning: other processes used {other_load:.0%} of the CPUs during the epochs of {method}: its "
            "epoch time is indicative only")
    return {"seed": cfg.seed, "test_accuracy": final["accuracy"], "test_tie_rate": final["tie_rate"],
            "epoch_seconds": epoch_s, "other_cpu_load": other_load,
            "samples_per_s": len(train) / epoch_s, "wall_s": wall,
            "spikes_per_sample": final["spikes_per_sample"], "synops_per_sample": final["synops_per_sample"],
            "gini": gini(weights), "frac_below_1e-3": float(np.mean(np.abs(weights) < 1e-3)),
            "pruned_accuracy": pruned, "pruning_curves": curves,
            "accuracy_per_epoch": [h["test_accuracy"] for h in hist],
            "abs_weights": np.abs(weights), "network": net, "history": hist, **fixed,
            "config": {**c.to_dict(), "method": method, **({"sg_lr": sg_lr} if method.startswith("sg-") else {})}}


def _train_one_on_ray(method, train, test, cfg_dict, binning, sg_lr):
    """One (method, seed) run as a Ray task on one CPU (numba and torch on one thread)."""
    import numba

    numba.set_num_threads(1)
    return _train_one(method, train, test, TrainConfig.from_dict(cfg_dict), binning, sg_lr, False, print)


def run_bench(train, test, cfg: TrainConfig, *, seeds=3, methods=METHODS, sg_lr=2e-3, binning=None,
              out=None, progress=False, log=None, ray_address: str | None = None, use_ray: bool = False,
              command: str | None = None) -> dict:
    """Train every method for every seed; returns (and writes to ``out``) the bench report.

    ``command``: the command line that ran it (the CLI passes its own), kept in the report and
    printed under the table, so that every result folder says how to reproduce it.

    ``use_ray``: run the methods x seeds as Ray tasks, one CPU each (local Ray, or the cluster at
    ``ray_address``); results come back in the same order. Each run then uses one thread, so its
    epoch times are one-thread times (the report says so)."""
    import numba

    log = log or (lambda msg: None)
    methods = list(methods)
    if cfg.quantize and LOIHI_METHOD not in methods:
        methods.append(LOIHI_METHOD)
    for m in methods:
        if m not in METHODS and not (m == LOIHI_METHOD and cfg.quantize):
            raise ValueError(f"unknown method {m!r}; choose from {', '.join(METHODS)}"
                             + (f" (and {LOIHI_METHOD} with --quantize loihi)" if m == LOIHI_METHOD else ""))
    runs = {m: [] for m in methods}
    load_before = os.getloadavg()[0]
    jobs = [(m, TrainConfig.from_dict({**cfg.to_dict(), "seed": cfg.seed + k}))
            for k in range(int(seeds)) for m in methods]
    if use_ray or ray_address:
        from .distributed import _ray, init_ray, shutdown_ray

        ray, _ = _ray()
        started = not ray.is_initialized()
        try:
            if started:
                init_ray(ray, address=ray_address)
            task = ray.remote(num_cpus=1, max_retries=0)(_train_one_on_ray)
            tr, te = ray.put(train), ray.put(test)
            log(f"running {len(jobs)} runs as Ray tasks (one CPU each)")
            results = ray.get([task.remote(m, tr, te, c.to_dict(), binning, sg_lr) for m, c in jobs])
        finally:
            if started:
                shutdown_ray(ray)
        for (m, c), r in zip(jobs, results):
            log(f"  {m} seed {c.seed}: test {r['test_accuracy']:.4f}, {r['epoch_seconds']:.2f} s/epoch (one thread)")
            runs[m].append(r)
    else:
        for m, c in jobs:
            runs[m].append(_train_one(m, train, test, c, binning, sg_lr, progress, log))
    report_methods = []
    for m in methods:
        rs = runs[m]
        acc_mean, acc_std = _mean_std([r["test_accuracy"] for r in rs])
        es_mean, es_std = _mean_std([r["epoch_seconds"] for r in rs])
        entry = {
            "name": m,
            "test_accuracy": [r["test_accuracy"] for r in rs],
            "test_accuracy_mean": acc_mean, "test_accuracy_std": acc_std,
            "test_tie_rate_mean": float(np.mean([r["test_tie_rate"] for r in rs])),
            "epoch_seconds": [r["epoch_seconds"] for r in rs],
            "epoch_seconds_mean": es_mean, "epoch_seconds_std": es_std,
            # other processes' share of all CPUs over a seed's timed epochs, the worst seed (None: not measured)
            "max_other_cpu_load": max((r["other_cpu_load"] for r in rs if r.get("other_cpu_load") is not None),
                                      default=None),
            "samples_per_s": float(np.mean([r["samples_per_s"] for r in rs])),
            "spikes_per_sample": float(np.mean([r["spikes_per_sample"] for r in rs])),
            "synops_per_sample": float(np.mean([r["synops_per_sample"] for r in rs])),
            "gini": float(np.mean([r["gini"] for r in rs])),
            "frac_below_1e-3": float(np.mean([r["frac_below_1e-3"] for r in rs])),
            "pruned_accuracy": {str(f): float(np.mean([r["pruned_accuracy"][str(f)] for r in rs]))
                                for f in PRUNE_FRACTIONS},
            "pruned_accuracy_std": {str(f): _mean_std([r["pruned_accuracy"][str(f)] for r in rs])[1]
                                    for f in PRUNE_FRACTIONS},
            "accuracy_per_epoch": [r["accuracy_per_epoch"] for r in rs],
            "seeds": [r["seed"] for r in rs],
            "pruning_curves": _curve_stats(rs),
        }
        if "fixed_accuracy" in rs[0]:
            for key in ("fixed_accuracy", "fixed_accuracy_pruned_90"):
                entry[key] = [r[key] for r in rs]
                entry[f"{key}_mean"], entry[f"{key}_std"] = _mean_std(entry[key])
        report_methods.append(entry)
    by = {e["name"]: e for e in report_methods}
    sg = [by[m] for m in ("sg-fast-sigmoid", "sg-atan") if m in by]
    speed = {}
    if sg:
        best_sg = max(sg, key=lambda e: e["test_accuracy_mean"])
        fast_sg = min(e["epoch_seconds_mean"] for e in sg)   # the faster SG run is the fair reference
        for m in ("lfp-spike-count", "lfp-temporal"):
            if m in by:
                speed[m] = {"speedup_vs_sg_per_epoch": fast_sg / by[m]["epoch_seconds_mean"],
                            "accuracy_minus_best_sg": by[m]["test_accuracy_mean"] - best_sg["test_accuracy_mean"]}
    report = {
        "bench": "lfp-vs-sg", "command": command, "dataset": cfg.dataset, "epochs": cfg.epochs, "seeds": int(seeds),
        "architecture": [train.n_in, *(cfg.hidden or [cfg.arch]), train.n_classes], "arch": cfg.arch,
        "batch_size": cfg.batch_size,
        "lfp": {"optimizer": cfg.optimizer, "lr": cfg.lr, "switch": cfg.switch, "schedule": cfg.schedule,
                "reward": cfg.reward, "tau": cfg.tau, "form": cfg.form,
                "contrib": cfg.contrib,
                "secant": cfg.secant, "bias": cfg.bias, "dtype": cfg.dtype},
        "sg": {"optimizer": _sg_optimizer(cfg), "lr": sg_lr, "schedule": cfg.schedule,
               "loss": "ce_rate_loss"},
        "neuron": {"beta": cfg.beta, "threshold": cfg.threshold, "reset": cfg.reset},
        "binning": binning, "methods": report_methods, "comparison": speed, "quantize": cfg.quantize,
        "weight_bits": cfg.weight_bits if cfg.quantize else None,
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(),
                    "numba_threads": 1 if (use_ray or ray_address) else numba.get_num_threads(),
                    "torch_threads": 1 if (use_ray or ray_address) else _threads(),
                    "ray": {"address": ray_address or "local"} if (use_ray or ray_address) else None,
                    "blas_threads_in_lfp": 1,
                    "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]}},
    }
    if out:
        os.makedirs(os.path.join(out, "models"), exist_ok=True)
        for m, rs in runs.items():        # every trained model, for spikelfp prune / eval / export
            for r in rs:
                save_checkpoint(os.path.join(out, "models", f"{m}-seed{r['seed']}.h5"), Checkpoint(
                    network=r["network"], config=r["config"], history=r["history"], binning=binning,
                    dataset=cfg.dataset, seed=r["seed"]))
        report["models"] = {m: [os.path.join("models", f"{m}-seed{r['seed']}.h5") for r in rs]
                            for m, rs in runs.items()}
        write_json(os.path.join(out, "bench.json"), report)
        with open(os.path.join(out, "bench.md"), "w") as fh:
            fh.write(markdown_table(report))
        write_plots(report, runs, out)
    return report


def _curve_stats(rs: list) -> dict:
    """Mean and std over seeds of every pruning curve (accuracy), mean spikes and SynOps."""
    out = {}
    for kind in rs[0]["pruning_curves"]:
        acc = np.array([r["pruning_curves"][kind]["accuracy"] for r in rs])
        out[kind] = {"fractions": list(PRUNE_CURVE), "accuracy_mean": acc.mean(0).tolist(),
                     "accuracy_std": (acc.std(0, ddof=1) if len(rs) > 1 else np.zeros(acc.shape[1])).tolist(),
                     "spikes_per_sample": np.mean([r["pruning_curves"][kind]["spikes_per_sample"] for r in rs],
                                                  axis=0).tolist(),
                     "synops_per_sample": np.mean([r["pruning_curves"][kind]["synops_per_sample"] for r in rs],
                                                  axis=0).tolist()}
    return out


CURVE_COLUMNS = (0.5, 0.7, 0.8, 0.9, 0.95)


def pruning_table(r: dict) -> str:
    """Accuracy after pruning, every criterion and scope, mean ± std over seeds; then spikes and
    SynOps per inference unpruned and at 90 % (global magnitude, live synapses)."""
    cols = ["method", "criterion", "scope"] + [f"pruned {f:.0%}" for f in CURVE_COLUMNS]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for e in r["methods"]:
        for kind, c in e.get("pruning_curves", {}).items():
            crit, scope = kind.split("-")
            at = [c["fractions"].index(f) for f in CURVE_COLUMNS]
            cells = [f"{c['accuracy_mean'][k]:.4f} ± {c['accuracy_std'][k]:.4f}" for k in at]
            lines.append("| " + " | ".join([e["name"], crit, scope, *cells]) + " |")
    energy = ["| method | spikes / inference | at 90 % pruned | SynOps / inference | at 90 % pruned |",
              "|---|---|---|---|---|"]
    for e in r["methods"]:
        c = e.get("pruning_curves", {}).get("magnitude-global")
        if c:
            k = c["fractions"].index(0.9)
            energy.append(f"| {e['name']} | {c['spikes_per_sample'][0]:.0f} | {c['spikes_per_sample'][k]:.0f} | "
                          f"{c['synops_per_sample'][0]:.3g} | {c['synops_per_sample'][k]:.3g} |")
    return ("Pruning without retraining (the paper's protocol; curves in 5 % steps in bench.json and "
            "pruning_global.png / pruning_layer.png)\n\n" + "\n".join(lines)
            + "\n\nEnergy proxies per test inference, unpruned and 90 % pruned (global magnitude)\n\n"
            + "\n".join(energy) + "\n")


def markdown_table(r: dict) -> str:
    a = r["architecture"]
    shape = f"{a[0]}-{r['arch']}-{a[-1]}" if r.get("arch") else "-".join(map(str, a))
    head = (f"LFP vs surrogate gradients on {r['dataset']} ({shape}, "
            f"{r['epochs']} epochs, batch {r['batch_size']}, {r['seeds']} seeds; mean ± std; "
            f"numba {r['machine']['numba_threads']} threads, torch {r['machine']['torch_threads']} threads)\n\n")
    cols = ["method", "test accuracy", "test ties", "s / epoch", "samples/s", "spikes / inference",
            "SynOps / inference", "Gini \\|W\\|", "\\|w\\| < 1e-3",       # escaped: a bare | splits a cell
            "pruned 50%", "pruned 70%", "pruned 90%", "pruned 95%"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for e in r["methods"]:
        p = e["pruned_accuracy"]
        lines.append("| " + " | ".join([
            e["name"], f"{e['test_accuracy_mean']:.4f} ± {e['test_accuracy_std']:.4f}",
            f"{e.get('test_tie_rate_mean', float('nan')):.3f}",
            f"{e['epoch_seconds_mean']:.2f} ± {e['epoch_seconds_std']:.2f}", f"{e['samples_per_s']:.0f}",
            f"{e['spikes_per_sample']:.0f}", f"{e['synops_per_sample']:.3g}", f"{e['gini']:.3f}",
            f"{e['frac_below_1e-3']:.3f}", f"{p['0.5']:.4f}", f"{p['0.7']:.4f}", f"{p['0.9']:.4f}",
            f"{p['0.95']:.4f}"]) + " |")
    tail = []
    for m, c in r.get("comparison", {}).items():
        tail.append(f"- {m}: {c['speedup_vs_sg_per_epoch']:.2f}× faster per epoch than the faster SG run; "
                    f"accuracy {c['accuracy_minus_best_sg'] * 100:+.2f} pp vs the better SG surrogate")
    load = r["machine"].get("load_average_1min")
    spread = max((e["epoch_seconds_std"] / e["epoch_seconds_mean"] for e in r["methods"]
                  if len(e.get("epoch_seconds", [])) > 1 and e["epoch_seconds_mean"] > 0), default=0.0)
    if load:
        busy = max(load["before"], load["after"]) - r["machine"]["numba_threads"] > 0.5 or spread > 0.25
        tail.append(f"- machine load (1-min average) {load['before']:.2f} before, {load['after']:.2f} after; "
                    f"epoch times vary up to ±{spread * 100:.0f} % between seeds"
                    + (": **other work was running; timings and speed ratios are not reliable**" if busy else ""))
    worst = {e["name"]: e["max_other_cpu_load"] for e in r["methods"] if e.get("max_other_cpu_load") is not None}
    if worst:
        high = {m: x for m, x in worst.items() if x > HIGH_LOAD}
        tail.append("- other processes' CPU share during the timed epochs (worst seed): "
                    + ", ".join(f"{m} {x:.0%}" for m, x in worst.items())
                    + (f": **above {HIGH_LOAD:.0%} for {', '.join(high)}; those epoch times and speed ratios are "
                       "indicative only**" if high else ""))
    if r.get("command"):
        tail.append(f"\nCommand: `{r['command']}` ({r['machine']['processor']}, {r['machine']['cpus']} CPUs)")
    curves = pruning_table(r) + "\n" if any(e.get("pruning_curves") for e in r["methods"]) else ""
    return head + "\n".join(lines) + "\n\n" + fixed_table(r) + curves + "\n".join(tail) + "\n"


def fixed_table(r: dict) -> str:
    """With --quantize loihi: every model's accuracy in Loihi fixed point (float models quantized
    after training, the lfp-temporal-loihi model as it trained), whole and 90 %-pruned."""
    rows = [e for e in r["methods"] if "fixed_accuracy_mean" in e]
    if not rows:
        return ""
    bits = r.get("weight_bits") or 8
    lines = [f"Loihi fixed point, {bits}-bit weights (spikelfp.loihi, bit-exact with Lava fixed_pt; mean ± std "
             f"over {r['seeds']} seeds)",
             "", "| method | trained in | test accuracy (as trained) | fixed point | change "
                 "| fixed point, 90 % pruned |",
             "|---|---|---|---|---|---|"]
    for e in rows:
        loihi = e["name"] == LOIHI_METHOD
        lines.append(f"| {e['name']} | {'fixed point' if loihi else 'float'} | {e['test_accuracy_mean']:.4f} | "
                     f"{e['fixed_accuracy_mean']:.4f} ± {e['fixed_accuracy_std']:.4f} | "
                     f"{(e['fixed_accuracy_mean'] - e['test_accuracy_mean']) * 100:+.2f} pp | "
                     f"{e['fixed_accuracy_pruned_90_mean']:.4f} ± {e['fixed_accuracy_pruned_90_std']:.4f} |")
    return "\n".join(lines) + "\n\n"


def write_plots(r: dict, runs: dict, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    b = r.get("binning") or {}
    setting = (f"{r['dataset']}, {r['lfp'].get('dtype', 'float64')}, T={b.get('n_bins', '?')} x "
               f"{b.get('bin_us', 0) / 1000:g} ms")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for e in r["methods"]:
        curves = np.array(e["accuracy_per_epoch"])
        ep = np.arange(1, curves.shape[1] + 1)
        ax.plot(ep, curves.mean(0), label=e["name"])
        if curves.shape[0] > 1:
            sd = curves.std(0, ddof=1)
            ax.fill_between(ep, curves.mean(0) - sd, curves.mean(0) + sd, alpha=0.2)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy")
    n = len(r["seeds"]) if isinstance(r.get("seeds"), list) else r.get("seeds")
    ax.set_title(f"{setting}\nmean over {n} seeds, band: ± 1 std")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "accuracy_per_epoch.png"), dpi=120)
    plt.close(fig)

    for scope in ("global", "layer"):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for k, e in enumerate(r["methods"]):
            for criterion, style in (("magnitude", "-"), ("relevance", "--")):
                c = e.get("pruning_curves", {}).get(f"{criterion}-{scope}")
                if not c:
                    continue
                fr, mu, sd = (np.asarray(c[key]) for key in ("fractions", "accuracy_mean", "accuracy_std"))
                ax.plot(fr * 100, mu, style, color=f"C{k}", label=f"{e['name']}, {criterion}")
                ax.fill_between(fr * 100, mu - sd, mu + sd, color=f"C{k}", alpha=0.15)
        ax.set_xlabel(f"weights pruned [%] ({'all layers ranked together' if scope == 'global' else 'per matrix'})")
        ax.set_ylabel("test accuracy")
        ax.set_title(f"{setting}\n{scope} pruning without retraining (mean ± std over seeds)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"pruning_{scope}.png"), dpi=120)
        plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for m, rs in runs.items():
        w = rs[0]["abs_weights"]
        bins = np.logspace(-6, math.log10(max(w.max(), 1e-5)), 60)
        ax.hist(np.clip(w, 1e-6, None), bins=bins, histtype="step", label=m)
    ax.set_xscale("log")
    ax.set_xlabel("|w| (first seed, all layers; first bin: every |w| < 1e-6, zeros included)", fontsize=8)
    ax.set_ylabel("count")
    ax.set_title(f"{setting}\nweight magnitudes")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "weights.png"), dpi=120)
    plt.close(fig)
