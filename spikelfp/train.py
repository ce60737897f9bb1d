"""Training with LFP: config, trainer loop, evaluation, checkpoints and resume.

Data flows one way: EventDataset -> EventBatch -> rule (simulate + feedback kernels) ->
``grad = -F / B`` -> optimizer -> packed weights. Deterministic for a seed: one
``numpy.random.Generator`` seeds the init and the shuffling, and its state is checkpointed.

Example (the README's quick start; ~20 s with the dataset build)::

    from spikelfp.train import TrainConfig, Trainer
    from spikelfp import datasets
    train, test = datasets.load("digits-saccade")
    metrics = Trainer(TrainConfig(epochs=1)).fit(train, test, "runs/example")
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .arch import arch_from_hidden, format_arch, parse_arch
from .blas import single_threaded_blas
from .feedback import RULES, get_reward, get_rule
from .io import Checkpoint, check_checkpoint, load_checkpoint, save_checkpoint, write_json
from .loadmeter import OtherLoad
from .loihi import WEIGHT_BITS, evaluate_fixed, fixed_of, hold_of, quantized_training_pair, refresh_hold
from .network import RESETS, Network
from .optim import OPTIMIZERS, SCHEDULES, clip_grad_norm, make_schedule
from .packed import Packed, neuron_segments, pack, unpack
from .simulate import predict, score, simulate

DEFAULT_REWARD = {"temporal": "ce", "spike-count": "ce"}


MAX_EPOCHS = 1_000_000
# (setting, low, high, low excluded): checked at the boundary, so no kernel ever receives a value it raises on
RANGES = (("beta", 0.0, 1.0, False), ("threshold", 1e-6, 1e6, False), ("eps", 0.0, 1.0, True),
          ("tau", 0.0, 1e6, True), ("init_gain", 0.0, 1e6, True), ("init_min_rate", 0.0, 0.999, False))


@dataclass
class TrainConfig:
    """Everything that determines a training run (saved in every checkpoint)."""

    dataset: str = "digits-saccade"
    hidden: list = field(default_factory=lambda: [256])
    arch: str | None = None            # hidden layers as a spec (docs/layers.md), e.g. "r256"; None: dense `hidden`
    rule: str = "temporal"
    reward: str | None = None          # None: ce (temporal rule with subtract reset: rate; docs/rules.md)
    tau: float = 1.0                   # softmax/ce reward temperature [spikes]
    form: str = "carry"                # temporal rule: "carry" (spikelfp) or "paper" (lfprop 1.0.0)
    contrib: str = "graded"            # credit of hidden neurons: "graded" (silent: clip(v/theta, 0, 1)) or "spikes"
    secant: str = "bounded"            # spike-count rule: "bounded" or "signed" (the first version's)
    eps: float = 1e-6                  # feedback stabiliser
    weight_scaling: bool = True        # the paper's |W| factor
    epochs: int = 20
    batch_size: int = 32
    optimizer: str = "two-phase"       # neuron-adam, then adam with a decaying rate (docs/rules.md); "adam":
                                       # the default before 2026-12-07
    lr: float = 1e-3
    momentum: float = 0.9              # SGD only
    switch: float = 0.5                # two-phase only: the fraction of the run's steps in the per-neuron phase
    schedule: str = "constant"         # or "onecycle", "cosine" (spikelfp.optim.make_schedule)
    clip: float | None = None          # max global grad norm per step
    beta: float = 0.9
    threshold: float = 1.0
    reset: str = "zero"
    bias: bool = False
    init_gain: float = 1.0
    init_min_rate: float = 0.01        # hidden layers quieter than this at init are scaled up (0: off)
    dtype: str = "float32"            # or "float64"; the simulator is bit-exact in either (float32: the SG
                                       # baseline's precision, 1.6-3x faster, same accuracy measured: README)
    seed: int = 0
    eval_batch_size: int = 256
    frozen_zeros: bool = False         # weights that are zero at the start stay exactly zero (fine-tuning a
                                       # pruned model, `spikelfp prune --finetune`: its mask is kept)
    chunks: int | None = None          # pinned split of each batch, summed in order (None: numba's threads /
                                       # one chunk); data-parallel runs give the same bits for the same value
    quantize: str | None = None        # "loihi": every training forward and evaluation in Loihi fixed point
                                       # (spikelfp.loihi), float master weights re-quantized each step
    quantize_scale: str = "epoch"      # the per-layer weight scale and exponent of that re-quantization: held
                                       # through each epoch, a layer's re-derived the step its weights outgrow
                                       # it ("epoch", measured better: docs/loihi.md) or recomputed every
                                       # step ("step")
    weight_bits: int = 8               # with quantize: the weights' precision, Lava's num_weight_bits (2-8)

    def __post_init__(self):
        if self.arch is None:
            self.hidden = [int(h) for h in self.hidden]
            if any(h < 1 for h in self.hidden):
                raise ValueError(f"hidden sizes must be >= 1 (got {self.hidden})")
            self.arch = arch_from_hidden(self.hidden)
        else:
            layers = parse_arch(self.arch)          # the spec wins; hidden follows it (dense/recurrent specs)
            self.arch = format_arch(layers)
            self.hidden = [] if any(la.kind in ("c", "p") for la in layers) else [la.n for la in layers]
        if self.rule not in RULES:
            raise ValueError(f"unknown rule {self.rule!r}; choose one of {', '.join(RULES)}")
        if self.reward is None:
            # ce with reset to zero; with the paper's subtract reset, the paper's rate reward: ce was
            # measured unstable there (docs/rules.md), the rate reward learns (spoken-digits 0.85)
            paper_setting = self.reset == "subtract" and self.rule == "temporal"
            self.reward = "rate" if paper_setting else DEFAULT_REWARD[self.rule]
        get_reward(self.reward)  # validates the name
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if not (0.0 <= float(self.switch) <= 1.0):
            raise ValueError(f"switch must lie in [0, 1] (a fraction of the run's steps; got {self.switch})")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if self.reset not in RESETS:
            raise ValueError(f"unknown reset {self.reset!r}; choose one of {', '.join(RESETS)}")
        if int(self.epochs) < 1 or int(self.batch_size) < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        if int(self.epochs) > MAX_EPOCHS:
            raise ValueError(f"epochs must be <= {MAX_EPOCHS:,} (got {self.epochs})")
        if not (0 <= int(self.seed) < 2**63):
            raise ValueError(f"seed must be a whole number in [0, 2^63) (got {self.seed}): HDF5 stores it as int64")
        if not (isinstance(self.momentum, (int, float)) and 0.0 <= self.momentum < 1.0):
            raise ValueError(f"momentum must lie in [0, 1) (got {self.momentum})")
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be float64 or float32 (got {self.dtype!r})")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be > 0 (got {self.lr})")
        for name, lo, hi, lo_open in RANGES:          # the kernels' boundary: never a value they raise on
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and (v > lo if lo_open else v >= lo) and v <= hi):
                raise ValueError(f"{name} must lie in {'(' if lo_open else '['}{lo:g}, {hi:g}] (got {v!r})")
        if self.chunks is not None and int(self.chunks) < 1:
            raise ValueError(f"chunks must be >= 1 (got {self.chunks})")
        if self.quantize not in (None, "loihi"):
            raise ValueError(f"unknown quantize {self.quantize!r}; choose loihi (or none)")
        if self.quantize_scale not in ("step", "epoch"):
            raise ValueError(f"unknown quantize_scale {self.quantize_scale!r}; choose step or epoch")
        if self.quantize and self.reset != "zero":
            raise ValueError("quantize=loihi needs reset=zero: Loihi's LIF resets the membrane to zero")
        if self.weight_bits not in WEIGHT_BITS:
            raise ValueError(f"weight_bits must be one of {', '.join(map(str, WEIGHT_BITS))} "
                             f"(got {self.weight_bits!r})")
        if self.weight_bits != 8 and not self.quantize:
            raise ValueError("weight_bits sets the precision of quantize=loihi: give both (`bench --quantize loihi "
                             "--weight-bits N` also measures the float-trained models at N bits)")


    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def recurrent(self) -> list[bool]:
        """Per layer (hidden layers, then the output layer), whether it has recurrent weights."""
        return [la.kind == "r" for la in parse_arch(self.arch)] + [False]

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        d = dict(d)
        if "secant" not in d and "reward" in d:   # written before the secant existed: the signed one ran
            d["secant"] = "signed"
        if "contrib" not in d and "reward" in d:   # written before graded contributions: spikes ran
            d["contrib"] = "spikes"
        if d.get("quantize") and "quantize_scale" not in d:   # written before the choice existed: per step ran
            d["quantize_scale"] = "step"
        if "optimizer" not in d and "reward" in d:  # written before the optimizer was recorded: Adam ran
            d["optimizer"] = "adam"
        if "dtype" not in d and "reward" in d:     # written before float32 became the default: float64 ran
            d["dtype"] = "float64"
        return cls(**{k: v for k, v in d.items() if k in names})

    def make_rule(self):
        reward = get_reward(self.reward, **({"tau": self.tau} if self.reward in ("softmax", "ce") else {}))
        extra = ({"form": self.form, "contrib": self.contrib} if self.rule == "temporal"
                 else {"secant": self.secant, "contrib": self.contrib})
        return get_rule(self.rule, eps=self.eps, reward=reward, weight_scaling=self.weight_scaling,
                        n_chunks=self.chunks, **extra)


HISTORY_COLUMNS = ("epoch", "train_accuracy", "running_train_accuracy", "train_loss", "test_accuracy",
                   "test_tie_rate", "spikes_per_sample", "synops_per_sample", "feedback_norm", "train_seconds",
                   "samples_per_s", "other_cpu_load", "lr")


class TrainingDiverged(ValueError):
    """The weights became NaN or infinite (a learning rate too large for the rule and data)."""


def count_cross_entropy(counts, labels, tau: float = 1.0) -> float:
    """Summed cross-entropy of ``softmax(counts / tau)`` against the labels: the loss the ``ce``
    reward's ``onehot - softmax`` ascends, as a number to watch (no rule uses its value)."""
    z = np.asarray(counts, np.float64) / tau
    m = z.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
    return float(np.sum(lse - z[np.arange(z.shape[0]), labels]))


