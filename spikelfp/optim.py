"""Optimizers and learning-rate schedules over flat parameter buffers.

LFP feedback F is an ascent direction; the trainer hands the optimizers ``grad = -F / batch_size``.

Example
-------
>>> import numpy as np
>>> from spikelfp.optim import Adam
>>> w = np.ones(3); opt = Adam(lr=0.1)
>>> opt.step({"w": w}, {"w": np.array([1.0, -1.0, 0.0])}); np.round(w, 3).tolist()
[0.9, 1.1, 1.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .kernels.optim import adam_step, neuron_adam_step, sgd_step


class Optimizer:
    name = "optimizer"

    def __init__(self, lr: float):
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"learning rate must be > 0 (got {lr})")
        self.lr = float(lr)
        self.steps = 0
        self.buffers: dict[str, np.ndarray] = {}

    def _buf(self, key, like):
        b = self.buffers.get(key)
        if b is None or b.shape != like.shape:
            b = self.buffers[key] = np.zeros(like.shape, dtype=np.float64)
        return b

    def buffer_shape(self, key: str, params: dict) -> tuple:
        """The shape buffer ``key`` (``<param>.<kind>``) must have for ``params``."""
        return params[key.rsplit(".", 1)[0]].shape

    def rate(self, lr: float, step: int) -> float:
        """The learning rate step ``step`` (0-based) applies when passed ``lr`` (what a run records)."""
        return lr

    def state_dict(self) -> dict:
        return {"state": {"name": self.name, "steps": self.steps, "lr": self.lr},
                "arrays": {k: v.copy() for k, v in self.buffers.items()}}

    def load_state_dict(self, d: dict, params: dict | None = None) -> None:
        """Restore a :meth:`state_dict`; with ``params``, every buffer must match its parameter's
        shape (a mismatch would silently restart the moments: resume would not be exact)."""
        st = d.get("state", {})
        if st.get("name", self.name) != self.name:
            raise ValueError(f"optimizer state is for {st.get('name')!r}, not {self.name!r}")
        buffers = {k: np.array(v, dtype=np.float64) for k, v in d.get("arrays", {}).items()}
        if params is not None:
            for key, b in buffers.items():
                name = key.rsplit(".", 1)[0]
                if name not in params or b.shape != self.buffer_shape(key, params):
                    raise ValueError(f"optimizer state {key!r} has shape {b.shape}, the parameter "
                                     f"{name!r} {getattr(params.get(name), 'shape', None)}")
        self.steps = int(st.get("steps", 0))
        self.buffers = buffers


class Adam(Optimizer):
    """Adam (torch's form); default lr 1e-3 as docs/rules.md gives for LFP."""

    name = "adam"

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(lr)
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"Adam betas must lie in [0, 1) (got {betas})")
        if not (self.eps > 0 and math.isfinite(self.eps)):
            raise ValueError(f"Adam eps must be > 0 and finite (got {eps}): it keeps the step's "
                             "denominator away from zero")

    def step(self, params: dict, grads: dict, lr: float | None = None, scale: float = 1.0) -> None:
        """Update ``params`` in place with gradients ``scale * grads``."""
        self.steps += 1
        lr = self.lr if lr is None else lr
        for k, w in params.items():
            g = _grad(grads, k, w)
            adam_step(w, g, self._buf(k + ".m", w), self._buf(k + ".v", w), lr, self.betas[0],
                      self.betas[1], self.eps, self.steps, scale)


