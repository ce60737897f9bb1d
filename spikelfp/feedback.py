"""LFP feedback: rewards and rules as small named objects over jitted kernels (docs/rules.md).

A *reward* says how good the output spikes were; a *rule* propagates it from the output down
through the layers and returns per-connection feedback ``F`` (an ascent direction; the trainer
steps along ``-F / batch_size`` with its optimizer). No derivative of the Heaviside is used.

* :class:`Temporal` (Rule B, default) -- the paper's temporal membrane rule.
* :class:`SpikeCount` (Rule A) -- the window as a rate network, one matmul per layer.

Example
-------
>>> import numpy as np, spikelfp
>>> net = spikelfp.Network.random([4, 3, 2], seed=0, gain=3.0)
>>> x = (np.random.default_rng(0).random((2, 5, 4)) < 0.5).astype(np.uint8)
>>> fb = spikelfp.Temporal().feedback(net, x, np.array([0, 1]))
>>> [w.shape for w in fb.weight]
[(3, 4), (2, 3)]
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .blas import single_threaded_blas
from .events import EventBatch, as_event_batch
from .kernels.feedback import (
    CONTRIB_GRADED,
    CONTRIB_SPIKES,
    FORM_CARRY,
    FORM_PAPER,
    REWARD_CE,
    REWARD_EXPLAIN,
    REWARD_RATE,
    REWARD_SOFTMAX,
    SECANT_BOUNDED,
    SECANT_SIGNED,
    spike_count_feedback,
    temporal_feedback,
    temporal_workspace,
)
from .kernels.optim import scale_by_abs
from .network import Network
from .packed import Packed, layer_view, pack, recurrent_view
from .scratch import scratch


@dataclass(frozen=True)
class RateReward:
    """The paper's rate-coded SNN reward (N = output spike count, T steps).

    Temporal rule: true class ``g[t] = 1 - sigmoid(N - T//2)`` at every step; wrong class
    ``g[t] = -s[t] (1 - sigmoid((T - N) - T//2))``. Spike-count rule: its time average.
    """

    name = "rate"
    kind = REWARD_RATE
    tau: float = 1.0  # unused; keeps one kernel signature


@dataclass(frozen=True)
class SoftmaxReward:
    """SoftmaxLoss-style reward on counts: ``onehot(y) - softmax(N / tau)``.

    Temporal rule: true class gets ``1 - p_y`` at every step, a wrong class ``-p_k`` at its spikes.
    """

    tau: float = 2.0
    name = "softmax"
    kind = REWARD_SOFTMAX

    def __post_init__(self):
        if not self.tau > 0:
            raise ValueError(f"softmax reward needs tau > 0 (got {self.tau})")


@dataclass(frozen=True)
class CEReward:
    """Cross-entropy on spike counts (the counts are the logits): ``onehot(y) - softmax(N / tau)``.

    Temporal rule: every output neuron gets its ``onehot_k - p_k`` at **every** step, true and
    wrong classes alike, given in membrane units (``membrane=True``, the default): the reward of
    step t is ``(onehot_k - p_k) * D_k[t]``, so the output layer's rho is exactly the
    cross-entropy gradient plus the reward carried back in time -- the spiking analogue of the
    LFP paper's ANN reward ``logits * (onehot - softmax)``. Spike-count rule: ``R = z (onehot - p)``,
    the same as :class:`SoftmaxReward`. See docs/rules.md for why (measured).
    """

    tau: float = 1.0
    membrane: bool = True
    name = "ce"
    kind = REWARD_CE

    def __post_init__(self):
        if not self.tau > 0:
            raise ValueError(f"ce reward needs tau > 0 (got {self.tau})")


@dataclass(frozen=True)
class ExplainReward:
    """The true class's explanation, ``onehot(y)`` (at every step in the temporal rule): the reward
    whose feedback is the LFP relevance of every connection for the correct output, the criterion
    of relevance pruning (:mod:`spikelfp.prune`). Not a training reward (it never says "less"),
    so not in :data:`REWARDS`."""

    tau: float = 1.0  # unused; keeps one kernel signature
    membrane: bool = True   # temporal rule: in membrane units, as the ce reward (docs/rules.md)
    name = "explain"
    kind = REWARD_EXPLAIN


REWARDS = {"rate": RateReward, "softmax": SoftmaxReward, "ce": CEReward}


FORMS = {"carry": FORM_CARRY, "paper": FORM_PAPER}
SECANTS = {"signed": SECANT_SIGNED, "bounded": SECANT_BOUNDED}
CONTRIBS = {"graded": CONTRIB_GRADED, "spikes": CONTRIB_SPIKES}


@dataclass(frozen=True)
class Feedback:
    """Per-layer feedback of one batch (summed over samples), and diagnostics.

    Attributes
    ----------
    weight_flat, bias_flat : arrays in packed layout (see :mod:`spikelfp.packed`)
        F_W = |W| * sum(rho x) and F_b = |b| * sum(rho) (without |.| when weight_scaling is off).
        F_W in the weights' dtype (float32 nets: accumulated in float32, as a float32 gradient
        is), F_b in float64.
    counts : int32 array (B, sum n_l)
        Spike counts of every layer (the forward pass the feedback was computed on).
    received, passed : float arrays (sum n_l,), or None
        Per neuron, summed |reward received| and |reward passed on|: what
        :func:`check_conservation` reads. Only from a rule made with ``conservation=True`` (a
        debugging aid: the temporal rule's backward spends 5-10 % more on them); None otherwise.
    packed : Packed
        The network the feedback belongs to.
    """

    weight_flat: np.ndarray
    bias_flat: np.ndarray
    counts: np.ndarray
    received: np.ndarray | None
    passed: np.ndarray | None
    packed: Packed

    @property
    def weight(self) -> list[np.ndarray]:
        """F_W per layer, (n_out, n_in) views."""
        return [layer_view(self.packed, self.weight_flat, l) for l in range(len(self.packed.sizes) - 1)]

    @property
    def recurrent(self) -> list[np.ndarray | None]:
        """F_V per layer, (n_out, n_out) views (None for feed-forward layers)."""
        return [recurrent_view(self.packed, self.weight_flat, l) for l in range(len(self.packed.sizes) - 1)]

    @property
    def bias(self) -> list[np.ndarray]:
        """F_b per layer (a conv layer: per output channel)."""
        p = self.packed
        return [self.bias_flat[p.n_off[l]: p.n_off[l] + (int(p.conv[l, 2]) if p.conv[l, 0] else
                                                        int(p.n_off[l + 1] - p.n_off[l]))]
                for l in range(len(p.sizes) - 1)]

    @property
    def output_counts(self) -> np.ndarray:
        return self.counts[:, self.packed.n_off[-2]:]


def tie_conv_bias(p: Packed, Gb: np.ndarray) -> None:
    """A conv layer's bias is one value per channel, stored at every output position: give every
    position the channel's summed feedback, in place, so that the copies stay equal under any
    element-wise optimizer (docs/layers.md)."""
    for l in np.flatnonzero(p.conv[:, 0]):
        if p.has_bias[l]:
            seg = Gb[p.n_off[l]: p.n_off[l + 1]].reshape(-1, int(p.conv[l, 2]))
            seg[:] = seg.sum(axis=0)


class ConservationError(AssertionError):
    pass


def check_conservation(fb: Feedback, rtol: float = 1e-9) -> None:
    """Raise :class:`ConservationError` if any neuron passed on more reward than it received.

    Both rules are non-expansive per neuron: temporal, ``sum_t |I rho| <= sum_t |g|``; spike-count,
    ``|z rho| = |R| |z| / |z + eps sign z| <= |R|``.
    """
    if fb.received is None or fb.passed is None:
        raise ValueError("this feedback carries no conservation sums: make the rule with "
                         "conservation=True (e.g. Temporal(conservation=True)) to check it")
    bad = fb.passed > fb.received * (1 + rtol) + 1e-300
    if np.any(bad):
        k = int(np.argmax(fb.passed - fb.received))
        raise ConservationError(
            f"{int(bad.sum())} neurons pass on more reward than they receive "
            f"(worst: neuron {k}, passed {fb.passed[k]:.6g} > received {fb.received[k]:.6g})")


def _check_eps(rule) -> None:
    """A rule's eps keeps its divisions (rho = R / (... + eps)) away from zero: it must be > 0."""
    if not (isinstance(rule.eps, numbers.Real) and rule.eps > 0 and math.isfinite(rule.eps)):
        raise ValueError(f"{rule.name} rule: eps must be > 0 and finite (got {rule.eps!r})")


class Rule:
    """Base of the feedback rules: ``feedback(network, x, labels) -> Feedback``."""

    name = "rule"
    eps: float
    reward: RateReward | SoftmaxReward | CEReward
    weight_scaling: bool
    conservation: bool

    def bounds(self, B: int) -> np.ndarray:
        """Chunk boundaries of a batch of B samples (chunk c: samples bounds[c]:bounds[c+1])."""
        n = getattr(self, "n_chunks", None)
        return chunk_bounds(B, max(1, min(n or self._default_chunks(), B)))

    def _default_chunks(self) -> int:
        return 1

    def parts(self, p: Packed, eb: EventBatch, y: np.ndarray, bounds: np.ndarray) -> ChunkParts:
        """The feedback of each chunk of the batch, unreduced (subclasses)."""
        raise NotImplementedError

    def reduce(self, p: Packed, parts: ChunkParts) -> Feedback:
        """Sum the chunks' feedback in chunk order (reproducible bits) and finish it (|W| factor,
        tied conv biases, fixed pooling synapses). Consumes ``parts``: the sums go into, and the
        Feedback's arrays are, their first chunk's rows."""
        return self._finish(p, _sum_rows(parts.GT), _sum_rows(parts.Gb), parts.counts, _sum_rows(parts.recv),
                            _sum_rows(parts.passed))

    def feedback(self, network, x: EventBatch, labels, *, time_first: bool = False) -> Feedback:
        """Feedback of one batch: ``reduce(parts(...))`` over :meth:`bounds`."""
        p, eb, y = self._inputs(network, x, labels, time_first)
        return self.reduce(p, self.parts(p, eb, y, self.bounds(eb.batch_size)))

    def _finish(self, p: Packed, GT, Gb, counts, recv, passed) -> Feedback:
        tie_conv_bias(p, Gb)
        for l in np.flatnonzero((p.conv[:, 0] == 1) & (p.conv[:, 9] == 0)):
            GT[p.w_off[l]: p.w_off[l + 1]] = 0.0     # a pooling layer's fixed synapses are not trained
        if self.weight_scaling:          # F = |W| * G, in place on our own buffers
            scale_by_abs(GT, p.WT)
            scale_by_abs(Gb, p.bias)
        if not self.conservation:
            recv = passed = None
        return Feedback(GT, Gb, counts, recv, passed, p)

    @staticmethod
    def _inputs(network, x, labels, time_first=False):
        p = network if isinstance(network, Packed) else pack(network)
        eb = as_event_batch(x, int(p.sizes[0]), time_first)
        y = np.ascontiguousarray(labels, dtype=np.int64)
        if y.shape != (eb.batch_size,):
            raise ValueError(f"labels must have shape ({eb.batch_size},); got {y.shape}")
        n_cls = int(p.sizes[-1])
        if y.size and (y.min() < 0 or y.max() >= n_cls):
            raise ValueError(f"labels must lie in [0, {n_cls}) for a network with {n_cls} outputs")
        return p, eb, y


_NO_FIXED = None


def _fixed_args(fixed) -> tuple:
    """The kernel's fixed-point arguments: the run's integer arrays, or typed placeholders."""
    global _NO_FIXED
    if fixed is not None:
        return (True, fixed.WT, fixed.wexp, fixed.du, fixed.dv, fixed.vth, fixed.bias, fixed.scale)
    if _NO_FIXED is None:      # the dtypes of a FixedPacked's (int32 weights): one compiled kernel for both runs
        i1 = np.zeros(1, np.int64)
        _NO_FIXED = (False, np.zeros(1, np.int32), i1, i1, i1, i1, i1, np.ones(1, np.float64))
    return _NO_FIXED


@dataclass(frozen=True)
class Temporal(Rule):
    """Rule B, the temporal membrane rule (the paper's SNN rule; the default).

    Per layer, for t = T..1 (c = carry actually added at t, I = W x + b)::

        A[t] = g[t] + C[t+1];  rho[t] = A[t] / (|c[t]| + |I[t]| + eps);  C[t] = c[t] rho[t]
        F_W += |W| * (rho[t] outer x[t]);  F_b += |b| rho[t];  g_below[t] = x~[t] * (W^T rho[t])

    x[t] is the layer's input spikes. x~[t] = x[t] with ``contrib="spikes"`` (the paper's); with
    ``"graded"`` (default), below a dense layer, a dense/recurrent neuron that is silent at t counts
    clip(v[t]/theta, 0, 1), its membrane's fraction of threshold (docs/rules.md).

    Parameters
    ----------
    eps : float
        Stabiliser of the unsigned denominator.
    reward : RateReward or SoftmaxReward
    weight_scaling : bool
        Multiply by |W| (the paper's implicit weight scaling).
    n_chunks : int or None
        Split of each batch into chunks accumulated in parallel, one feedback buffer each; None
        (default) uses numba's thread count. Results are bit-reproducible for a given value (so,
        by default, for a given thread count); pin it to reproduce bits across machines.
    conservation : bool
        Also sum, per neuron, |reward received| and |reward passed on| (``Feedback.received`` /
        ``.passed``, what :func:`check_conservation` checks). Off by default: a debugging aid, and
        the backward's per-neuron step is 5-10 % of a conv net's step slower with it.
    """

    eps: float = 1e-6
    reward: RateReward | SoftmaxReward | CEReward = CEReward()
    weight_scaling: bool = True
    n_chunks: int | None = None
    form: str = "carry"
    contrib: str = "graded"
    conservation: bool = False
    name = "temporal"

    def __post_init__(self):
        _check_eps(self)
        if self.form not in FORMS:
            raise ValueError(f"unknown temporal-rule form {self.form!r}; choose one of {', '.join(FORMS)}")
        if self.contrib not in CONTRIBS:
            raise ValueError(f"unknown temporal-rule contribution {self.contrib!r}; choose one of "
                             f"{', '.join(CONTRIBS)}")

    def _default_chunks(self) -> int:
        import numba

        return numba.get_num_threads()

    def parts(self, p: Packed, eb: EventBatch, y: np.ndarray, bounds: np.ndarray, fixed=None) -> ChunkParts:
        """``fixed`` (a :class:`spikelfp.loihi.FixedPacked`): the forward is that Loihi integer run
        and ``p`` its dequantized float view (``spikelfp.loihi.quantized_training_pair``)."""
        B, T = eb.batch_size, eb.n_steps
        n_tot, n_w = int(p.n_off[-1]), int(p.w_off[-1])
        nc = bounds.size - 1
        counts = np.zeros((B, n_tot), dtype=np.int32)
        GT = np.zeros((nc, n_w), dtype=p.WT.dtype)   # F_W in the weights' dtype (float32: half the traffic)
        Gb = np.zeros((nc, n_tot))
        recv = np.zeros((nc, n_tot))
        passed = np.zeros((nc, n_tot))
        # work buffers kept across batches (spikelfp.scratch): sized by temporal_workspace, the grouped
        # events of layer 0 by this batch (a sub-batch of S samples never holds more)
        ev = np.diff(eb.indptr[:: T]) if B else np.zeros(1, np.int64)
        nf, nws, ni, S = temporal_workspace(T, p.sizes, p.WT.itemsize, 0)
        n_in0 = int(p.sizes[0])
        big = int(ev.max(initial=0))
        ni += max(big, min(int(ev.sum()), S * T * n_in0, max(1 << 26, big)), 1)
        temporal_feedback(eb.indptr, eb.indices, y, B, T, p.sizes, p.w_off, p.WT, p.n_off, p.bias,
                          p.has_bias, p.beta, p.theta, p.reset, p.rec, p.conv, p.ct_ptr, p.ct_out, p.ct_k, self.eps,
                          self.reward.kind,
                          float(self.reward.tau), bool(getattr(self.reward, "membrane", False)), FORMS[self.form],
                          CONTRIBS[self.contrib],
                          np.ascontiguousarray(bounds, dtype=np.int64), counts, GT, Gb, recv, passed,
                          bool(self.conservation),
                          scratch("temporal.f", nc, nf, np.float64), scratch("temporal.w", nc, nws, p.WT.dtype),
                          scratch("temporal.i", nc, ni, np.int32), *_fixed_args(fixed))
        return ChunkParts(GT, Gb, counts, recv, passed)


@dataclass(frozen=True)
class SpikeCount(Rule):
    """Rule A, the spike-count rule: the window as a rate network (docs/rules.md).

    ``z = a W^T + T b`` (a = presynaptic counts); ``rho_out = reward(N_out)``; per layer
    ``F_W = |W| * (rho^T a)``, ``R_below = a~ * (rho W)``, ``rho_below = R_below / (z + eps sign z)``
    (bounded secant: ``/ (max(|z|, theta a~) + eps)`` where a~ > 0). ``a~`` = a with
    ``contrib="spikes"``; with ``"graded"`` (default) a dense/recurrent layer's graded counts, the sum
    over t of 1 (spike) or clip(v[t]/theta, 0, 1) (docs/rules.md).
    """

    eps: float = 1e-6
    reward: RateReward | SoftmaxReward | CEReward = CEReward()
    weight_scaling: bool = True
    secant: str = "bounded"
    n_chunks: int | None = None     # None: the whole batch in one chunk; k: k chunks summed in order
    contrib: str = "graded"
    conservation: bool = False      # Feedback.received / .passed (check_conservation); see Temporal
    name = "spike-count"

    def __post_init__(self):
        _check_eps(self)
        if self.secant not in SECANTS:
            raise ValueError(f"unknown spike-count secant {self.secant!r}; choose one of {', '.join(SECANTS)}")
        if self.contrib not in CONTRIBS:
            raise ValueError(f"unknown spike-count contribution {self.contrib!r}; choose one of "
                             f"{', '.join(CONTRIBS)}")

    def parts(self, p: Packed, eb: EventBatch, y: np.ndarray, bounds: np.ndarray, fixed=None) -> ChunkParts:
        """``fixed`` (a :class:`spikelfp.loihi.FixedPacked`): counts and sums come from that Loihi
        integer run and ``p`` is its dequantized float view (as for :meth:`Temporal.parts`)."""
        from .simulate import run_forward

        graded = self.contrib == "graded" and len(p.sizes) > 2
        # the forward sums z (the feed-forward input current) and the graded counts (1 at a spike, else
        # clip(v/theta, 0, 1)) over t itself; the kernel reads the graded counts only where a dense layer
        # sits above a dense/recurrent one
        if fixed is not None:
            from .loihi import fixed_count_sums

            counts, sums = fixed_count_sums(fixed, eb)
            mem = sums.astype(p.WT.dtype)
        else:
            counts, _, mem, _ = run_forward(p, eb, count_sums=True, graded=graded)
        a_in = eb.counts(p.WT.dtype)
        zin = mem[:, 1, :]
        credit = mem[:, 0, :] if graded else np.zeros((0, 0), dtype=p.WT.dtype)   # (0, 0): spike credit
        n_tot, n_w = int(p.n_off[-1]), int(p.w_off[-1])
        nc = bounds.size - 1
        GT = np.zeros((nc, n_w), dtype=p.WT.dtype)   # the matmuls' own dtype: written in place, no copy
        Gb = np.zeros((nc, n_tot))
        recv = np.zeros((nc, n_tot))
        passed = np.zeros((nc, n_tot))
        with single_threaded_blas():     # its np.dot: one BLAS thread, whoever calls (speed and bits)
            for c in range(nc):          # each chunk on its own samples: the same bits wherever it runs
                lo, hi = int(bounds[c]), int(bounds[c + 1])
                spike_count_feedback(np.ascontiguousarray(a_in[lo:hi]), np.ascontiguousarray(counts[lo:hi]),
                                     np.ascontiguousarray(credit[lo:hi]) if graded else credit,
                                     np.ascontiguousarray(zin[lo:hi]), y[lo:hi],
                                     eb.n_steps, p.sizes, p.w_off, p.WT, p.n_off, p.has_bias, p.theta, p.rec,
                                     p.conv, p.ct_ptr, p.ct_out, p.ct_k, self.eps, self.reward.kind,
                                     float(self.reward.tau), SECANTS[self.secant], GT[c], Gb[c], recv[c], passed[c])
        return ChunkParts(GT, Gb, counts, recv, passed)


class ChunkParts(NamedTuple):
    """A batch's feedback per chunk, before the ordered sum: GT (chunks, n_weights), Gb / recv /
    passed (chunks, n_neurons), counts (batch, n_neurons)."""

    GT: np.ndarray
    Gb: np.ndarray
    counts: np.ndarray
    recv: np.ndarray
    passed: np.ndarray


def chunk_bounds(B: int, n_chunks: int) -> np.ndarray:
    """``[c * B // n_chunks for c in 0..n_chunks]``: the pinned split of a batch into chunks."""
    return np.array([c * B // n_chunks for c in range(n_chunks + 1)], dtype=np.int64)


def _sum_rows(a: np.ndarray) -> np.ndarray:
    """The rows of ``a`` summed in row order, into (and returned as) its first row: the chunk
    buffers belong to this batch's parts, so no copy of a weight-sized array is made per batch."""
    out = a[0]
    for k in range(1, a.shape[0]):
        out += a[k]
    return out


RULES = {"temporal": Temporal, "spike-count": SpikeCount}


def get_rule(name: str, **kwargs) -> Rule:
    """Build a rule by its registry name (``temporal`` or ``spike-count``)."""
    try:
        cls = RULES[name]
    except KeyError:
        raise ValueError(f"unknown rule {name!r}; choose one of {', '.join(RULES)}") from None
    return cls(**kwargs)


def get_reward(name: str, **kwargs):
    try:
        cls = REWARDS[name]
    except KeyError:
        raise ValueError(f"unknown reward {name!r}; choose one of {', '.join(REWARDS)}") from None
    return cls(**kwargs)


__all__ = ["Temporal", "SpikeCount", "RateReward", "SoftmaxReward", "CEReward", "ExplainReward", "Feedback", "RULES",
           "REWARDS", "check_conservation", "get_rule", "get_reward", "Network"]