def write_metrics_csv(path, history: list) -> None:
    """The per-epoch records as CSV (one row per epoch, :data:`HISTORY_COLUMNS`), atomically:
    what a spreadsheet, pandas or a plotting script reads (``metrics.json`` has the same)."""
    import csv

    from .io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HISTORY_COLUMNS)
        for h in history:
            w.writerow(["" if h.get(k) is None else h.get(k) for k in HISTORY_COLUMNS])


def input_shape(data):
    """A dataset's channels-last input shape (H, W, C) if it has one (camera datasets), else n_in."""
    shape = getattr(data, "input_shape", None)
    return tuple(shape) if shape is not None else data.n_in


PROBE_SEED = 20241127


def probe_batch(data, n: int = 64):
    """``n`` training samples drawn by a fixed generator (independent of the run's seed and never
    consuming it): the batch the init's activity is checked on. Drawn, not the first n, because
    datasets are often sorted by label (the first 64 would all be one class)."""
    k = min(n, len(data))
    return data.batch(np.sort(np.random.default_rng(PROBE_SEED).choice(len(data), size=k, replace=False)))


def activate_hidden(net: Network, probe, min_rate: float = 0.01, target: float = 0.05) -> Network:
    """Scale up hidden layers that are (nearly) silent at init on real input.

    LFP cannot wake a silent layer: no spikes, no feedback (docs/rules.md: "initialisation must keep
    every layer active"). For each hidden layer, bottom up, whose mean firing rate on ``probe``
    (spikes per neuron and step) is below ``min_rate``, the layer's weights (and bias) are
    multiplied by the factor (recurrent weights too), found by bisection on a log scale, that brings the rate to about
    ``target``. A hidden layer that is active but below ``target`` and too quiet to drive the next
    trainable hidden layer (that one silent on its input) is brought to ``target`` first, as a
    silent one is: otherwise a layer just above ``min_rate`` stays as drawn and the layer above is
    scaled up to make up for it, and which of the two happens would depend on the draw (a conv net's
    seed 0 ended with dense weights 8.5x their init, seeds 1 and 2 with 3x; docs/results.md).
    Every other layer, the output layer among them, is left exactly as drawn; no randomness is used.
    """
    from .events import EventBatch
    from .simulate import simulate

    out = net.copy()
    T = probe.n_steps
    hidden = [l for l in range(len(out) - 1) if getattr(out.layers[l], "trainable", True)]
    for i, l in enumerate(hidden):      # a pooling layer's fixed synapses stay as they are
        # The layers below l are final while l is searched: their spikes on the probe are computed
        # once, and each trial runs from layer l up (the same spikes, in the same order, as the
        # whole network's run: each layer sees only its input's spikes of the step).
        x = probe if l == 0 else EventBatch.from_dense(
            simulate(Network(out.layers[:l], dt=out.dt), probe, raster=True).rasters[-1])

        def rate(g, l=l, top=l, x=x):
            layers = [la.copy() for la in out.layers[l: top + 1]]
            _scale_layer(layers[0], g)
            return float(simulate(Network(layers, dt=out.dt), x).counts[-1].mean()) / T
        g = activation_factor(rate, hidden[i + 1] if i + 1 < len(hidden) else None, min_rate, target)
        if g is not None:
            _scale_layer(out.layers[l], g)
    return out


