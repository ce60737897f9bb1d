"""Pure numba kernels: optimizer steps over flat parameter buffers (in place).

The steps are elementwise, so they run on numba's threads (``prange``) with the same bits as one
thread: no element depends on another.
"""

import math

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
