"""Command line: ``spikelfp train | eval | prune | export | bench | sweep | plot | datasets | info``

Choices come from the registries (datasets, rules, rewards, optimizers). Every command takes
``--seed`` where randomness is involved and ``--json PATH`` to write its figures as JSON.
Bad input exits with status 2 and one line saying what is wrong; no existing file is touched.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import stat
import sys
import time

import numpy as np

EXIT_USAGE = 2


class CLIError(Exception):
    pass


def _hidden(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in str(text).replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden takes sizes like 256 or 256,128 (got {text!r})") from None
    if not sizes:
        raise argparse.ArgumentTypeError("--hidden needs at least one layer size, e.g. 256 or 256,128")
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError("hidden sizes must be >= 1")
    return sizes


def network_string(n_in, arch: str, n_out) -> str:
    """``700-r256-20``: input size, the hidden layers' spec, output size."""
    return "-".join(str(p) for p in (n_in, arch, n_out) if p != "")


def _arch(text: str) -> str:
    from spikelfp.arch import ArchError, format_arch, parse_arch

    try:
        return format_arch(parse_arch(text))
    except ArchError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _number(kind, ok, expect: str):
    """An argparse type: ``kind(text)`` that must satisfy ``ok``, else an error saying ``expect``."""
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expect}, got {text!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"expected {expect}, got {text!r}")
        return v
    return parse


def _positive(kind):
    return _number(kind, lambda v: v > 0 and math.isfinite(v), "a finite value > 0")


_seed = _number(int, lambda v: 0 <= v < 2**63, "a whole number in [0, 2^63) (--seed)")
_rate = _number(float, lambda v: 0.0 <= v < 1.0, "a rate in [0, 1) spikes per neuron and step")
_fraction = _number(float, lambda v: 0.0 <= v <= 1.0, "a fraction in [0, 1], e.g. 0.9")