def activation_factor(rate, above, min_rate: float, target: float) -> float | None:
    """:func:`activate_hidden`'s decision for one hidden layer: the factor its weights are scaled by,
    or None to leave it as drawn. ``rate(g, top=None)``: the mean firing rate on the probe of the
    layer scaled by g (of hidden layer ``top`` above it, when given); ``above``: the next trained
    hidden layer, or None."""
    r = rate(1.0)
    if r >= target:
        return None
    if r >= min_rate and (above is None or rate(1.0, top=above) >= min_rate):
        return None                       # active, and its spikes drive the next hidden layer
    lo, hi = 1.0, 4.0                     # r = rate(1.0) < target: the search starts one step up
    while rate(hi) < target and hi < 1e4:
        lo, hi = hi, hi * 4.0
    for _ in range(20):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if rate(mid) < target else (lo, mid)
    return hi


def _scale_layer(layer, g: float) -> None:
    """Multiply every weight array of a layer by g, in place."""
    for a in (layer.weight, layer.bias, layer.recurrent):
        if a is not None:
            a *= g


def _progress_enabled(progress):
    return sys.stderr.isatty() if progress is None else bool(progress)


def evaluate(network: Network | Packed, data, batch_size: int = 256, *, quantize: str | None = None,
             weight_bits: int = 8) -> dict:
    """Accuracy, tie rate, mean spikes and SynOps per sample of ``network`` on an EventDataset.

    ``quantize="loihi"``: of its Loihi fixed-point run at ``weight_bits``
    (:func:`spikelfp.loihi.evaluate_fixed`; a model trained with ``TrainConfig.quantize`` is scored
    as it trained: ``config["quantize"]``, ``config["weight_bits"]``).

    SynOps count the synapses that carry a weight (a pruned synapse does no work on Loihi):
    presynaptic spikes times their non-zero fan-out (:func:`spikelfp.simulate.nonzero_synops`);
    for a network without zero weights this is the simulator's own count."""
    if quantize:
        from .loihi import pack_fixed
        from .loihi import quantize as to_loihi

        if isinstance(network, Packed):
            raise TypeError("evaluate(quantize=...) takes a Network")
        return evaluate_fixed(pack_fixed(to_loihi(network, bits=weight_bits)), data, batch_size)
    p = network if isinstance(network, Packed) else pack(network)
    return score(p, data, lambda eb, raster: simulate(p, eb, raster=raster), batch_size)


