"""Pure numba kernels: optimizer steps over flat parameter buffers (in place).

The steps run on numba's threads (``prange``) with the same bits as one thread: no element depends
on another (Adam, SGD), or a neuron's shared second moment is summed in a fixed order first
(:func:`neuron_adam_step`).
"""

import math

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def adam_step(w, grad, m, v, lr, beta1, beta2, eps, step, scale=1.0):
    """One Adam step (Kingma & Ba; torch's form), in place on ``w``, ``m``, ``v``, with the
    gradient ``g = scale * grad`` (LFP passes its feedback with scale = -1/batch: no copy).

        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        w -= (lr / (1 - b1^step)) * m / (sqrt(v) / sqrt(1 - b2^step) + eps)
    """
    bc1 = 1.0 - beta1**step
    bc2 = math.sqrt(1.0 - beta2**step)
    step_size = lr / bc1
    for k in prange(w.size):
        g = scale * grad[k]
        mk = beta1 * m[k] + (1.0 - beta1) * g
        vk = beta2 * v[k] + (1.0 - beta2) * g * g
        m[k] = mk
        v[k] = vk
        w[k] -= step_size * mk / (math.sqrt(vk) / bc2 + eps)


@njit(cache=True, parallel=True)
def scale_by_abs(g, w):
    """In place ``g *= |w|`` (LFP's implicit weight scaling, without a temporary)."""
    for k in prange(g.size):
        g[k] *= abs(w[k])


@njit(cache=True, parallel=True)
def sgd_step(w, grad, buf, lr, momentum, nesterov, first, scale=1.0):
    """One SGD step with (optional, Nesterov) momentum, torch's form, in place; g = scale * grad.

        buf = g (first step) or momentum * buf + g;  d = g + momentum * buf (nesterov) or buf
        w -= lr * d
    """
    for k in prange(w.size):
        g = scale * grad[k]
        if momentum != 0.0:
            b = g if first else momentum * buf[k] + g
            buf[k] = b
            d = g + momentum * b if nesterov else b
        else:
            d = g
        w[k] -= lr * d


@njit(cache=True, parallel=True)
def neuron_adam_step(w, grad, m, v, seg, lr, beta1, beta2, eps, step, scale=1.0):
    """One Adam step with one second moment per neuron (per column of a weight segment), in place.

    ``seg`` (n_seg, 4) int64 rows ``(start, rows, cols, v_start)``: elements ``start ..
    start + rows * cols`` of ``w`` form a row-major (rows, cols) block whose column j is the fan-in
    of neuron j (spikelfp's packed W.T / V.T / conv kernel rows); its second moment is
    ``v[v_start + j]``. With g = scale * grad::

        m = b1 m + (1 - b1) g                                      (per element, as Adam)
        v_j = b2 v_j + (1 - b2) mean_i g_ij^2                       (per neuron)
        w -= (lr / (1 - b1^step)) * m / (sqrt(v_j) / sqrt(1 - b2^step) + eps)

    Elements outside every segment are not touched. A column's mean is summed row by row in
    row order (the same bits for any thread count).
    """
    bc1 = 1.0 - beta1**step
    bc2 = math.sqrt(1.0 - beta2**step)
    step_size = lr / bc1
    for s in range(seg.shape[0]):
        a, rows, cols, vo = seg[s, 0], seg[s, 1], seg[s, 2], seg[s, 3]
        if rows == 0 or cols == 0:
            continue
        acc = np.zeros(cols)
        for i in range(rows):
            base = a + i * cols
            for j in range(cols):
                g = scale * grad[base + j]
                acc[j] += g * g
        for j in range(cols):
            v[vo + j] = beta2 * v[vo + j] + (1.0 - beta2) * (acc[j] / rows)
        for i in prange(rows):
            base = a + i * cols
            for j in range(cols):
                g = scale * grad[base + j]
                mk = beta1 * m[base + j] + (1.0 - beta1) * g
                m[base + j] = mk
                w[base + j] -= step_size * mk / (math.sqrt(v[vo + j]) / bc2 + eps)