def build_parser() -> argparse.ArgumentParser:
    from spikelfp import __version__
    from spikelfp.bench import METHODS
    from spikelfp.datasets import DATASETS
    from spikelfp.feedback import REWARDS, RULES
    from spikelfp.network import RESETS
    from spikelfp.optim import OPTIMIZERS, SCHEDULES
    from spikelfp.presets import PRESETS

    ap = argparse.ArgumentParser(prog="spikelfp",
                                 description="Layer-wise Feedback Propagation for spiking LIF networks.")
    ap.add_argument("--version", action="version", version=f"spikelfp {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p, seed=True):
        p.add_argument("--json", metavar="PATH", help="also write the figures to PATH (JSON)")
        if seed:
            p.add_argument("--seed", type=_seed, default=0, help="random seed, >= 0 (default 0)")
        p.add_argument("--no-progress", action="store_true", help="no progress bars")

    def data_opts(p):
        p.add_argument("--dataset",
                       help=f"dataset name ({', '.join(DATASETS)}) or the path of a recordings .h5/.npz "
                            "(default digits-saccade; eval and export: the model's own)")
        p.add_argument("--offline", action="store_true",
                       help="never download: a missing dataset says which archive to place where")
        p.add_argument("--data-root", metavar="DIR",
                       help="dataset cache folder (default $SPIKELFP_DATA or ~/.cache/spikelfp)")

    def binning_opts(p):
        p.add_argument("--bin-ms", type=_positive(float),
                       help="time bin [ms] (default: the dataset's; `spikelfp datasets` lists them)")
        p.add_argument("--steps", "-T", type=_positive(int), dest="n_bins",
                       help="time steps T (default: the dataset's, e.g. 30 for digits-saccade, 100 for shd); "
                            "without --bin-ms the dataset's window is kept")
        p.add_argument("--spatial-factor", type=_positive(int),
                       help="spatial downsampling of camera datasets (default: the dataset's)")
        p.add_argument("--merge-polarity", action="store_true", help="one channel for both polarities")

    def train_opts(t):
        data_opts(t)
        binning_opts(t)
        t.add_argument("--preset", choices=sorted(PRESETS),
                       help="named settings (paper-mlp: the paper's LIF MLP); explicit options override it")
        shape = t.add_mutually_exclusive_group()
        shape.add_argument("--hidden", type=_hidden, default=[256],
                           help="dense hidden sizes, e.g. 256 or 256,128 (default 256; shorthand of --arch d256)")
        shape.add_argument("--arch", type=_arch, default=None,
                           help="hidden layers as a spec (docs/layers.md): d<N> dense, r<N> recurrent, "
                                "c<C>k<K>[s<S>][p<P>] conv, p<K> spike pooling, joined by '-', e.g. r256 or "
                                "c16k5s2-p2-d128; the output layer is added (default d256)")
        t.add_argument("--rule", choices=sorted(RULES), help="feedback rule (default temporal)")
        t.add_argument("--reward", choices=sorted(REWARDS),
                       help="output reward (default ce: cross-entropy on spike counts; the temporal rule with "
                            "--reset subtract defaults to rate, the paper's)")
        t.add_argument("--reward-tau", "--tau", dest="tau", type=_positive(float), default=1.0,
                       help="ce/softmax reward temperature [spikes] (default 1: the counts are the logits); "
                            "--tau is its old name. Not a membrane time constant: that is --tau-mem")
        t.add_argument("--form", choices=["carry", "paper"], default="carry",
                       help="temporal rule's denominator: carry (default) or paper (lfprop 1.0.0's)")
        t.add_argument("--contrib", choices=["graded", "spikes"], default="graded",
                       help="reward below a dense layer, both rules: graded (default; a silent neuron gets its "
                            "membrane's fraction of threshold times a spike's worth) or spikes (spiking neurons "
                            "only, the paper's)")
        t.add_argument("--secant", choices=["bounded", "signed"], default="bounded",
                       help="spike-count rule's secant a/z: bounded by 1/theta (default) or signed (first version)")
        t.add_argument("--eps", type=_number(float, lambda v: 0 < v <= 1, "a stabiliser in (0, 1]"), default=1e-6,
                       help="feedback stabiliser, in (0, 1] (default 1e-6)")
        t.add_argument("--no-weight-scaling", action="store_true", help="drop the |W| factor of the update")
        t.add_argument("--epochs", type=_positive(int), default=20, help="epochs (default 20)")
        t.add_argument("--batch-size", type=_positive(int), default=32, help="batch size (default 32)")
        t.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="two-phase",
                       help="optimizer (default two-phase: neuron-adam for the first --switch of the run, then adam "
                            "with a cosine-decaying rate; adam: the previous default; docs/rules.md)")
        t.add_argument("--lr", type=_positive(float), default=1e-3, help="learning rate (default 1e-3)")
        t.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
        t.add_argument("--switch", type=_number(float, lambda v: 0.0 <= v <= 1.0, "a fraction in [0, 1]"),
                       default=0.5, help="two-phase: fraction of the run's steps with neuron-adam before adam "
                                         "(default 0.5)")
        t.add_argument("--schedule", choices=list(SCHEDULES), default="constant",
                       help="learning-rate schedule: constant (default), onecycle (warm-up, then cosine decay) or "
                            "cosine (cosine decay from --lr, no warm-up); bench gives the SG baseline the same")
        t.add_argument("--clip", type=_positive(float), help="clip the global update norm to this value")
        t.add_argument("--beta", type=_number(float, lambda v: 0.0 <= v <= 1.0, "a decay in [0, 1]"), default=0.9,
                       help="membrane decay per step, in [0, 1] (default 0.9)")
        t.add_argument("--tau-mem", type=_positive(float), metavar="MS",
                       help="membrane time constant [ms] instead of --beta: beta = 1 - bin/tau (the tau NIR "
                            "export writes; docs/neuron.md), e.g. 100 at 10 ms bins is beta 0.9")
        t.add_argument("--threshold", type=_number(float, lambda v: 1e-6 <= v <= 1e6, "a threshold in [1e-6, 1e6]"),
                       default=1.0, help="threshold, in [1e-6, 1e6] (default 1)")
        t.add_argument("--reset", choices=list(RESETS), default="zero", help="reset mechanism (default zero)")
        t.add_argument("--bias", action="store_true", help="give every layer a (random) bias")
        t.add_argument("--init-gain", type=_positive(float), default=1.0, help="init scale (default 1)")
        t.add_argument("--init-min-rate", type=_rate, default=0.01,
                       help="scale up hidden layers firing less than this (spikes/neuron/step) at init on "
                            "the first 64 training samples; 0 disables (default 0.01)")
        t.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                       help="simulation precision (default float32, the SG baseline's; float64: the same "
                            "accuracy measured, 1.6-3x slower)")
        t.add_argument("--quantize", choices=["loihi"], default=None,
                       help="train for the hardware: every training forward and evaluation runs in Loihi fixed point "
                            "(8-bit weights or --weight-bits, integer membranes: what Lava fixed_pt runs bit for "
                            "bit); float master weights, re-quantized each step (both rules, reset zero)")
        t.add_argument("--weight-bits", type=int, choices=range(2, 9), default=8, metavar="{2..8}",
                       help="with --quantize: the weights' precision, Lava's num_weight_bits (default 8; fewer "
                            "bits fit more synapses on a core, docs/loihi.md)")
        t.add_argument("--quantize-scale", choices=["epoch", "step"], default="epoch",
                       help="with --quantize: each layer's weight scale and exponent held through each epoch "
                            "(default) or recomputed from max|W| every step (docs/loihi.md has both measured)")
        t.add_argument("--chunks", type=_positive(int), default=None,
                       help="split each batch into N chunks whose feedback is summed in order (default: numba's "
                            "thread count for the temporal rule, 1 for spike-count; --workers needs it pinned, "
                            "default 8 there)")

    t = sub.add_parser("train", help="train a network with LFP", description="Train a LIF network with LFP.")
    train_opts(t)
    t.add_argument("--workers", type=_positive(int), default=0,
                   help="data-parallel feedback on N Ray workers (docs/distributed.md); the result is bit-identical "
                        "for any N at the same --chunks")
    t.add_argument("--address", help="Ray cluster for --workers (default: start Ray on this machine)")
    t.add_argument("--out", metavar="DIR", help="run directory (default runs/<dataset>-<rule>-seed<seed>)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    t.add_argument("--tensorboard", action="store_true",
                   help="also log every epoch's figures for TensorBoard under <out>/tensorboard/ (metrics.csv is "
                        "always written)")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    t.add_argument("--config", metavar="TOML",
                   help="take the settings from a run's config.toml (every run writes one); options given "
                        "on the command line override it")
    t.add_argument("--allow-large", action="store_true",
                   help="run even when the memory estimate exceeds what is available")
    common(t)

    b = sub.add_parser("bench", help="benchmark LFP against surrogate gradients",
                       description="Train LFP (both rules) and snntorch surrogate-gradient BPTT on the same "
                                   "network, data, batches and seeds; write bench.json, bench.md and plots.")
    b.add_argument("which", choices=["lfp-vs-sg"], help="the benchmark")
    train_opts(b)
    b.add_argument("--seeds", type=_positive(int), default=3, help="seeds (default 3: seed, seed+1, ...)")
    b.add_argument("--sg-lr", type=_positive(float), default=2e-3,
                   help="surrogate-gradient learning rate (default 2e-3)")
    b.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma-separated subset of {','.join(METHODS)}")
    b.add_argument("--out", metavar="DIR", default="runs/bench", help="output folder (default runs/bench)")
    b.add_argument("--ray", action="store_true",
                   help="run the methods x seeds as Ray tasks, one CPU each (docs/distributed.md)")
    b.add_argument("--address", help="Ray cluster for --ray (default: start Ray on this machine)")
    b.add_argument("--allow-large", action="store_true",
                   help="run even when the memory estimate exceeds what is available")
    common(b)
    w = sub.add_parser("sweep", help="grid search over training settings on Ray Tune",
                       description="Run every combination of the --grid values as Ray Tune trials (one training "
                                   "run each), locally or on a Ray cluster (--address); write sweep.json and "
                                   "sweep.md. --resume continues an interrupted sweep in --out (finished trials "
                                   "are kept), only if its state files are the ones spikelfp recorded.")
    train_opts(w)
    w.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a training setting and its values, e.g. --grid rule=temporal,spike-count --grid seed=0,1 "
                        "(repeat for more settings)")
    w.add_argument("--asha", action="store_true", help="stop poor trials early (ASHA on test accuracy per epoch)")
    w.add_argument("--address", help="Ray cluster to join (default: start Ray on this machine)")
    w.add_argument("--cpus-per-trial", type=_positive(int), default=1, help="CPUs (numba threads) per trial")
    w.add_argument("--out", metavar="DIR", default="runs/sweep", help="output folder (default runs/sweep)")
    w.add_argument("--resume", action="store_true",
                   help="continue the sweep in --out (refused unless its Ray Tune state is exactly what spikelfp "
                        "signed: Tune unpickles those files; docs/distributed.md)")
    w.add_argument("--allow-large", action="store_true",
                   help="run even when the memory estimate exceeds what is available")
    common(w)
    ap._subparsers_by_name = {"train": t, "bench": b, "sweep": w}

    e = sub.add_parser("eval", help="evaluate a saved model",
                       description="Evaluate a saved model on a dataset's test split.")
    e.add_argument("model", help="model.h5 written by spikelfp train")
    data_opts(e)
    e.add_argument("--split", choices=["test", "train"], default="test", help="which split to score (default test)")
    e.add_argument("--predictions", metavar="PATH",
                   help="also write one CSV row per sample: index, label, prediction, output spike counts")
    e.add_argument("--samples", type=_positive(int), metavar="N",
                   help="score N samples of the split drawn with --seed (default: all of them; without "
                        "--samples the result does not depend on --seed)")
    common(e)

    d = sub.add_parser("datasets", help="list the datasets",
                       description="List the registered datasets and their cache state.")
    d.add_argument("--data-root", metavar="DIR", help="dataset cache folder")
    common(d, seed=False)

    x = sub.add_parser("export", help="export a model to Lava, NIR or netx (and check it)",
                       description="Export a trained model; --check N runs N test samples through the target.")
    x.add_argument("model", help="model.h5 written by spikelfp train")
    x.add_argument("--to", required=True, choices=["lava", "nir", "nir-snntorch", "netx"],
                   help="target (nir-snntorch is --to nir --for snntorch)")
    x.add_argument("--for", dest="for_tool", choices=["physical", "snntorch"], default="physical",
                   help="--to nir only: physical (default; dt = the bin width, for norse, Lava, NIR tools) or "
                        "snntorch (the file snntorch.import_from_nir runs spike-identically: its step is fixed "
                        "at 1e-4 s, recorded in the file's metadata['dt'])")
    x.add_argument("--out", metavar="PATH", help="output file (default: next to the model)")
    x.add_argument("--check", type=int, default=0, metavar="N", help="compare spikes on N test samples")
    x.add_argument("--data-root", metavar="DIR", help="dataset cache folder (for --check)")
    common(x)

    r = sub.add_parser("prune", help="prune a trained model (magnitude or LFP relevance)",
                       description="Set the given fraction of a model's weights to zero and write the pruned model "
                                   "(a normal checkpoint with the pruning recorded; eval and export take it). "
                                   "Prints the test accuracy before and after (docs/pruning.md).")
    r.add_argument("model", help="model.h5 written by spikelfp train (or prune)")
    r.add_argument("--amount", type=_fraction, required=True, help="fraction of the weights to remove, 0..1, e.g. 0.9")
    r.add_argument("--criterion", choices=["magnitude", "relevance"], default="magnitude",
                   help="magnitude: smallest |w| (default); relevance: smallest LFP relevance for the correct "
                        "output on training samples (the paper's second criterion)")
    r.add_argument("--scope", choices=["global", "layer"], default="global",
                   help="global: rank all weights together (default); layer: the same fraction of every matrix")
    r.add_argument("--relevance-samples", type=_positive(int), default=512,
                   help="training samples the relevance is summed over (default 512)")
    r.add_argument("--finetune", type=_positive(int), metavar="EPOCHS",
                   help="then train EPOCHS epochs with the model's own LFP settings; pruned weights stay zero")
    r.add_argument("--out", metavar="PATH", help="output file (default: next to the model, "
                                                 "model-pruned<amount>-<criterion>-<scope>.h5)")
    r.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    data_opts(r)
    common(r)

    g = sub.add_parser("plot", help="plot one sample's spikes and membranes through a model",
                       description="Run one sample through a saved model and plot its input events, every "
                                   "layer's spikes and the output membranes (spikelfp.plot.sample_figure).")
    g.add_argument("model", help="model.h5 written by spikelfp train (or prune)")
    g.add_argument("--sample", type=_number(int, lambda v: v >= 0, "a sample index >= 0"), default=0,
                   help="index in the split (default 0)")
    g.add_argument("--split", choices=["test", "train"], default="test", help="which split (default test)")
    g.add_argument("--out", metavar="PNG",
                   help="output image (default: next to the model, <model>-<split>-sample<i>.png)")
    data_opts(g)
    common(g, seed=False)

    i = sub.add_parser("info", help="versions and which backends import",
                       description="Print the versions of spikelfp and its dependencies, and which backends import.")
    common(i, seed=False)
    return ap