class NeuronAdam(Adam):
    """Adam with one second moment per neuron: the optimizer that keeps LFP's |W| factor.

    LFP's feedback to a weight is ``F_ji = |w_ji| G_ji``. Adam divides each element's step by its
    own running RMS, ``sqrt(E[F_ji^2]) ~ |w_ji| sqrt(E[G_ji^2])``: the |W| factor cancels and the
    implicit weight scaling (the paper's source of sparse, prunable models) never acts
    (docs/rules.md, "The |W| factor and the optimizer", measured). Here the second moment is
    shared by the fan-in of each neuron (a conv layer: each output channel), ``v_j = E[mean_i
    F_ji^2]``: the step still adapts to how much reward neuron j receives, but the relative
    sizes of its weights' feedback -- |W| included -- are kept. Biases (one per neuron) step as in
    Adam.

    ``segments``: per parameter name, the (n_seg, 4) blocks of :func:`spikelfp.packed.neuron_segments`
    (parameters without an entry step as in Adam). Its ``v`` buffer has one entry per neuron.
    """

    name = "neuron-adam"

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, segments: dict | None = None):
        super().__init__(lr, betas, eps)
        self.segments = {k: np.ascontiguousarray(s, dtype=np.int64) for k, s in (segments or {}).items()}

    def step(self, params: dict, grads: dict, lr: float | None = None, scale: float = 1.0) -> None:
        """Update ``params`` in place with gradients ``scale * grads``."""
        self.steps += 1
        lr = self.lr if lr is None else lr
        for k, w in params.items():
            g = _grad(grads, k, w)
            seg = self.segments.get(k)
            if seg is None:
                adam_step(w, g, self._buf(k + ".m", w), self._buf(k + ".v", w), lr, self.betas[0], self.betas[1],
                          self.eps, self.steps, scale)
                continue
            v = self._buf(k + ".v", np.empty(int(seg[:, 2].sum())))
            neuron_adam_step(w, g, self._buf(k + ".m", w), v, seg, lr, self.betas[0], self.betas[1], self.eps,
                             self.steps, scale)

    def buffer_shape(self, key: str, params: dict) -> tuple:
        name, kind = key.rsplit(".", 1)
        if kind == "v" and name in self.segments:
            return (int(self.segments[name][:, 2].sum()),)
        return params[name].shape


class TwoPhase(NeuronAdam):
    """:class:`NeuronAdam` for the first ``switch`` steps, then :class:`Adam` with fresh moments
    and a learning rate that decays by a cosine (:class:`Cosine`) to lr/1e4 over the last
    ``total - switch`` steps (on top of the Trainer's schedule; constant by default).

    The per-neuron phase trains under LFP's |W| factor: weak connections stay weak, and the
    network's sparse structure forms (docs/rules.md, "The |W| factor and the optimizer"). The
    elementwise phase then moves every weight at Adam's speed, small ones included, which the
    temporal tasks need for their accuracy; its decaying steps keep most of that structure (a
    constant rate there was measured to prune worse). Phase 1 keeps NeuronAdam's buffers
    (``<param>.m``, ``<param>.v``); at the switch they are dropped and phase 2 keeps Adam's
    (``<param>.am``, ``<param>.av``), its bias correction counted from the switch. The Trainer
    passes ``switch = round(TrainConfig.switch * total)`` (half the run by default) and ``total``,
    the run's steps.
    """

    name = "two-phase"

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, segments: dict | None = None, switch: int = 0,
                 total: int = 0):
        super().__init__(lr, betas, eps, segments)
        if int(switch) < 0:
            raise ValueError(f"switch must be >= 0 steps (got {switch})")
        self.switch = int(switch)
        self.total = int(total)               # <= switch: no decay in phase 2

    def step(self, params: dict, grads: dict, lr: float | None = None, scale: float = 1.0) -> None:
        """Update ``params`` in place with gradients ``scale * grads``."""
        if self.steps < self.switch:
            super().step(params, grads, lr, scale)
            return
        if self.steps == self.switch:             # phase 2 starts from fresh moments (phase 1's dropped)
            self.buffers = {}
        lr = self.rate(self.lr if lr is None else lr, self.steps)
        self.steps += 1
        t = self.steps - self.switch
        for k, w in params.items():
            g = _grad(grads, k, w)
            adam_step(w, g, self._buf(k + ".am", w), self._buf(k + ".av", w), lr, self.betas[0],
                      self.betas[1], self.eps, t, scale)

    def rate(self, lr: float, step: int) -> float:
        if step < self.switch or self.total <= self.switch:
            return lr
        return lr * Cosine(1.0, self.total - self.switch)(step - self.switch)

    def state_dict(self) -> dict:
        d = super().state_dict()
        d["state"].update(switch=self.switch, total=self.total)
        return d

    def load_state_dict(self, d: dict, params: dict | None = None) -> None:
        """As the base class; the saved switch step is kept (a resumed run that adds epochs
        switches where the run it continues did or was going to), while phase 2's decay runs to this
        run's ``total`` (as the Trainer's own schedule is recomputed for the new epochs)."""
        super().load_state_dict(d, params)
        self.switch = int(d.get("state", {}).get("switch", self.switch))


