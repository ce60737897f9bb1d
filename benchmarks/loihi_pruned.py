"""Trained for Loihi, then pruned: fixed-point accuracy of 90 %-pruned models, checked in Lava.

    python benchmarks/loihi_pruned.py --seeds 3 [--arch r256 --dataset spoken-digits]
        [--arch c16k5s2-d256 --spatial-factor 1] [--check 10] [--sg benchmarks/results/loihi-digits/bench.json]

Per seed, with the settings ``spikelfp bench lfp-vs-sg`` uses (the same parser, so the float
models are the bench's own, bit for bit):

* **LFP float**: trained in float; its Loihi fixed-point accuracy (``spikelfp.loihi.quantize``
  after training); pruned (global magnitude) and, in fixed point, without and after ``--finetune``
  epochs of float LFP on the pruned mask (``spikelfp prune --finetune``).
* **LFP fixed, scale per step / per epoch**: trained with ``--quantize loihi`` with each layer's
  weight scale and exponent recomputed every step (the default) or held through each epoch
  (``--quantize-scale epoch``); pruned, and fine-tuned in fixed point on the pruned mask.

The fine-tuned fixed-point models are written as checkpoints and exported with
``spikelfp.exporting.export_model(..., "lava", check=N)`` on seed 0 (``--check-seeds`` for more):
Lava ``fixed_pt`` must give spikelfp's fixed-point spikes bit for bit, and the full test set's
fixed-point accuracy must equal the accuracy the model had when its training ended.

``--sg``: a ``bench.json`` of ``spikelfp bench lfp-vs-sg --quantize loihi`` on the same data and
network (same seeds), whose SG models' fixed-point accuracies unpruned and 90 %-pruned (no
retraining: spikelfp fine-tunes only LFP) are quoted beside; without it the SG columns stay empty.
Writes ``<out>/loihi-pruned.json`` and ``loihi-pruned.md``.
"""

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time

from spikelfp import datasets
from spikelfp.bench import _mean_std
from spikelfp.cli import _binning, _train_config, build_parser
from spikelfp.exporting import export_model
from spikelfp.io import Checkpoint, save_checkpoint
from spikelfp.loadmeter import OtherLoad
from spikelfp.prune import prune
from spikelfp.train import TrainConfig, Trainer, evaluate


def _fit(cfg, train, test, binning, start=None):
    tr = Trainer(cfg, progress=False)
    m = tr.fit(train, test, binning=binning, start=start)
    return tr.network, m["history"]


def _sg_figures(path):
    """Per SG method: fixed-point accuracy per seed, unpruned and 90 % pruned, from a bench.json."""
    if not path:
        return {}
    with open(path) as fh:
        b = json.load(fh)
    return {m["name"]: {"fixed": m["fixed_accuracy"], "fixed_pruned": m["fixed_accuracy_pruned_90"]}
            for m in b["methods"] if m["name"].startswith("sg-")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="digits-saccade")
    ap.add_argument("--arch", default=None, help="an --arch of spikelfp train (default: its default)")
    ap.add_argument("--spatial-factor", type=int, default=None)
    ap.add_argument("--optimizer", default=None, help="LFP's --optimizer (default: spikelfp train's default)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--amount", type=float, default=0.9)
    ap.add_argument("--scope", choices=["global", "layer"], default="global",
                    help="magnitude pruning over the whole net or per layer (a conv net: global pruning "
                         "removes its small conv kernel whole)")
    ap.add_argument("--finetune", type=int, default=3)
    ap.add_argument("--check", type=int, default=10, help="Lava fixed_pt check samples (0: none)")
    ap.add_argument("--check-seeds", type=int, default=1, help="check the first K seeds' models in Lava")
    ap.add_argument("--sg", default=None, help="bench.json with the SG models' fixed-point figures")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "loihi-pruned-digits"))
    a = ap.parse_args()

    bench_argv = ["bench", "lfp-vs-sg", "--dataset", a.dataset, "--epochs", str(a.epochs)]
    bench_argv += ["--arch", a.arch] if a.arch else []
    bench_argv += ["--spatial-factor", str(a.spatial_factor)] if a.spatial_factor else []
    bench_argv += ["--optimizer", a.optimizer] if a.optimizer else []
    args = build_parser().parse_args(bench_argv)
    spec = datasets.get_spec(a.dataset)
    binning = _binning(args, spec)
    base = _train_config(args, binning)
    train, test = datasets.load(a.dataset, binning)
    bdict = binning.to_dict()
    meter = OtherLoad()
    rows = []
    t_all = time.time()
    for seed in range(a.seeds):
        lfp = TrainConfig.from_dict({**base.to_dict(), "rule": "temporal", "reward": None, "seed": seed})
        row = {"seed": seed}
        # LFP float: quantized after training, pruned, fine-tuned in float
        net, _ = _fit(lfp, train, test, bdict)
        pn = prune(net, a.amount, scope=a.scope)[0]
        ft = TrainConfig.from_dict({**lfp.to_dict(), "epochs": a.finetune, "frozen_zeros": True})
        fnet, _ = _fit(ft, train, test, bdict, start=pn)
        row["float"] = {"test_accuracy": evaluate(net, test)["accuracy"],
                        "fixed": evaluate(net, test, quantize="loihi")["accuracy"],
                        "fixed_pruned": evaluate(pn, test, quantize="loihi")["accuracy"],
                        "fixed_pruned_finetuned": evaluate(fnet, test, quantize="loihi")["accuracy"]}
        for scale in ("step", "epoch"):
            qc = TrainConfig.from_dict({**lfp.to_dict(), "quantize": "loihi", "quantize_scale": scale})
            t0 = time.time()
            qnet, hist = _fit(qc, train, test, bdict)
            qpn = prune(qnet, a.amount, scope=a.scope)[0]
            qft = TrainConfig.from_dict({**qc.to_dict(), "epochs": a.finetune, "frozen_zeros": True})
            qfnet, qhist = _fit(qft, train, test, bdict, start=qpn)
            r = {"fixed": hist[-1]["test_accuracy"],
                 "fixed_evaluated": evaluate(qnet, test, quantize="loihi")["accuracy"],
                 "fixed_pruned": evaluate(qpn, test, quantize="loihi")["accuracy"],
                 "fixed_pruned_finetuned": qhist[-1]["test_accuracy"], "seconds": time.time() - t0}
            if a.check and seed < a.check_seeds:
                with tempfile.TemporaryDirectory() as d:
                    path = os.path.join(d, "model.h5")
                    save_checkpoint(path, Checkpoint(network=qfnet, config=qft.to_dict(), history=qhist,
                                                     binning=bdict, dataset=a.dataset, seed=seed))
                    rep = export_model(path, "lava", check=a.check, seed=seed)
                r["lava"] = {"samples": rep["samples"],
                             "fixed_vs_spikelfp_fixed_agreement": rep["fixed_vs_spikelfp_fixed_agreement"],
                             "lava_fixed_accuracy": rep["fixed_accuracy"],
                             "spikelfp_fixed_accuracy": rep["spikelfp_fixed_accuracy"],
                             "full_test_set_fixed_accuracy": rep["full_test_set"]["fixed_accuracy"],
                             "synapses": rep["synapses"]}
            row[f"fixed_{scale}"] = r
        rows.append(row)
        print(json.dumps(row), flush=True)
    sg = _sg_figures(a.sg)
    os.makedirs(a.out, exist_ok=True)
    result = {"command": "python benchmarks/loihi_pruned.py " + shlex.join(sys.argv[1:]),
              "bench_settings": "spikelfp " + shlex.join(bench_argv), "dataset": a.dataset, "arch": base.arch,
              "binning": bdict, "amount": a.amount, "scope": a.scope, "finetune_epochs": a.finetune, "rows": rows,
              "sg": sg,
              "seconds": time.time() - t_all, "other_cpu_load": meter.stop(),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
              "date": time.strftime("%Y-%m-%d")}
    with open(os.path.join(a.out, "loihi-pruned.json"), "w") as fh:
        json.dump(result, fh, indent=1)
    md = markdown(result)
    with open(os.path.join(a.out, "loihi-pruned.md"), "w") as fh:
        fh.write(md)
    print(md)