def _emit(args, obj, text: str):
    print(text)
    if getattr(args, "json", None):
        from spikelfp.io import write_json
        write_json(args.json, obj)


def _progress(args):
    """tqdm on a terminal, periodic plain lines when piped or logged, nothing with --no-progress."""
    if args.no_progress:
        return None
    from spikelfp.progress import progress_bar
    return progress_bar


def _binning(args, spec):
    import dataclasses
    b = spec.default_binning
    changes = {}
    if getattr(args, "bin_ms", None):
        changes["bin_us"] = args.bin_ms * 1000.0
    if getattr(args, "n_bins", None):
        changes["n_bins"] = args.n_bins
        if "bin_us" not in changes:  # keep the recording window, split into T bins
            changes["bin_us"] = b.bin_us * b.n_bins / args.n_bins
    if getattr(args, "spatial_factor", None):
        changes["spatial_factor"] = args.spatial_factor
    if getattr(args, "merge_polarity", False):
        changes["merge_polarity"] = True
    return dataclasses.replace(b, **changes)


def _train_config(args, binning=None):
    from spikelfp.network import beta_from_tau
    from spikelfp.train import TrainConfig

    beta = args.beta
    if getattr(args, "tau_mem", None):
        if args.beta != 0.9:
            raise CLIError("--beta and --tau-mem both set the membrane decay: give one")
        if binning is None:
            raise CLIError("--tau-mem: a resumed run keeps the beta stored in its checkpoint")
        try:
            beta = beta_from_tau(args.tau_mem * 1e-3, binning.bin_us * 1e-6)
        except ValueError as e:
            raise CLIError(f"--tau-mem {args.tau_mem:g} ms: {e}") from None
    return TrainConfig(dataset=args.dataset, hidden=args.hidden, arch=getattr(args, "arch", None),
                       rule=getattr(args, "rule", None) or "temporal",
                       reward=args.reward, tau=args.tau, form=args.form, contrib=args.contrib,
                       secant=args.secant, eps=args.eps,
                       weight_scaling=not args.no_weight_scaling,
                       epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer,
                       lr=args.lr, momentum=args.momentum, switch=args.switch, schedule=args.schedule, clip=args.clip,
                       beta=beta, threshold=args.threshold, reset=args.reset, bias=args.bias,
                       init_gain=args.init_gain, init_min_rate=args.init_min_rate, dtype=args.dtype,
                       seed=args.seed, quantize=getattr(args, "quantize", None),
                       quantize_scale=getattr(args, "quantize_scale", "epoch"),
                       weight_bits=getattr(args, "weight_bits", 8),
                       chunks=args.chunks if args.chunks or not getattr(args, "workers", 0) else 8)


# options a resumed run takes from its checkpoint; only --epochs may change (and the non-training flags)
RESUME_FIXED = {"dataset": "--dataset", "arch": "--arch/--hidden", "rule": "--rule", "reward": "--reward",
                "tau": "--reward-tau",
                "form": "--form", "contrib": "--contrib", "secant": "--secant", "eps": "--eps",
                "weight_scaling": "--no-weight-scaling",
                "batch_size": "--batch-size", "optimizer": "--optimizer", "lr": "--lr", "momentum": "--momentum",
                "switch": "--switch", "schedule": "--schedule", "clip": "--clip", "beta": "--beta",
                "threshold": "--threshold",
                "reset": "--reset", "bias": "--bias", "init_gain": "--init-gain", "init_min_rate": "--init-min-rate",
                "dtype": "--dtype", "seed": "--seed", "chunks": "--chunks", "quantize": "--quantize",
                "quantize_scale": "--quantize-scale", "weight_bits": "--weight-bits"}
BINNING_OPTS = {"bin_ms": "--bin-ms", "n_bins": "--steps", "spatial_factor": "--spatial-factor",
                "merge_polarity": "--merge-polarity"}


def _given(args, defaults, dest) -> bool:
    """Whether an option was set on the command line (differs from the train parser's default)."""
    default = defaults.get_default(dest)
    return getattr(args, dest, default) != default


