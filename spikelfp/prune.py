"""Pruning a trained network: magnitude or LFP-relevance criterion, global or per weight matrix.

The paper's application of LFP's sparsity (docs/pruning.md): remove the connections that matter
least and keep the accuracy. A criterion gives every prunable weight a score; the ``amount`` of
weights with the smallest scores are set to exactly zero.

* ``magnitude``: ``|w|``.
* ``relevance``: the LFP relevance of the connection for the correct output, summed over a
  reference set of training samples, ``sum_s |F_s(w)|``, where ``F_s`` is the rule's feedback of
  sample s under the explanation reward ``onehot(y)`` (:class:`spikelfp.feedback.ExplainReward`)
  with the |W| factor: the share of the true class's evidence that flows through the connection
  (the relevance criterion of Yeom et al. 2021, the LFP paper's second criterion). Per sample,
  then summed, so that a connection that helps some samples and hinders others is not scored
  as unused.

Scopes: ``global`` ranks every prunable weight of the network together; ``layer`` prunes the same
fraction of every weight matrix (a recurrent layer's W and V count as two). Prunable: the
synaptic weights of dense, recurrent and trainable conv layers; biases and a pooling layer's fixed
synapses are kept. Exactly ``round(amount * n)`` weights are zeroed per ranked group; equal scores
are taken in the weights' canonical order (layer, matrix, row-major index), so the result is the
same bits on every machine. Weights that are already zero score 0 and go first.
"""

from __future__ import annotations

import math

import numpy as np

from .network import Network

CRITERIA = ("magnitude", "relevance")
SCOPES = ("global", "layer")


def prunable(net: Network) -> list[tuple[str, np.ndarray]]:
    """The prunable weight matrices of ``net`` in canonical order, as ``(name, array)`` (the arrays
    themselves, not copies): ``layer_<l>.weight`` and, for a recurrent layer, ``layer_<l>.recurrent``."""
    out = []
    for l, la in enumerate(net.layers):
        arrays = la.weight_arrays()
        for name, a in zip(("weight", "recurrent"), arrays):
            out.append((f"layer_{l}.{name}", a))
    return out


def nonzero_synapses(net: Network) -> int:
    """Synapses that carry a weight (non-zero prunable weights)."""
    return int(sum(np.count_nonzero(a) for _, a in prunable(net)))


def magnitude_scores(net: Network) -> list[np.ndarray]:
    return [np.abs(a).astype(np.float64) for _, a in prunable(net)]


def relevance_scores(net: Network, data, *, rule: str = "temporal", n_samples: int = 256, batch_size: int = 32,
                     seed: int = 0, contrib: str = "graded", form: str = "carry", eps: float = 1e-6
                     ) -> list[np.ndarray]:
    """``sum_s |F_s(w)|`` per prunable weight over ``n_samples`` samples of ``data`` (drawn without
    replacement with ``seed``; all of them if it has fewer), in the arrays' shapes. ``rule`` and
    its settings are the model's own (``TrainConfig``); the reward is the explanation ``onehot(y)``."""
    from .feedback import ExplainReward, get_rule
    from .packed import pack, unpack

    if int(n_samples) < 1:
        raise ValueError(f"relevance needs at least one reference sample (got n_samples={n_samples})")
    extra = {"form": form, "contrib": contrib} if rule == "temporal" else {"contrib": contrib}
    r = get_rule(rule, eps=eps, reward=ExplainReward(), weight_scaling=True, **extra)
    p = pack(net)
    n = len(data)
    if n == 0:
        raise ValueError("relevance needs reference samples: the data set is empty")
    idx = np.sort(np.random.default_rng(seed).permutation(n)[: min(int(n_samples), n)])
    total = np.zeros(p.WT.size, dtype=np.float64)
    for s in range(0, idx.size, int(batch_size)):
        b = idx[s: s + int(batch_size)]
        _, eb, y = r._inputs(p, data.batch(b), data.labels[b])
        parts = r.parts(p, eb, y, np.arange(b.size + 1, dtype=np.int64))   # one chunk per sample
        total += np.abs(parts.GT.astype(np.float64)).sum(axis=0)
    total *= np.abs(p.WT.astype(np.float64))
    return [a.astype(np.float64) for _, a in prunable(unpack(p._replace(WT=total), dt=net.dt, like=net))]


def _lowest(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k smallest scores, ties in index order (stable)."""
    return np.argsort(scores, kind="stable")[:k]


def prune(net: Network, amount: float, *, criterion: str = "magnitude", scope: str = "global",
          scores: list[np.ndarray] | None = None) -> tuple[Network, dict]:
    """A copy of ``net`` with ``amount`` (0..1) of its prunable weights set to zero, and a report
    (counts per matrix, before and after). ``scores`` (as :func:`prunable`'s arrays) are required for
    ``criterion="relevance"`` (:func:`relevance_scores`); magnitude computes its own."""
    if not (isinstance(amount, (int, float, np.floating)) and math.isfinite(amount) and 0.0 <= amount <= 1.0):
        raise ValueError(f"pruning amount must be a fraction in [0, 1] (got {amount!r})")
    if criterion not in CRITERIA:
        raise ValueError(f"unknown pruning criterion {criterion!r}; choose one of {', '.join(CRITERIA)}")
    if scope not in SCOPES:
        raise ValueError(f"unknown pruning scope {scope!r}; choose one of {', '.join(SCOPES)}")
    out = net.copy()
    mats = prunable(out)
    if scores is None:
        if criterion == "relevance":
            raise ValueError("relevance pruning needs the relevance scores (spikelfp.prune.relevance_scores)")
        scores = magnitude_scores(out)
    if len(scores) != len(mats) or any(np.shape(s) != a.shape for s, (_, a) in zip(scores, mats)):
        raise ValueError("pruning scores do not match the network's weight matrices")
    if any(not np.all(np.isfinite(s)) for s in scores):
        raise ValueError("pruning scores contain NaN or inf")
    before = [int(np.count_nonzero(a)) for _, a in mats]
    if scope == "global":
        flat = np.concatenate([np.asarray(s, np.float64).ravel() for s in scores]) if mats else np.zeros(0)
        cut = _lowest(flat, int(round(amount * flat.size)))
        offsets = np.cumsum([0] + [a.size for _, a in mats])
        for (_, a), o0, o1 in zip(mats, offsets[:-1], offsets[1:]):
            sel = cut[(cut >= o0) & (cut < o1)] - o0
            a.flat[sel] = 0.0             # row-major positions, whatever the array's memory layout
    else:
        for (_, a), s in zip(mats, scores):
            a.flat[_lowest(np.asarray(s, np.float64).ravel(), int(round(amount * a.size)))] = 0.0
    after = [int(np.count_nonzero(a)) for _, a in mats]
    report = {"amount": float(amount), "criterion": criterion, "scope": scope,
              "weights": int(sum(a.size for _, a in mats)),
              "synapses_before": int(sum(before)), "synapses_after": int(sum(after)),
              "matrices": [{"name": name, "size": int(a.size), "nonzero_before": b0, "nonzero_after": b1}
                           for (name, a), b0, b1 in zip(mats, before, after)]}
    return out, report


def keep_mask(net: Network) -> list[np.ndarray]:
    """Per prunable matrix, where its weights are non-zero (a pruned model's mask)."""
    return [a != 0 for _, a in prunable(net)]


__all__ = ["CRITERIA", "SCOPES", "prunable", "nonzero_synapses", "magnitude_scores", "relevance_scores", "prune",
           "keep_mask"]