def _fmt(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return ""
    m, s = _mean_std(xs)
    return f"{m:.4f} ± {s:.4f}"


def markdown(r) -> str:
    rows = r["rows"]
    pct = f"{r['amount']:.0%}"
    lines = [f"Loihi fixed-point accuracy, unpruned and {pct} pruned ({r.get('scope', 'global')} magnitude) on "
             f"{r['dataset']} "
             f"({r['arch']}), mean ± std over {len(rows)} seeds; fine-tuning {r['finetune_epochs']} epochs "
             "on the pruned mask (LFP only)", "",
             f"| model | fixed point | {pct} pruned | {pct} pruned + fine-tuned |", "|---|---|---|---|",
             f"| LFP float → fixed | {_fmt([x['float']['fixed'] for x in rows])} | "
             f"{_fmt([x['float']['fixed_pruned'] for x in rows])} | "
             f"{_fmt([x['float']['fixed_pruned_finetuned'] for x in rows])} |"]
    for scale, label in (("step", "scale recomputed each step"), ("epoch", "scale held per epoch")):
        k = f"fixed_{scale}"
        lines.append(f"| LFP trained in fixed point, {label} | {_fmt([x[k]['fixed'] for x in rows])} | "
                     f"{_fmt([x[k]['fixed_pruned'] for x in rows])} | "
                     f"{_fmt([x[k]['fixed_pruned_finetuned'] for x in rows])} |")
    for name, s in r["sg"].items():
        lines.append(f"| {name} float → fixed (bench.json; pruned: global magnitude) | {_fmt(s['fixed'])} | "
                     f"{_fmt(s['fixed_pruned'])} | |")
    lines.append("")
    for scale in ("step", "epoch"):
        for x in rows:
            lv = x[f"fixed_{scale}"].get("lava")
            if lv:
                lines.append(f"Lava fixed_pt, seed {x['seed']}, scale per {scale}, pruned + fine-tuned: "
                             f"{lv['samples']} samples, spike agreement with spikelfp's fixed point "
                             f"{lv['fixed_vs_spikelfp_fixed_agreement']['overall']:.4f}, "
                             f"accuracy {lv['lava_fixed_accuracy']:.4f} "
                             f"(spikelfp {lv['spikelfp_fixed_accuracy']:.4f}); full test set "
                             f"{lv['full_test_set_fixed_accuracy']:.4f} against "
                             f"{x[f'fixed_{scale}']['fixed_pruned_finetuned']:.4f} at the end of training; "
                             f"{lv['synapses']['lava']['fixed']['synapses']} synapses in Lava "
                             f"({', '.join(lv['synapses']['lava']['fixed']['connections'])}) of "
                             f"{lv['synapses']['nonzero']} nonzero weights, {lv['synapses']['weights']} before pruning")
    load = r["other_cpu_load"]
    lines += ["", f"{r['seconds']:.0f} s on {r['machine']}; other processes' CPU load {load:.2f} of the machine"
              + (" (high: times unreliable; accuracies are exact)" if load > 0.25 else ""), "",
              f"Command: `{r['command']}` ({r['date']}; settings as `{r['bench_settings']}`)", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