def _resume_config(args, out):
    """The run's config from its checkpoint; refuses every changed option but --epochs, by name."""
    from spikelfp.datasets import Binning
    from spikelfp.io import load_checkpoint
    from spikelfp.train import TrainConfig

    path = os.path.join(out, "model.h5")
    if not os.path.exists(path):
        raise CLIError(f"--resume: no checkpoint at {path}")
    ck = load_checkpoint(path)
    saved = TrainConfig.from_dict(ck.config)
    defaults = build_parser()._subparsers_by_name["train"]
    if not _given(args, defaults, "quantize"):      # the run's own (so that --weight-bits alone is compared)
        args.quantize = saved.quantize
    asked = _train_config(args)
    bad = []
    for name, flag in RESUME_FIXED.items():
        dests = {"weight_scaling": ["no_weight_scaling"], "arch": ["arch", "hidden"]}.get(name, [name])
        given = any(_given(args, defaults, d) for d in dests)
        if given and getattr(asked, name) != getattr(saved, name):
            bad.append(f"{flag} (run: {getattr(saved, name)!r}, asked: {getattr(asked, name)!r})")
    bad += [f"{flag} (the run's binning is stored in its checkpoint)" for dest, flag in BINNING_OPTS.items()
            if _given(args, defaults, dest)]
    if bad:
        raise CLIError("--resume continues a run with its own settings; only --epochs may change. Drop: "
                       + "; ".join(bad))
    more = _given(args, defaults, "epochs")
    if more and args.epochs <= len(ck.history):
        raise CLIError(f"--resume --epochs {args.epochs}: the run already has {len(ck.history)} epochs")
    cfg = TrainConfig.from_dict({**saved.to_dict(), "epochs": args.epochs if more else saved.epochs})
    binning = Binning(**ck.binning) if ck.binning else None
    return cfg, binning


def cmd_train(args) -> int:
    from spikelfp import datasets
    from spikelfp.io import RunInUse, RunLock, remove_stale_temporaries, same_file

    if args.dataset is None and not args.resume:     # a resumed run takes its dataset from the checkpoint
        args.dataset = "digits-saccade"
    name = args.dataset or "digits-saccade"
    if args.dataset and datasets.registry.is_path(args.dataset):
        args.dataset = os.path.abspath(args.dataset)         # stored in the checkpoint: works from anywhere
        name = os.path.splitext(os.path.basename(args.dataset))[0]
    out = args.out or os.path.join("runs", f"{name}-{args.rule or 'temporal'}-seed{args.seed}")   # under ./runs
    if os.path.exists(out) and not os.path.isdir(out):
        raise CLIError(f"--out {out} is a file, not a run folder")
    model = os.path.join(out, "model.h5")
    if args.json and (same_file(args.json, model) or same_file(args.json, os.path.join(out, "metrics.json"))):
        raise CLIError(f"--json {args.json} would overwrite the run's own {os.path.basename(args.json)}")
    if args.resume and args.overwrite:
        raise CLIError("--resume and --overwrite contradict each other: choose one")
    if os.path.exists(model) and not (args.resume or args.overwrite):
        raise CLIError(f"{model} exists: pass --resume to continue it, --overwrite to replace it, "
                       "or choose another --out")
    created = not os.path.exists(out)
    os.makedirs(out, exist_ok=True)
    try:
        with RunLock(out):
            remove_stale_temporaries(out)
            return _train_locked(args, out)
    except RunInUse as e:
        raise CLIError(str(e)) from None
    finally:
        if created and os.path.isdir(out) and not [f for f in os.listdir(out) if f != ".lock"]:
            import shutil
            shutil.rmtree(out, ignore_errors=True)      # a run that never started leaves no folder


def _train_locked(args, out) -> int:
    from spikelfp import datasets
    from spikelfp.train import Trainer

    if args.resume:
        cfg, binning = _resume_config(args, out)
        spec = datasets.get_spec(cfg.dataset)
        binning = binning or spec.default_binning
    else:
        spec = datasets.get_spec(args.dataset)
        binning = _binning(args, spec)
        cfg = _train_config(args, binning)
    _check_size(cfg, spec, binning, args)
    t0 = time.perf_counter()
    train, test = datasets.load(cfg.dataset, binning, root=args.data_root, progress=_progress(args),
                                download=not args.offline)
    _check_classes(cfg.dataset, train, test)
    write_run_config(os.path.join(out, "config.toml"), cfg, binning)
    print(f"{cfg.dataset}: {len(train)} train / {len(test)} test samples, {train.n_in} inputs, "
          f"T={train.n_steps} x {binning.bin_us / 1000:g} ms, {train.events_per_sample:.0f} events/sample "
          f"(loaded in {time.perf_counter() - t0:.1f} s)")
    print(f"network {network_string(train.n_in, cfg.arch, train.n_classes)}, rule {cfg.rule} "
          f"(reward {cfg.reward}, {cfg.contrib} credit), "
          f"{cfg.optimizer} lr {cfg.lr:g}, batch {cfg.batch_size}, seed {cfg.seed}"
          + (f", trained in Loihi fixed point (--quantize loihi, {cfg.weight_bits}-bit weights)" if cfg.quantize
             else ""))
    parallel = None
    if args.workers:
        from spikelfp.distributed import RayFeedback

        parallel = RayFeedback(args.workers, address=args.address)
    trainer = Trainer(cfg, progress=not args.no_progress, parallel=parallel)
    writer = None
    if args.tensorboard:
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise CLIError("--tensorboard needs tensorboardX: pip install tensorboardX") from None
        writer = SummaryWriter(os.path.join(out, "tensorboard"))

    def to_tensorboard(rec):
        for k, v in rec.items():
            if k != "epoch" and isinstance(v, (int, float)):
                writer.add_scalar(k, v, rec["epoch"])
        writer.flush()

    try:
        m = trainer.fit(train, test, out, resume=args.resume, binning=binning.to_dict(), log=print,
                        epoch_callback=to_tensorboard if writer else None)
    finally:
        if writer is not None:
            writer.close()
    latest = os.path.join(os.path.dirname(os.path.abspath(out)), "latest")
    if args.out is None:  # runs/latest -> the default run directory just written
        try:
            if os.path.islink(latest):
                os.remove(latest)
            if not os.path.exists(latest):
                os.symlink(os.path.basename(os.path.abspath(out)), latest)
        except OSError:
            pass
    text = (f"test accuracy {m['test_accuracy']:.4f} (train {m['train_accuracy']:.4f}, ties "
            f"{m['test_tie_rate']:.3f}) after {m['epochs']} epochs; {m['seconds_per_epoch']:.2f} s/epoch, "
            f"{m['samples_per_s']:.0f} samples/s (JIT compile {m['compile_seconds']:.1f} s, not included); "
            f"model: {os.path.join(out, 'model.h5')}")
    _emit(args, m, text)
    return 0


def _check_classes(name, train, test) -> None:
    seen = np.unique(train.labels)
    if seen.size < 2:
        raise CLIError(f"{name}: the training split holds only class {seen.tolist()}: a classifier needs at least "
                       "two classes (every model would score 1.0 on it)")
    unseen = sorted(set(np.unique(test.labels).tolist()) - set(np.unique(train.labels).tolist()))
    if unseen:
        raise CLIError(f"{name}: the test split holds classes that training never saw ({unseen[:10]}): "
                       "every model would score 0 on them")