class Trainer:
    """Train a LIF network with LFP.

    Parameters
    ----------
    config : TrainConfig
    progress : bool or None
        Progress bars (None: only when stderr is a terminal).
    parallel : callable, optional
        A feedback executor factory, ``parallel(rule, packed, train)`` -> an object called as
        ``(packed, idx) -> Feedback`` with a ``close()`` (and a ``describe()`` for the log), used
        instead of ``rule.feedback`` on each batch; e.g. :class:`spikelfp.distributed.RayFeedback`
        (data-parallel on Ray workers, bit-identical at the same pinned ``config.chunks``). With
        ``config.quantize`` it is called as ``(dequantized, idx, fixed=FixedPacked)``: the forward
        is that Loihi integer run (``rule.parts(..., fixed=...)``).
    """

    def __init__(self, config: TrainConfig, progress: bool | None = None, *, parallel=None):
        self.config = config
        self.progress = _progress_enabled(progress)
        self.rule = config.make_rule()
        if parallel is not None and config.chunks is None:
            raise ValueError("data-parallel training needs a pinned chunking: set chunks (--chunks), the same for "
                             "every worker count, so that the result does not depend on it")
        self.parallel = parallel

    # ------------------------------------------------------------------ setup
    def init_network(self, n_in, n_out: int, rng: np.random.Generator, dt: float, probe=None) -> Network:
        """Random init (torch's Linear / Conv2d scheme) for ``config.arch``; ``n_in`` is the number
        of inputs or the input's (H, W, C) shape (conv layers need it). With a ``probe`` batch,
        silent hidden layers are scaled up (:func:`activate_hidden`). Draws from ``rng`` exactly
        as the plain init does."""
        c = self.config
        net = Network.from_arch(c.arch, n_in, n_out, seed=rng, beta=c.beta, threshold=c.threshold, reset=c.reset,
                                bias=c.bias, gain=c.init_gain, dt=dt)
        if probe is not None and c.init_min_rate > 0:
            net = activate_hidden(net, probe, c.init_min_rate)
        return net if c.dtype == "float64" else net.astype(c.dtype)

    def _optimizer(self, p: Packed, total_steps: int = 0):
        """The configured optimizer for ``p``; ``total_steps``: the whole run's steps (two-phase
        switches after ``round(switch * total_steps)`` of them)."""
        c = self.config
        if c.optimizer == "adam":
            return OPTIMIZERS["adam"](lr=c.lr)
        if c.optimizer == "neuron-adam":
            return OPTIMIZERS["neuron-adam"](lr=c.lr, segments={"WT": neuron_segments(p)})
        if c.optimizer == "two-phase":
            return OPTIMIZERS["two-phase"](lr=c.lr, segments={"WT": neuron_segments(p)},
                                           switch=round(c.switch * total_steps), total=total_steps)
        return OPTIMIZERS["sgd"](lr=c.lr, momentum=c.momentum)

    def evaluated(self, p: Packed, like: Network):
        """``data -> evaluate(...)`` for the current weights: in Loihi fixed point when the run
        trains quantized (the accuracy the exported model has on Lava ``fixed_pt``, bit for bit)."""
        bs = self.config.eval_batch_size
        if self.config.quantize:
            fx = fixed_of(p, like, bits=self.config.weight_bits)
            return lambda data: evaluate_fixed(fx, data, bs)
        return lambda data: evaluate(p, data, bs)

    def warm_up(self, p: Packed, data, like: Network | None = None) -> float:
        """Run every kernel a training run uses once on 2 samples (feedback, optimizer step,
        evaluation), so that JIT compilation is not counted in the first epoch's time; changes no
        state (copies of the weights, a fresh optimizer). Returns the seconds it took (~0 once
        numba's on-disk cache is warm)."""
        t0 = time.perf_counter()
        idx = np.arange(min(2, len(data)))
        with single_threaded_blas():
            if self.config.quantize and like is not None:
                pq, fx = quantized_training_pair(p, like, bits=self.config.weight_bits)
                self.rule.parts(pq, data.batch(idx), data.labels[idx], self.rule.bounds(idx.size), fixed=fx)
                evaluate_fixed(fx, data.subset(idx))
            fb = self.rule.feedback(p, data.batch(idx), data.labels[idx])
            params = {"WT": p.WT.copy(), "bias": p.bias.copy()}
            opt = self._optimizer(p, total_steps=2)         # two steps: two-phase runs one of each phase
            for _ in range(2):
                opt.step(params, {"WT": fb.weight_flat, "bias": fb.bias_flat}, lr=0.0, scale=-1.0 / idx.size)
            simulate(p, data.batch(idx))
        return time.perf_counter() - t0

    # ------------------------------------------------------------------ loop
    def fit(self, train, test, out_dir: str | None = None, *, resume: bool = False,
            binning: dict | None = None, log=None, epoch_callback=None, start: Network | None = None) -> dict:
        """Train for ``config.epochs`` epochs; evaluate and checkpoint after each.

        ``train``/``test``: :class:`~spikelfp.datasets.EventDataset` s, or raw event data (a tonic
        dataset, a sequence of (events, label), a torch Dataset/DataLoader of them), binned by
        :func:`spikelfp.datasets.as_event_datasets` on the train set's grid.
        ``start``: train this network (a copy, in ``config.dtype``) instead of a fresh
        initialisation (fine-tuning; with ``config.frozen_zeros`` its zero weights stay zero).

        ``epoch_callback(record)`` is called with each epoch's history record (after its
        checkpoint is written): ``spikelfp sweep`` reports to Ray Tune through it.
        Returns the metrics dict also written to ``out_dir/metrics.json``.
        """
        c = self.config
        log = log or (lambda msg: None)
        from .datasets.interop import as_event_datasets

        train, test, raw_binning = as_event_datasets(train, test)   # tonic / torch data: binned here, one grid
        binning = binning if binning is not None else (raw_binning or getattr(train, "binning", None))
        if train.n_in != test.n_in or train.n_classes != test.n_classes:
            raise ValueError("train and test sets differ in input size or classes")
        ckpt_path = os.path.join(out_dir, "model.h5") if out_dir else None
        rng = np.random.default_rng(c.seed)
        dt = (binning or {}).get("bin_us", 1000.0) * 1e-6
        history: list = []
        n = len(train)
        steps_per_epoch = math.ceil(n / c.batch_size)
        if resume and start is not None:
            raise ValueError("fit: resume continues the checkpoint's own network; start= cannot be given too")
        if resume:
            if not ckpt_path or not os.path.exists(ckpt_path):
                raise FileNotFoundError(f"--resume: no checkpoint at {ckpt_path}")
            ck = load_checkpoint(ckpt_path)
            saved = TrainConfig.from_dict(ck.config)
            for k in ("arch", "rule", "reward", "contrib", "optimizer", "batch_size", "seed", "dataset", "reset",
                      "frozen_zeros", "quantize", "quantize_scale", "weight_bits"):
                if getattr(saved, k) != getattr(c, k):
                    raise ValueError(f"--resume: checkpoint was trained with {k}={getattr(saved, k)!r}, "
                                     f"this run asks for {getattr(c, k)!r}")
            net = ck.network.astype(c.dtype)
            history = list(ck.history)
            if history and not (ck.optimizer and ck.rng_state):
                raise ValueError(f"--resume: {ckpt_path} lacks the optimizer or random-generator state, so the "
                                 "run cannot continue exactly; start a new run")
            p = pack(net)
            opt = self._optimizer(p, steps_per_epoch * c.epochs)
            if ck.optimizer:
                try:
                    opt.load_state_dict(ck.optimizer, {"WT": p.WT, "bias": p.bias})
                except (ValueError, KeyError, TypeError) as e:
                    raise ValueError(f"--resume: {ckpt_path}: unusable optimizer state ({e})") from None
            if ck.rng_state:
                try:
                    rng.bit_generator.state = ck.rng_state
                except (ValueError, KeyError, TypeError) as e:
                    raise ValueError(f"--resume: {ckpt_path}: corrupt random-generator state ({e})") from None
            log(f"resuming from epoch {len(history)} of {c.epochs}")
        else:
            if start is not None:
                if start.n_in != train.n_in or start.n_out != train.n_classes:
                    raise ValueError(f"fit: the start network has {start.n_in} inputs / {start.n_out} outputs, the "
                                     f"data {train.n_in} / {train.n_classes}")
                net = start.astype(c.dtype)
            else:
                net = self.init_network(input_shape(train), train.n_classes, rng, dt, probe=probe_batch(train))
            p = pack(net)
            opt = self._optimizer(p, steps_per_epoch * c.epochs)
        params = {"WT": p.WT, "bias": p.bias}
        frozen = np.flatnonzero(p.WT == 0) if c.frozen_zeros else None   # the pruned synapses
        sched = make_schedule(c.schedule, c.lr, steps_per_epoch * c.epochs)
        bar = None
        if self.progress:
            from .progress import progress_bar
            bar = progress_bar(total=c.epochs * steps_per_epoch, initial=len(history) * steps_per_epoch,
                               desc=f"train {c.rule}", unit="batch", leave=False)
        t_train = sum(h.get("train_seconds", 0.0) for h in history)
        t0_all = time.perf_counter()
        if ckpt_path:        # what each epoch will write is checked now, not after the first epoch's work
            check_checkpoint(Checkpoint(network=net, config=c.to_dict(), history=history, binning=binning,
                                        dataset=c.dataset, seed=c.seed, optimizer=opt.state_dict(),
                                        rng_state=rng.bit_generator.state))
        compile_s = self.warm_up(p, train, net)
        run_meter = OtherLoad(start=False)   # other processes' CPU share over all timed epochs
        if compile_s > 1.0:
            log(f"compiled the numba kernels in {compile_s:.1f} s (cached for later runs)")
        parallel = None
        try:
            if self.parallel is not None:
                parallel = self.parallel(self.rule, p, train)
                describe = getattr(parallel, "describe", None)
                log(f"{describe() if describe else 'parallel feedback'} ({c.chunks} chunks per batch)")
            with single_threaded_blas():
                for epoch in range(len(history), c.epochs):
                    perm = rng.permutation(n)
                    meter = OtherLoad()
                    run_meter.start()
                    t0 = time.perf_counter()
                    run_correct, run_loss, fb_norm = 0, 0.0, 0.0
                    # scales held through the epoch: those of its first step's weights, a layer's re-derived
                    # at the step its largest weight outgrows them (so that no weight saturates)
                    hold = hold_of(p, net, c.weight_bits) if c.quantize and c.quantize_scale == "epoch" else None
                    for s in range(steps_per_epoch):
                        idx = perm[s * c.batch_size: (s + 1) * c.batch_size]
                        if c.quantize:               # LFP on the Loihi run of the re-quantized weights
                            if hold is not None:     # a layer that outgrew its held scale: re-derived
                                hold = refresh_hold(p, net, hold)
                            pq, fx = quantized_training_pair(p, net, hold, bits=c.weight_bits)
                            if parallel is not None:
                                fb = parallel(pq, idx, fixed=fx)
                            else:
                                fb = self.rule.reduce(pq, self.rule.parts(pq, train.batch(idx), train.labels[idx],
                                                                          self.rule.bounds(idx.size), fixed=fx))
                        elif parallel is not None:
                            fb = parallel(p, idx)
                        else:
                            fb = self.rule.feedback(p, train.batch(idx), train.labels[idx])
                        B = idx.size
                        fb_norm += math.sqrt(float(np.dot(fb.weight_flat, fb.weight_flat))
                                             + float(np.dot(fb.bias_flat, fb.bias_flat))) / B
                        # ascent direction F -> gradient -F/B, scaled inside the optimizer (no copy)
                        grads = {"WT": fb.weight_flat, "bias": fb.bias_flat}
                        if c.clip:
                            grads = {k: g * (-1.0 / B) for k, g in grads.items()}
                            clip_grad_norm(grads, c.clip)
                            opt.step(params, grads, lr=sched(opt.steps))
                        else:
                            opt.step(params, grads, lr=sched(opt.steps), scale=-1.0 / B)
                        if frozen is not None:
                            p.WT[frozen] = 0.0
                        run_correct += int(np.sum(predict(fb.output_counts) == train.labels[idx]))
                        run_loss += count_cross_entropy(fb.output_counts, train.labels[idx], c.tau)
                        if bar is not None:
                            bar.update(1)
                    train_s = time.perf_counter() - t0
                    if not (np.all(np.isfinite(p.WT)) and np.all(np.isfinite(p.bias))):
                        raise TrainingDiverged(
                            f"training diverged in epoch {epoch + 1}: the weights became NaN or infinite "
                            f"({c.optimizer}, lr {c.lr:g}); a smaller --lr (or --clip) trains"
                            + ("; the checkpoint of the last good epoch is kept" if ckpt_path and history else ""))
                    other_load = meter.stop()
                    run_meter.stop()
                    t_train += train_s
                    at = self.evaluated(p, net)          # quantized once for both splits
                    ev_test, ev_train = at(test), at(train)
                    rec = {"epoch": epoch + 1, "train_accuracy": ev_train["accuracy"],
                           "running_train_accuracy": run_correct / n, "train_loss": run_loss / n,
                           "test_accuracy": ev_test["accuracy"], "test_tie_rate": ev_test["tie_rate"],
                           "spikes_per_sample": ev_test["spikes_per_sample"],
                           "synops_per_sample": ev_test["synops_per_sample"],
                           "feedback_norm": fb_norm / steps_per_epoch, "train_seconds": train_s,
                           "samples_per_s": n / train_s, "other_cpu_load": other_load,
                           "lr": opt.rate(sched(last := max(0, opt.steps - 1)), last)}
                    history.append(rec)
                    log(f"epoch {epoch + 1}/{c.epochs}: train {rec['train_accuracy']:.4f}  "
                        f"test {rec['test_accuracy']:.4f}  ({train_s:.1f} s, {n / train_s:.0f} samples/s)")
                    if ckpt_path:
                        save_checkpoint(ckpt_path, Checkpoint(
                            network=unpack(p, dt=net.dt, like=net), config=c.to_dict(), history=history,
                            binning=binning, dataset=c.dataset, seed=c.seed,
                            optimizer=opt.state_dict(), rng_state=rng.bit_generator.state))
                        write_metrics_csv(os.path.join(out_dir, "metrics.csv"), history)
                    if epoch_callback is not None:
                        epoch_callback(dict(rec))
        finally:
            if bar is not None:
                bar.close()
            if parallel is not None:
                parallel.close()
        self.network = unpack(p, dt=net.dt, like=net)
        last = history[-1]
        metrics = {
            "dataset": c.dataset, "rule": c.rule,
            "test_accuracy": last["test_accuracy"], "train_accuracy": last["train_accuracy"],
            "test_tie_rate": last["test_tie_rate"], "epochs": len(history),
            "wall_s": time.perf_counter() - t0_all,
            "compile_seconds": compile_s,
            "train_seconds": t_train,
            "seconds_per_epoch": t_train / len(history),
            "samples_per_s": n * len(history) / t_train,
            "other_cpu_load": run_meter.share(),     # this call's epochs (None: too short to tell)
            "spikes_per_sample": last["spikes_per_sample"],
            "synops_per_sample": last["synops_per_sample"],
            "n_train": n, "n_test": len(test), "config": c.to_dict(), "binning": binning,
            "history": history,
        }
        if out_dir:
            write_json(os.path.join(out_dir, "metrics.json"), metrics)
        return metrics
