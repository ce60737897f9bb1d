"""Pure numba kernels: optimizer steps over flat parameter buffers (in place)."""

import math

from numba import njit


@njit(cache=True)
def adam_step(w, grad, m, v, lr, beta1, beta2, eps, step):
    """One Adam step (Kingma & Ba; torch's form), in place on ``w``, ``m``, ``v``.

        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        w -= (lr / (1 - b1^step)) * m / (sqrt(v) / sqrt(1 - b2^step) + eps)
    """
    bc1 = 1.0 - beta1**step
    bc2 = math.sqrt(1.0 - beta2**step)
    step_size = lr / bc1
    for k in range(w.size):
        g = grad[k]
        mk = beta1 * m[k] + (1.0 - beta1) * g
        vk = beta2 * v[k] + (1.0 - beta2) * g * g
        m[k] = mk
        v[k] = vk
        w[k] -= step_size * mk / (math.sqrt(vk) / bc2 + eps)


@njit(cache=True)
def sgd_step(w, grad, buf, lr, momentum, nesterov, first):
    """One SGD step with (optional, Nesterov) momentum, torch's form, in place.

        buf = g (first step) or momentum * buf + g;  d = g + momentum * buf (nesterov) or buf
        w -= lr * d
    """
    for k in range(w.size):
        g = grad[k]
        if momentum != 0.0:
            b = g if first else momentum * buf[k] + g
            buf[k] = b
            d = g + momentum * b if nesterov else b
        else:
            d = g
        w[k] -= lr * d