def _check_size(cfg, spec, binning, args) -> None:
    """Refuse (exit 2) a run whose weights and training buffers would not fit in memory."""
    from spikelfp.arch import ArchError, layer_shapes
    from spikelfp.memory import available_bytes, estimate_training_bytes

    n_in = spec.input_size(binning)
    try:
        shapes = layer_shapes(cfg.arch, spec.input_shape(binning), spec.n_classes)
    except ArchError as e:
        raise CLIError(f"--arch {cfg.arch}: {e} (input {spec.input_shape(binning)})") from None
    need = estimate_training_bytes(shapes, binning.n_bins, cfg.batch_size, cfg.dtype)
    have = available_bytes()
    if need > 0.8 * have and not getattr(args, "allow_large", False):
        raise CLIError(f"this run needs about {need / 2**30:.1f} GiB "
                       f"({network_string(n_in, cfg.arch, spec.n_classes)}, "
                       f"T={binning.n_bins}, batch {cfg.batch_size}: --arch/--hidden/--steps/"
                       f"--batch-size) but {have / 2**30:.1f} GiB are available; --allow-large runs it anyway")


def cmd_bench(args) -> int:
    from spikelfp import datasets
    from spikelfp.bench import METHODS as METHODS_ALL
    from spikelfp.bench import markdown_table, run_bench

    args.dataset = args.dataset or "digits-saccade"
    if args.rule is not None:
        raise CLIError("bench trains both LFP rules (and the SG surrogates): choose them with --methods, "
                       "not --rule")
    spec = datasets.get_spec(args.dataset)
    binning = _binning(args, spec)
    cfg = _train_config(args, binning)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise CLIError(f"--methods {args.methods!r} names no method; choose from {', '.join(METHODS_ALL)}")
    _check_size(cfg, spec, binning, args)
    train, test = datasets.load(args.dataset, binning, root=args.data_root, progress=_progress(args),
                                download=not args.offline)
    _check_classes(args.dataset, train, test)
    import numba

    nthreads = numba.get_num_threads()
    print(f"bench lfp-vs-sg on {args.dataset}: {network_string(train.n_in, cfg.arch, train.n_classes)}, "
          f"{cfg.epochs} epochs, {args.seeds} seeds, methods {', '.join(methods)}; LFP {cfg.optimizer} lr {cfg.lr:g}, "
          f"SG lr {args.sg_lr:g}; numba {nthreads} threads, torch {nthreads} threads, BLAS 1 thread in LFP")
    r = run_bench(train, test, cfg, seeds=args.seeds, methods=methods, sg_lr=args.sg_lr, binning=binning.to_dict(),
                  out=args.out, progress=_progress(args) is not None, log=print,
                  use_ray=args.ray, ray_address=args.address,
                  command="spikelfp " + shlex.join(getattr(args, "argv", None) or sys.argv[1:]))
    _emit(args, r, markdown_table(r) + f"\nwritten: {os.path.join(args.out, 'bench.json')}, bench.md, *.png")
    return 0


def cmd_sweep(args) -> int:
    from spikelfp import datasets
    from spikelfp.distributed import markdown, parse_grid, sweep

    args.dataset = args.dataset or "digits-saccade"
    if datasets.registry.is_path(args.dataset):
        args.dataset = os.path.abspath(args.dataset)     # trials run in Ray's own working folders
    if not args.grid:
        raise CLIError("sweep needs at least one --grid key=v1,v2 (e.g. --grid seed=0,1)")
    grid = parse_grid(args.grid)
    spec = datasets.get_spec(args.dataset)
    binning = _binning(args, spec)
    cfg = _train_config(args, binning)
    _check_size(cfg, spec, binning, args)
    datasets.load(args.dataset, binning, root=args.data_root, progress=_progress(args),   # built once, here
                  download=not args.offline)
    n = 1
    for v in grid.values():
        n *= len(v)
    print(f"sweep on {args.dataset}: {n} trials over {', '.join(grid)}, {cfg.epochs} epochs each"
          + (f", Ray cluster {args.address}" if args.address else ", local Ray"))
    r = sweep(cfg, grid, args.out, binning=binning, address=args.address, asha=args.asha, resume=args.resume,
              cpus_per_trial=args.cpus_per_trial, data_root=str(datasets.data_root(args.data_root)))
    _emit(args, r, markdown(r) + f"\nwritten: {os.path.join(args.out, 'sweep.json')}, sweep.md")
    return 0 if r["failed"] == 0 else 1


def cmd_eval(args) -> int:
    from spikelfp.io import load_checkpoint, same_file
    from spikelfp.train import evaluate

    if args.json and same_file(args.json, args.model):
        raise CLIError(f"--json {args.json} is the model file itself: choose another path")
    ck = load_checkpoint(args.model)
    name, train, test = _model_data(args, ck)
    data = test if args.split == "test" else train
    if args.predictions and same_file(args.predictions, args.model):
        raise CLIError(f"--predictions {args.predictions} is the model file itself: choose another path")
    index = None
    if args.samples:
        index = data.sample_indices(args.samples, args.seed)
        data = data.subset(index)
    quantized = (ck.config or {}).get("quantize")
    bits = int((ck.config or {}).get("weight_bits", 8))
    # trained for Loihi: scored in fixed point, as it trained
    r = evaluate(ck.network, data, quantize=quantized, weight_bits=bits)
    if quantized:
        r["float_accuracy"] = evaluate(ck.network, data)["accuracy"]
        r["quantize"] = quantized
        r["weight_bits"] = bits
    r.update({"model": args.model, "dataset": name, "split": args.split, "samples": len(data)})
    if index is not None:
        r.update({"sample_seed": args.seed, "sample_indices": index.tolist()})
    if args.predictions:
        _write_predictions(args.predictions, ck.network, data, index, fixed=bool(quantized), weight_bits=bits)
        r["predictions"] = args.predictions
    text = (f"{name} {args.split}: accuracy {r['accuracy']:.4f}"
            + (f" in Loihi fixed point ({bits}-bit weights, trained quantized; the float network: "
               f"{r['float_accuracy']:.4f})"
               if quantized else "") + f" on {len(data)} samples "
            f"(ties {r['tie_rate']:.3f}, {r['spikes_per_sample']:.0f} spikes and "
            f"{r['synops_per_sample']:.0f} SynOps per sample)")
    if ck.pruning:
        r["pruning"] = ck.pruning
        text += (f"\npruned model: {ck.pruning.get('synapses_after')} of {ck.pruning.get('weights')} synapses "
                 f"({ck.pruning.get('amount', 0):.0%} pruned by {ck.pruning.get('criterion')}, "
                 f"{ck.pruning.get('scope')})")
    _emit(args, r, text)
    return 0


def cmd_plot(args) -> int:
    from spikelfp.io import load_checkpoint, same_file
    from spikelfp.plot import sample_figure

    out = args.out or f"{os.path.splitext(args.model)[0]}-{args.split}-sample{args.sample}.png"
    for path in filter(None, (out, args.json)):
        if same_file(path, args.model):
            raise CLIError(f"{path} is the model file itself: choose another path")
    if os.path.isdir(out):
        raise CLIError(f"--out {out} is a folder: give a file name")
    ck = load_checkpoint(args.model)
    name, train, test = _model_data(args, ck)
    data = test if args.split == "test" else train
    fig, rec = sample_figure(ck.network, data, args.sample, out)
    import matplotlib.pyplot as plt

    plt.close(fig)
    r = {"model": args.model, "dataset": name, "split": args.split, "sample": args.sample, "out": out,
         "label": int(data.labels[args.sample]), "prediction": int(rec.predict()[0]),
         "spikes_per_layer": [int(c.sum()) for c in rec.counts]}
    _emit(args, r, f"{name} {args.split} sample {args.sample}: label {r['label']}, predicted {r['prediction']}, "
                   f"spikes per layer {r['spikes_per_layer']}; figure: {out}")
    return 0