class SGD(Optimizer):
    """SGD with optional (Nesterov) momentum, torch's form."""

    name = "sgd"

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False):
        super().__init__(lr)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def step(self, params: dict, grads: dict, lr: float | None = None, scale: float = 1.0) -> None:
        """Update ``params`` in place with gradients ``scale * grads``."""
        first = self.steps == 0
        self.steps += 1
        lr = self.lr if lr is None else lr
        for k, w in params.items():
            g = _grad(grads, k, w)
            sgd_step(w, g, self._buf(k + ".momentum", w), lr, self.momentum, self.nesterov, first, scale)


def _grad(grads: dict, k: str, w: np.ndarray) -> np.ndarray:
    """The gradient for parameter ``k``, contiguous float32 or float64 as given (the feedback's own
    buffer: no copy; the kernels widen each element to float64), anything else as float64; refused
    unless it matches ``w``'s shape (the kernels index both with one loop: a mismatch would read past
    an array's end)."""
    g = grads[k]
    if not (isinstance(g, np.ndarray) and g.dtype in (np.float32, np.float64) and g.flags.c_contiguous):
        g = np.ascontiguousarray(g, dtype=np.float64)
    if g.shape != w.shape:
        raise ValueError(f"gradient {k!r} has shape {g.shape} but the parameter has {w.shape}")
    return g


OPTIMIZERS = {"adam": Adam, "neuron-adam": NeuronAdam, "two-phase": TwoPhase, "sgd": SGD}


def clip_grad_norm(grads: dict, max_norm: float) -> float:
    """Scale all gradients together so their global L2 norm is at most ``max_norm``; returns the norm."""
    norm = math.sqrt(sum(float(np.dot(g.ravel(), g.ravel())) for g in grads.values()))
    if norm > max_norm > 0:
        s = max_norm / (norm + 1e-12)
        for g in grads.values():
            g *= s
    return norm


@dataclass(frozen=True)
class OneCycle:
    """One-cycle learning rate (Smith): cosine warm-up from lr/div to lr over ``pct_start`` of the
    steps, then cosine decay to lr/(div*final_div)."""

    max_lr: float
    total_steps: int
    pct_start: float = 0.3
    div: float = 25.0
    final_div: float = 1e4

    def __call__(self, step: int) -> float:
        lo, hi = self.max_lr / self.div, self.max_lr
        end = lo / self.final_div
        up = max(1, int(self.pct_start * self.total_steps))
        if step < up:
            return lo + (hi - lo) * (1 - math.cos(math.pi * step / up)) / 2
        return _half_cosine(hi, end, (step - up) / max(1, self.total_steps - up))


@dataclass(frozen=True)
class Cosine:
    """Cosine decay from lr at step 0 to lr/final_div at step ``total_steps``, no warm-up."""

    lr: float
    total_steps: int
    final_div: float = 1e4

    def __call__(self, step: int) -> float:
        return _half_cosine(self.lr, self.lr / self.final_div, step / max(1, self.total_steps))


def _half_cosine(hi: float, end: float, frac: float) -> float:
    """From ``hi`` at ``frac = 0`` down to ``end`` at ``frac >= 1`` along half a cosine (the decay of
    :class:`OneCycle` and :class:`Cosine`)."""
    return end + (hi - end) * (1 + math.cos(math.pi * min(1.0, frac))) / 2


def constant(lr: float):
    return lambda step: lr


SCHEDULES = ("constant", "onecycle", "cosine")


def make_schedule(name: str, lr: float, total_steps: int):
    """The learning rate of each step (0-based) of a run of ``total_steps`` steps: ``constant``;
    ``onecycle`` (:class:`OneCycle`); ``cosine`` (:class:`Cosine`), from ``lr`` at the first step
    towards lr/1e4 at the end of the run, without warm-up (the one-cycle curve's second half). One definition for the
    LFP trainer and the snntorch baseline, so a bench gives both methods the same schedule."""
    if name == "constant":
        return constant(lr)
    if name == "onecycle":
        return OneCycle(lr, total_steps)
    if name == "cosine":
        return Cosine(lr, total_steps)
    raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
