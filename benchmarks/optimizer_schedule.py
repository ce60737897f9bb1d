"""Adam first, then NeuronAdam: does a schedule keep Adam's accuracy and the |W| factor's sparsity?

    python benchmarks/optimizer_schedule.py --dataset spoken-digits --seed 0 --adam-epochs 15,10

Each row trains ``k`` epochs with Adam, then ``20 - k`` with ``neuron-adam`` from that network
(``Trainer.fit(start=...)``), and reports test accuracy and the accuracy after 90 % / 95 % global
magnitude pruning (no retraining). Writes ``benchmarks/results/optimizer-schedule-<dataset>.json``
and prints a markdown table; docs/rules.md quotes it.
"""

import argparse
import json
import os
import time

from spikelfp import datasets
from spikelfp.prune import prune
from spikelfp.train import TrainConfig, Trainer, evaluate


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="digits-saccade")
    ap.add_argument("--arch", default="d256")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--adam-epochs", default="15,10", help="comma-separated Adam epochs before the switch")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    a = ap.parse_args()
    train, test = datasets.load(a.dataset)
    rows = []
    for k in [int(v) for v in a.adam_epochs.split(",")]:
        t0 = time.time()
        base = dict(seed=a.seed, arch=a.arch, dataset=a.dataset)
        tr = Trainer(TrainConfig(epochs=k, optimizer="adam", **base), progress=False)
        tr.fit(train, test)
        net = tr.network
        if k < a.epochs:
            tr2 = Trainer(TrainConfig(epochs=a.epochs - k, optimizer="neuron-adam", **base), progress=False)
            tr2.fit(train, test, start=net)
            net = tr2.network
        row = {"adam_epochs": k, "neuron_adam_epochs": a.epochs - k, "test_accuracy": evaluate(net, test)["accuracy"],
               "pruned_90": evaluate(prune(net, 0.9)[0], test)["accuracy"],
               "pruned_95": evaluate(prune(net, 0.95)[0], test)["accuracy"], "seconds": time.time() - t0}
        rows.append(row)
        print(json.dumps(row), flush=True)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, f"optimizer-schedule-{a.dataset}.json"), "w") as fh:
        json.dump({"dataset": a.dataset, "arch": a.arch, "seed": a.seed, "rows": rows}, fh, indent=1)
    print("| Adam epochs | NeuronAdam epochs | test acc. | 90 % pruned | 95 % pruned |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['adam_epochs']} | {r['neuron_adam_epochs']} | {r['test_accuracy']:.4f} | {r['pruned_90']:.3f} | "
              f"{r['pruned_95']:.3f} |")


if __name__ == "__main__":
    main()