def _folder_bytes(*folders) -> int:
    size = 0
    for folder in folders:
        for dp, _, files in os.walk(folder):
            size += sum(os.path.getsize(os.path.join(dp, f)) for f in files)
    return size


def cmd_datasets(args) -> int:
    from spikelfp.datasets import DATASETS, data_root
    from spikelfp.datasets.registry import cache_path

    root = data_root(args.data_root)
    rows = []
    for name, spec in DATASETS.items():
        size = _folder_bytes(*{os.path.join(root, name), os.path.join(root, spec.raw_folder or name)})
        b = spec.default_binning
        cached = os.path.exists(cache_path(spec, b, root)[0])
        rows.append({"name": name, "classes": spec.n_classes, "sensor_size": list(spec.sensor_size),
                     "input_size": spec.input_size(), "steps": b.n_bins, "bin_ms": b.bin_us / 1000,
                     "present": bool(spec.present(root)), "cached": cached, "bytes_on_disk": size,
                     "offline": spec.offline, "description": spec.description,
                     "files": [{"split": sp, "archive": fn, "md5": md5, "url": url,
                                "folder": os.path.join(root, spec.raw_folder)} for sp, fn, md5, url in spec.archives]})
    lines = [f"{'name':<16} {'classes':>7} {'sensor':>12} {'inputs':>6} {'T':>4} {'on disk':>9} {'binned':>6}  "
             "description"]
    for r in rows:
        sensor = "x".join(map(str, r["sensor_size"]))
        disk = f"{r['bytes_on_disk'] / 1e6:.1f} MB" if r["present"] else ("not built" if r["offline"] else "absent")
        lines.append(f"{r['name']:<16} {r['classes']:>7} {sensor:>12} {r['input_size']:>6} {r['steps']:>4} "
                     f"{disk:>9} {'yes' if r['cached'] else 'no':>6}  {r['description']}")
    absent = [r for r in rows if not r["present"] and r["files"]]
    if absent:
        lines.append("\nabsent datasets download on first use; offline, place these archives by hand:")
        for r in absent:
            for f in r["files"]:
                lines.append(f"  {r['name']:<12} {f['split']:<5} {f['archive']:<24} md5 {f['md5']}  in {f['folder']}/"
                             f"  ({f['url']})")
    lines.append(f"cache: {root}   (your own recordings: --dataset path/to/file.h5, layout in "
                 "spikelfp.datasets.custom)")
    _emit(args, {"root": root, "datasets": rows}, "\n".join(lines))
    return 0


def cmd_info(args) -> int:
    import importlib
    import platform

    import numba

    from spikelfp import __version__
    versions = {"spikelfp": __version__, "python": platform.python_version()}
    for mod in ("numpy", "numba", "h5py", "scipy", "sklearn", "tonic", "torch", "snntorch", "nir", "lava", "ray"):
        try:
            if mod == "lava":
                from spikelfp import compat
                compat.patch_lava()
                importlib.import_module("lava.magma.core.run_configs")
                import importlib.metadata as md
                versions[mod] = md.version("lava-nc")
            else:
                m = importlib.import_module(mod)
                versions[mod] = getattr(m, "__version__", "?")
        except Exception as e:  # noqa: BLE001 - report, never fail
            versions[mod] = f"not available ({type(e).__name__}: {e})"
    from spikelfp.backends import BACKENDS, get
    backends = {}
    for name in BACKENDS:
        try:
            get(name)
            backends[name] = "ok"
        except ImportError as e:
            backends[name] = f"unavailable: {e}"
    info = {"versions": versions, "backends": backends, "numba_threads": numba.get_num_threads(),
            "cpu_count": os.cpu_count(), "machine": platform.machine(), "platform": platform.platform()}
    lines = [f"{k:<10} {v}" for k, v in versions.items()]
    lines += [f"backend {k:<6} {v}" for k, v in backends.items()]
    lines.append(f"numba threads {info['numba_threads']} of {info['cpu_count']} CPUs ({info['machine']})")
    _emit(args, info, "\n".join(lines))
    return 0


def cmd_export(args) -> int:
    from spikelfp.exporting import export_model, format_report, output_path
    from spikelfp.io import same_file

    if args.check < 0:
        raise CLIError("--check takes a number of samples >= 0")
    if args.for_tool == "snntorch":
        if args.to not in ("nir", "nir-snntorch"):
            raise CLIError(f"--for snntorch is a NIR flavour: use it with --to nir (not --to {args.to})")
        args.to = "nir-snntorch"
    out = output_path(args.model, args.to, args.out)
    if args.json and (same_file(args.json, args.model) or same_file(args.json, out)):
        raise CLIError(f"--json {args.json} would overwrite the model or the export: choose another path")
    r = export_model(args.model, args.to, out=out, check=args.check, seed=args.seed,
                     data_root=args.data_root, progress=_progress(args))
    _emit(args, r, format_report(r))
    return 0


def cmd_prune(args) -> int:
    from spikelfp.io import load_checkpoint, same_file, save_checkpoint
    from spikelfp.prune import nonzero_synapses, prune, relevance_scores
    from spikelfp.train import TrainConfig, Trainer, evaluate

    model = args.model
    stem = os.path.splitext(model)[0]
    out = args.out or f"{stem}-pruned{args.amount * 100:g}-{args.criterion}-{args.scope}.h5"
    if same_file(out, model):
        raise CLIError(f"--out {out} is the model itself: choose another path")
    if os.path.exists(out) and not args.overwrite:
        raise CLIError(f"{out} exists: pass --overwrite to replace it, or choose another --out")
    if args.json and (same_file(args.json, model) or same_file(args.json, out)):
        raise CLIError(f"--json {args.json} would overwrite the model or the pruned model: choose another path")
    ck = load_checkpoint(model)
    cfg = TrainConfig.from_dict(ck.config) if ck.config else TrainConfig()
    name, train, test = _model_data(args, ck)
    q = cfg.quantize                       # a model trained in fixed point is scored in fixed point throughout
    before = evaluate(ck.network, test, quantize=q, weight_bits=cfg.weight_bits)
    scores = None
    if args.criterion == "relevance":
        scores = relevance_scores(ck.network, train, rule=cfg.rule, n_samples=args.relevance_samples,
                                  seed=args.seed, contrib=cfg.contrib, form=cfg.form, eps=cfg.eps)
    net, rep = prune(ck.network, args.amount, criterion=args.criterion, scope=args.scope, scores=scores)
    pruned = evaluate(net, test, quantize=q, weight_bits=cfg.weight_bits)
    history, config = [], dict(ck.config)
    rep.update({"source": os.path.abspath(model), "source_pruning": ck.pruning,
                "test_accuracy_before": before["accuracy"], "test_accuracy_pruned": pruned["accuracy"],
                "relevance_samples": args.relevance_samples if args.criterion == "relevance" else None,
                "finetune_epochs": args.finetune or 0, "seed": args.seed})
    if args.finetune:
        ft = TrainConfig.from_dict({**cfg.to_dict(), "epochs": args.finetune, "frozen_zeros": True,
                                    "seed": args.seed, "dataset": ck.dataset or cfg.dataset})
        trainer = Trainer(ft, progress=not args.no_progress)
        m = trainer.fit(train, test, binning=ck.binning, log=print, start=net)
        net, history, config = trainer.network, m["history"], ft.to_dict()
        if nonzero_synapses(net) > rep["synapses_after"]:     # the mask is the contract: never silently lost
            raise RuntimeError("fine-tuning revived pruned synapses (a bug): nothing written")
    after = evaluate(net, test, quantize=q, weight_bits=cfg.weight_bits)
    rep["test_accuracy"] = after["accuracy"]
    rep["spikes_per_sample"] = {"before": before["spikes_per_sample"], "after": after["spikes_per_sample"]}
    rep["synops_per_sample"] = {"before": before["synops_per_sample"], "after": after["synops_per_sample"]}
    save_checkpoint(out, type(ck)(network=net, config=config, history=history, binning=ck.binning,
                                  dataset=ck.dataset, seed=args.seed, pruning=rep))
    n0, n1 = rep["synapses_before"], rep["synapses_after"]
    lines = [f"{name} test: accuracy {before['accuracy']:.4f} -> {pruned['accuracy']:.4f} after pruning "
             f"{args.amount:.0%} ({args.criterion}, {args.scope})"
             + (f" -> {after['accuracy']:.4f} after {args.finetune} epochs of fine-tuning" if args.finetune else ""),
             f"synapses {n0} -> {n1} of {rep['weights']} ({n1 / max(rep['weights'], 1):.1%} kept); per inference "
             f"{before['spikes_per_sample']:.0f} -> {after['spikes_per_sample']:.0f} spikes, "
             f"{before['synops_per_sample']:.0f} -> {after['synops_per_sample']:.0f} SynOps",
             f"pruned model: {out}"]
    _emit(args, rep, "\n".join(lines))
    return 0


