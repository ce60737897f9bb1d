"""A small event-camera emulator that turns static images into N-MNIST-style recordings.

Each image is upscaled to 28x28 (bilinear), placed in a 34x34 canvas with a 0/1 px random offset
and moved along N-MNIST's three saccades, the triangle (0,0) -> (3,3) -> (6,0) -> (0,0) px in
3 x 100 ms. Every 1 ms step, each pixel compares ``log(I + 0.1)`` with its reference level: when
the change exceeds k contrast thresholds C it emits k events (ON or OFF) and moves its reference by
k*C. Thresholds are drawn per pixel and polarity from N(0.35, 0.03); background noise fires at
0.2 Hz per pixel; timestamps are jittered within the step. Output is written in N-MNIST's 40-bit
``.bin`` format (:func:`write_nmnist_bin`), so it is read back by tonic's own N-MNIST reader.
"""

from __future__ import annotations

import numpy as np
from numba import njit

CANVAS = 34
DIGIT = 28
STEP_US = 1000
SACCADE_MS = 100
PATH = np.array([[0.0, 0.0], [3.0, 3.0], [6.0, 0.0], [0.0, 0.0]])  # (x, y) [px]
N_STEPS = 3 * SACCADE_MS
THRESH_MEAN, THRESH_STD = 0.35, 0.03
NOISE_HZ = 0.2
LOG_EPS = 0.1


def upscale(img: np.ndarray, size: int = DIGIT) -> np.ndarray:
    """Bilinear upscaling of a small grey image to (size, size), values kept in [0, 1]."""
    img = np.asarray(img, dtype=np.float64)
    h, w = img.shape
    ys = np.linspace(0, h - 1, size)
    xs = np.linspace(0, w - 1, size)
    y0 = np.clip(np.floor(ys).astype(int), 0, h - 2)
    x0 = np.clip(np.floor(xs).astype(int), 0, w - 2)
    fy = (ys - y0)[:, None]
    fx = (xs - x0)[None, :]
    a = img[y0][:, x0]
    b = img[y0][:, x0 + 1]
    c = img[y0 + 1][:, x0]
    d = img[y0 + 1][:, x0 + 1]
    out = (1 - fy) * ((1 - fx) * a + fx * b) + fy * ((1 - fx) * c + fx * d)
    return np.clip(out, 0.0, 1.0)


@njit(cache=True)
def _frame(img, ox, oy, px, py, out):
    n = img.shape[0]
    for Y in range(out.shape[0]):
        for X in range(out.shape[1]):
            u = X - ox - px
            w = Y - oy - py
            j0 = int(np.floor(u))
            i0 = int(np.floor(w))
            fu = u - j0
            fw = w - i0
            val = 0.0
            for di in range(2):
                for dj in range(2):
                    i = i0 + di
                    j = j0 + dj
                    if 0 <= i < n and 0 <= j < n:
                        wt = (fw if di else 1.0 - fw) * (fu if dj else 1.0 - fu)
                        val += wt * img[i, j]
            out[Y, X] = val


@njit(cache=True)
def _emulate(img, ox, oy, thr, uniforms, path, n_steps, saccade_ms, step_us, log_eps):
    C = thr.shape[1]
    frame = np.empty((C, C))
    ref = np.empty((C, C))
    cap = 8192
    ex = np.empty(cap, np.int64)
    ey = np.empty(cap, np.int64)
    et = np.empty(cap, np.int64)
    ep = np.empty(cap, np.int64)
    k = 0
    ku = 0
    for m in range(n_steps + 1):
        seg = min(m // saccade_ms, path.shape[0] - 2)
        frac = (m - seg * saccade_ms) / saccade_ms
        px = path[seg, 0] + frac * (path[seg + 1, 0] - path[seg, 0])
        py = path[seg, 1] + frac * (path[seg + 1, 1] - path[seg, 1])
        _frame(img, ox, oy, px, py, frame)
        for Y in range(C):
            for X in range(C):
                L = np.log(frame[Y, X] + log_eps)
                if m == 0:
                    ref[Y, X] = L
                    continue
                d = L - ref[Y, X]
                pol = 1 if d > 0 else 0
                c = thr[pol, Y, X]
                ne = int(abs(d) // c)
                if ne == 0:
                    continue
                ref[Y, X] += ne * c if pol == 1 else -ne * c
                for _ in range(ne):
                    if k == cap:
                        cap *= 2
                        ex2 = np.empty(cap, np.int64)
                        ey2 = np.empty(cap, np.int64)
                        et2 = np.empty(cap, np.int64)
                        ep2 = np.empty(cap, np.int64)
                        ex2[:k] = ex[:k]
                        ey2[:k] = ey[:k]
                        et2[:k] = et[:k]
                        ep2[:k] = ep[:k]
                        ex, ey, et, ep = ex2, ey2, et2, ep2
                    ex[k] = X
                    ey[k] = Y
                    et[k] = (m - 1) * step_us + int(uniforms[ku % uniforms.size] * step_us)
                    ep[k] = pol
                    ku += 1
                    k += 1
    return ex[:k], ey[:k], et[:k], ep[:k]


def emulate_saccades(image: np.ndarray, rng: np.random.Generator):
    """Turn one grey image (values in [0, 1], any small size) into N-MNIST-like events.

    Returns
    -------
    x, y, t, p : int64 arrays sorted by t (t in microseconds, x, y in 0..33, p in {0, 1})
    """
    img = upscale(image)
    ox, oy = rng.integers(0, 2, size=2)
    thr = rng.normal(THRESH_MEAN, THRESH_STD, size=(2, CANVAS, CANVAS)).clip(0.05, None)
    uniforms = rng.random(16384)
    x, y, t, p = _emulate(img, float(ox), float(oy), thr, uniforms, PATH, N_STEPS, SACCADE_MS,
                          STEP_US, LOG_EPS)
    duration_s = N_STEPS * STEP_US * 1e-6
    n_noise = rng.poisson(NOISE_HZ * duration_s * CANVAS * CANVAS)
    nx = rng.integers(0, CANVAS, n_noise)
    ny = rng.integers(0, CANVAS, n_noise)
    nt = rng.integers(0, N_STEPS * STEP_US, n_noise)
    npol = rng.integers(0, 2, n_noise)
    x = np.concatenate([x, nx])
    y = np.concatenate([y, ny])
    t = np.concatenate([t, nt])
    p = np.concatenate([p, npol])
    order = np.argsort(t, kind="stable")
    return x[order], y[order], t[order], p[order]


def encode_nmnist(x, y, t, p) -> bytes:
    """N-MNIST's 40-bit event words: x (8 bit), y (8 bit), p (1 bit), t (23 bit, microseconds)."""
    x, y, t, p = (np.asarray(a, dtype=np.int64) for a in (x, y, t, p))
    if x.size and (x.min() < 0 or x.max() > 255 or y.min() < 0 or y.max() > 239
                   or t.min() < 0 or t.max() >= 2**23 or p.min() < 0 or p.max() > 1):
        raise ValueError("events do not fit N-MNIST's .bin format (x<256, y<240, p in {0,1}, t<2^23 us)")
    raw = np.empty((x.size, 5), dtype=np.uint8)
    raw[:, 0] = x
    raw[:, 1] = y
    raw[:, 2] = (p << 7) | ((t >> 16) & 0x7F)
    raw[:, 3] = (t >> 8) & 0xFF
    raw[:, 4] = t & 0xFF
    return raw.tobytes()