def _write_predictions(path, network, data, index=None, batch_size: int = 256, fixed: bool = False,
                       weight_bits: int = 8) -> None:
    """One CSV row per sample; ``index`` gives each row's index in the full split (default 0..n-1);
    ``fixed``: the Loihi fixed-point run's counts (a model trained with --quantize)."""
    import csv

    from spikelfp.io import atomic_path
    from spikelfp.packed import pack
    from spikelfp.simulate import predict, simulate

    if fixed:
        from spikelfp.loihi import pack_fixed, quantize, simulate_fixed

        fx = pack_fixed(quantize(network, bits=weight_bits))

        def run(eb):
            return simulate_fixed(fx, eb).counts[-1]
    else:
        p = pack(network)

        def run(eb):
            return simulate(p, eb).counts[-1]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["index", "label", "prediction", *[f"count_{k}" for k in range(network.n_out)]])
        for lo in range(0, len(data), batch_size):
            idx = np.arange(lo, min(len(data), lo + batch_size))
            out = run(data.batch(idx))
            for i, y, pr, c in zip(idx if index is None else index[idx], data.labels[idx], predict(out), out):
                w.writerow([int(i), int(y), int(pr), *map(int, c)])


def _model_data(args, ck):
    """A checkpoint's own dataset (or --dataset), with its stored binning: (name, train, test)."""
    from spikelfp import datasets
    from spikelfp.datasets import Binning
    from spikelfp.io import same_file

    name = args.dataset if args.dataset else (ck.dataset or "digits-saccade")
    spec = datasets.get_spec(name)
    own = ck.dataset is not None and (name == ck.dataset or (datasets.registry.is_path(name)
                                                              and same_file(name, ck.dataset)))
    binning = Binning(**ck.binning) if (ck.binning and own) else spec.default_binning
    train, test = datasets.load(name, binning, root=args.data_root, progress=_progress(args),
                                download=not args.offline)
    if test.n_in != ck.network.n_in or test.n_classes != ck.network.n_out:
        raise CLIError(f"model has {ck.network.n_in} inputs / {ck.network.n_out} outputs but {name} "
                       f"gives {test.n_in} / {test.n_classes}")
    return name, train, test


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "export": cmd_export, "bench": cmd_bench, "sweep": cmd_sweep,
            "prune": cmd_prune, "plot": cmd_plot, "datasets": cmd_datasets, "info": cmd_info}


def _apply_preset(parser, argv):
    """Two-pass parsing: a --preset and then a --config become the subcommand's defaults, explicit
    options still win."""
    from spikelfp.presets import get_preset

    args = parser.parse_args(argv)
    name = getattr(args, "preset", None)
    config = getattr(args, "config", None)
    if not name and not config:
        return args
    sub = parser._subparsers_by_name[args.command]
    if name:
        preset = get_preset(name)
        if args.command == "bench":
            preset.pop("rule", None)          # bench trains both rules
        sub.set_defaults(**preset)
    if config:
        if args.resume:
            sub.error("--config and --resume: a resumed run keeps the settings stored in its checkpoint")
        sub.set_defaults(**_read_run_config(sub, config, argv))
    return parser.parse_args(argv)


# what a run's config.toml holds: every setting that decides the result, under its option's name
CONFIG_HEADER = ("# spikelfp train settings, resolved (defaults filled in). `spikelfp train --config THIS_FILE` "
                 "reruns the run;\n# options on the command line override these. Keys are `spikelfp train` "
                 "options without the leading --.\n")


def _toml_value(v) -> str:
    import json

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))            # a JSON string is a valid TOML basic string


def write_run_config(path, cfg, binning) -> None:
    """The run's resolved settings as TOML (atomically), for ``spikelfp train --config``."""
    from spikelfp.io import atomic_path

    items = {"dataset": cfg.dataset, "arch": cfg.arch, "rule": cfg.rule, "reward": cfg.reward,
             "reward-tau": cfg.tau, "form": cfg.form, "contrib": cfg.contrib, "secant": cfg.secant, "eps": cfg.eps,
             "no-weight-scaling": not cfg.weight_scaling, "epochs": cfg.epochs, "batch-size": cfg.batch_size,
             "optimizer": cfg.optimizer, "lr": cfg.lr, "momentum": cfg.momentum, "switch": cfg.switch,
             "schedule": cfg.schedule,
             "clip": cfg.clip, "beta": cfg.beta, "threshold": cfg.threshold, "reset": cfg.reset, "bias": cfg.bias,
             "init-gain": cfg.init_gain, "init-min-rate": cfg.init_min_rate, "dtype": cfg.dtype, "seed": cfg.seed,
             "chunks": cfg.chunks, "quantize": cfg.quantize,
             "quantize-scale": cfg.quantize_scale if cfg.quantize else None,
             "weight-bits": cfg.weight_bits if cfg.quantize else None}
    if binning is not None:
        items.update({"bin-ms": binning.bin_us / 1000.0, "steps": binning.n_bins,
                      "spatial-factor": binning.spatial_factor, "merge-polarity": binning.merge_polarity})
    body = "".join(f"{k} = {_toml_value(v)}\n" for k, v in items.items() if v is not None)   # TOML has no null
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        fh.write(CONFIG_HEADER + body)


def _read_run_config(sub, path, argv) -> dict:
    """A config.toml as parser defaults: each key must be an option of ``sub``, each value passes
    that option's own check; anything else is a usage error naming the file and the key."""
    import tomllib

    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        sub.error(f"--config {path}: no such file")
    except IsADirectoryError:
        sub.error(f"--config {path} is a folder, not a file")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        sub.error(f"--config {path} is not valid TOML: {e}")
    except OSError as e:
        sub.error(f"--config {path}: {e.strerror or e}")
    by_flag = {o: a for a in sub._actions for o in a.option_strings}
    refused = {"config", "resume", "overwrite", "out", "json", "no_progress", "help", "preset"}
    out = {}
    for key, value in raw.items():
        action = by_flag.get("--" + str(key).replace("_", "-"))
        if action is None or action.dest in refused:
            sub.error(f"--config {path}: {key!r} is not a setting `spikelfp train --config` takes")
        if isinstance(action, argparse._StoreTrueAction):
            if not isinstance(value, bool):
                sub.error(f"--config {path}: {key} must be true or false (got {value!r})")
            out[action.dest] = value
            continue
        if isinstance(value, (dict, bool)) or (isinstance(value, list) and action.dest != "hidden"):
            sub.error(f"--config {path}: {key} takes one value (got {value!r})")
        text = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
        try:
            v = action.type(text) if action.type else text
        except (argparse.ArgumentTypeError, ValueError) as e:
            sub.error(f"--config {path}: {key} = {value!r}: {e}")
        if action.choices is not None and v not in action.choices:
            sub.error(f"--config {path}: {key} = {value!r}: choose one of {', '.join(map(str, action.choices))}")
        out[action.dest] = v
    if any(a == "--hidden" or a.startswith("--hidden=") for a in argv):
        out.pop("arch", None)            # --hidden on the command line replaces the file's network
    if any(a == "--tau-mem" or a.startswith("--tau-mem=") for a in argv):
        out.pop("beta", None)            # and --tau-mem its decay
    return out


class _SafeStdout:
    """stdout that goes quiet when its reader has gone (``spikelfp train | head -1``): the command
    finishes its work and writes its files instead of dying with a BrokenPipeError traceback."""

    def __init__(self, stream):
        self._s = stream
        self.broken = False

    def write(self, text):
        if not self.broken:
            try:
                return self._s.write(text)
            except BrokenPipeError:
                self.broken = True
        return len(text)

    def flush(self):
        if not self.broken:
            try:
                self._s.flush()
            except BrokenPipeError:
                self.broken = True

    def __getattr__(self, name):
        return getattr(self._s, name)


def _interrupt_cause(e: BaseException):
    """The KeyboardInterrupt in ``e``'s cause/context chain, if any."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def os_error_line(e: OSError) -> str | None:
    """One line for an operating-system refusal that names its file (atomic writes left every
    existing file as it was); None for anything else (a bug: its traceback is kept)."""
    import errno

    name = e.filename or "a file"
    known = {errno.ENOSPC: f"disk full writing {name}; existing files are unchanged",
             errno.EFBIG: f"file size limit reached writing {name} (ulimit -f); existing files are unchanged",
             errno.EDQUOT: f"disk quota exceeded writing {name}; existing files are unchanged",
             errno.EROFS: f"{name} is on a read-only file system",
             errno.EACCES: f"permission denied: {name}", errno.EPERM: f"operation not permitted: {name}",
             errno.ELOOP: f"{name}: too many levels of symbolic links (a link loop?)",
             errno.ENAMETOOLONG: f"file name too long: {name}",
             errno.ENOTDIR: f"{name}: a part of the path is a file, not a folder"}
    if e.errno in known:
        return known[e.errno]
    if e.filename:
        return f"{name}: {e.strerror or e}"
    return None


def _check_writable(args) -> None:
    """Refuse, before any work, an output (``--out``, ``--json``, ``--predictions``) whose folder
    cannot be written: read-only mounts and folders without permission (the run never trains
    for nothing)."""
    for opt in ("out", "json", "predictions"):
        path = getattr(args, opt, None)
        if not path or not isinstance(path, str):
            continue
        real = os.path.realpath(path)
        if os.path.exists(real) and not os.path.isdir(real) and not stat.S_ISREG(os.stat(real).st_mode):
            if not os.access(real, os.W_OK):          # a FIFO or device is written through, not replaced
                raise CLIError(f"--{opt} {path}: not writable")
            continue
        parent = real                     # a regular file is replaced: its folder (or the nearest existing one)
        while not os.path.exists(parent):
            parent = os.path.dirname(parent)
        folder = parent if os.path.isdir(parent) else os.path.dirname(parent)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise CLIError(f"--{opt} {path}: {folder} is not writable (a read-only file system "
                           "or no permission)")


def main(argv=None) -> int:
    from spikelfp import interrupts
    from spikelfp.io import ModelFileError, RunInUse

    argv = sys.argv[1:] if argv is None else list(argv)
    args = _apply_preset(build_parser(), argv)
    args.argv = argv                # the command line as given: benchmarks record it next to their results
    real_stdout = sys.stdout
    if not isinstance(sys.stdout, _SafeStdout):
        sys.stdout = _SafeStdout(sys.stdout)
    interrupts.install()            # SIGTERM behaves as Ctrl-C (reliably: see spikelfp.interrupts)
    try:
        _check_writable(args)
        return COMMANDS[args.command](args)
    except (CLIError, ModelFileError, ValueError, FileNotFoundError, ImportError, RunInUse, ConnectionError) as e:
        print(f"spikelfp {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except IsADirectoryError as e:
        print(f"spikelfp {args.command}: error: {e.filename} is a folder, not a file", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:
        line = os_error_line(e)
        if line is None:
            raise
        print(f"spikelfp {args.command}: error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:
        print(f"spikelfp {args.command}: error: out of memory; a smaller --batch-size, --hidden/--arch or --steps "
              "needs less (no file was changed)", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as e:
        interrupts.acknowledge()
        print(f"interrupted ({e})" if str(e) else "interrupted", file=sys.stderr)
        return 130
    except SystemError as e:
        # an interrupt that landed inside a numba dispatcher surfaces as SystemError caused by it
        cause = _interrupt_cause(e)
        if cause is None:
            raise
        interrupts.acknowledge()
        print(f"interrupted ({cause})", file=sys.stderr)
        return 130
    finally:
        interrupts.uninstall()
        if not getattr(sys.stdout, "broken", False):
            sys.stdout = real_stdout


def console_main() -> None:
    """The ``spikelfp`` command: :func:`main`, then an exit that cannot hang.

    The interpreter's own shutdown joins every multiprocessing child (Lava's workers) and can
    wait for good on one that an interrupt or an error left behind. The command has cleaned up
    what it owns by then, so whatever child is still alive is killed and the process leaves
    without that join. After Ray (shut down by then) it leaves the same way: the interpreter's
    teardown with Ray's native threads loaded crashed with SIGSEGV on a loaded machine after an
    interrupt had been handled.
    """
    import multiprocessing
    import traceback

    from spikelfp import interrupts

    try:
        rc = main()
    except SystemExit as e:            # argparse: --help, --version, usage errors
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - an unexpected error: report it, then the same exit
        traceback.print_exc()
        rc = 1
    children = multiprocessing.active_children()
    if children or "ray" in sys.modules:
        if children:
            interrupts._kill_children()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(rc)
    sys.exit(rc)


if __name__ == "__main__":  # pragma: no cover
    console_main()
