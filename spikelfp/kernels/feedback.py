"""Pure numba kernels: LFP rewards and the two feedback rules (docs/rules.md).

Feedback is returned in the packed weight layout (``GT[w_off[l] + i*n_out + j]`` is the summed
``rho_j * x_i`` of connection i -> j) *before* the |W| factor; the caller forms
``F_W = |W| * GT`` and ``F_b = |b| * Gb``.

Per neuron, both kernels also return ``recv`` (sum of |reward received|) and ``passed`` (sum of
|reward passed on as input current|) so that a debug check can verify that the rules never pass on
more than they received (see :func:`spikelfp.feedback.check_conservation`).
"""

import math

import numpy as np
from numba import njit, prange

from .lif import MEM_NONE, RESET_SUBTRACT, channel_shift, conv_args, run_layer, split_index
from .loihi import fixed_layer

REWARD_RATE = 0      # the paper's rate-coded SNN reward
REWARD_SOFTMAX = 1   # onehot - softmax(N / tau); temporal rule: wrong classes at their spikes only
REWARD_CE = 2        # onehot - softmax(N / tau) at every step for every class (cross-entropy on counts)
REWARD_EXPLAIN = 3   # onehot(y) at every step: the true class's explanation (relevance for pruning, not training)

SECANT_SIGNED = 0    # rule A: rho = R / (z + eps sign z)
SECANT_BOUNDED = 1   # rule A: a spiking neuron's secant in (0, 1/theta]: rho = R / (max(|z|, theta a) + eps)

FORM_CARRY = 0       # denominator |c[t]| + |I[t]|, carry c[t] = beta v[t-1] (1 - s[t-1]) (zero reset)
FORM_PAPER = 1       # lfprop 1.0.0: |u| + |I - (1 - beta) u|, u = v[t-1] (after reset), carry beta u

CONTRIB_SPIKES = 0   # the reward below reaches the spikes only: g_below[t, k] = s_k[t] (W[:, k] . rho) (the paper's)
CONTRIB_GRADED = 1   # ... and a silent dense/recurrent neuron gets clip(v_k[t]/theta, 0, 1) (W[:, k] . rho)


@njit(cache=True, inline="always")
def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


@njit(cache=True)
def count_reward(N, y, T, kind, tau, out):
    """Count-level reward rho_out for one sample (Rule A), into ``out`` (n_out,).

    softmax: ``out = onehot(y) - softmax(N / tau)``
    rate:    true class ``1 - sigmoid(N_y - T//2)``; wrong class k
             ``-(N_k / T) * (1 - sigmoid((T - N_k) - T//2))`` (the time-average of the paper's reward)
    explain: ``out = onehot(y)``
    """
    n = N.size
    half = T // 2
    if kind == REWARD_EXPLAIN:
        for k in range(n):
            out[k] = 0.0
        out[y] = 1.0
    elif kind == REWARD_SOFTMAX or kind == REWARD_CE:
        m = -1e300
        for k in range(n):
            m = max(m, N[k] / tau)
        z = 0.0
        for k in range(n):
            out[k] = math.exp(N[k] / tau - m)
            z += out[k]
        for k in range(n):
            out[k] = -out[k] / z
        out[y] += 1.0
    else:
        for k in range(n):
            if k == y:
                out[k] = 1.0 - _sigmoid(N[k] - half)
            else:
                out[k] = -(N[k] / T) * (1.0 - _sigmoid((T - N[k]) - half))


@njit(cache=True)
def temporal_reward(N, optr, oidx, T, y, kind, tau, g):
    """Per-step reward g[t, k] on the output spikes of one sample (Rule B), into ``g`` (T, n_out).

    rate (the paper's): true class ``g[t, y] = 1 - sigmoid(N_y - T//2)`` at every t; wrong class
    ``g[t, k] = -s_k[t] * (1 - sigmoid((T - N_k) - T//2))``.
    softmax: true class ``1 - p_y`` at every t, wrong class ``-s_k[t] * p_k``, p = softmax(N / tau).
    explain: ``g[t, y] = 1`` at every t, 0 elsewhere.
    Output spikes of the sample are given as CSR ``oidx[optr[t] : optr[t+1]]``.
    """
    n = N.size
    half = T // 2
    w = np.empty(n)
    if kind == REWARD_CE or kind == REWARD_EXPLAIN:
        count_reward(N, y, T, kind, tau, w)   # w = onehot - p (explain: onehot), at every step
        for t in range(T):
            for k in range(n):
                g[t, k] = w[k]
        return
    if kind == REWARD_SOFTMAX:
        count_reward(N, y, T, kind, tau, w)   # w = onehot - p
        gy = w[y]
    else:
        gy = 1.0 - _sigmoid(N[y] - half)
        for k in range(n):
            w[k] = -(1.0 - _sigmoid((T - N[k]) - half))
    for t in range(T):
        for k in range(n):
            g[t, k] = 0.0
        g[t, y] = gy
        for e in range(optr[t], optr[t + 1]):
            k = oidx[e]
            if k != y:
                g[t, k] = w[k]


@njit(cache=True, inline="always")
def dot(a, b, n):
    """sum_j a[j] * b[j] (float64), in a fixed order that does not depend on the machine: eight
    running sums over j mod 8, added pairwise at the end. A single running sum cannot be vectorised
    (IEEE order) and runs at one add per FP-add latency; eight independent ones fill two AVX2
    vectors and are 4-8x faster on the 16-256-wide dots of the backward (a conv hidden layer's
    W[:, i] . rho over each kernel tap: 3x the whole temporal step on a LifCNN-sized net)."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    s4 = 0.0
    s5 = 0.0
    s6 = 0.0
    s7 = 0.0
    j = 0
    while j + 8 <= n:
        s0 += np.float64(a[j]) * b[j]
        s1 += np.float64(a[j + 1]) * b[j + 1]
        s2 += np.float64(a[j + 2]) * b[j + 2]
        s3 += np.float64(a[j + 3]) * b[j + 3]
        s4 += np.float64(a[j + 4]) * b[j + 4]
        s5 += np.float64(a[j + 5]) * b[j + 5]
        s6 += np.float64(a[j + 6]) * b[j + 6]
        s7 += np.float64(a[j + 7]) * b[j + 7]
        j += 8
    while j < n:
        s0 += np.float64(a[j]) * b[j]
        j += 1
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@njit(cache=True, inline="always")
def lane_sum(a, n):
    """sum_j a[j] (float64) in :func:`dot`'s fixed order."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    s4 = 0.0
    s5 = 0.0
    s6 = 0.0
    s7 = 0.0
    j = 0
    while j + 8 <= n:
        s0 += a[j]
        s1 += a[j + 1]
        s2 += a[j + 2]
        s3 += a[j + 3]
        s4 += a[j + 4]
        s5 += a[j + 5]
        s6 += a[j + 6]
        s7 += a[j + 7]
        j += 8
    while j < n:
        s0 += a[j]
        j += 1
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@njit(cache=True, inline="always")
def _add_listed_rows(acc, rows, tl, q0, q1, n):
    """``acc[:n] += rows[tl[q], :n]`` for q = q0 .. q1-1 in that order, eight (then four, then one)
    rows per pass over acc: the bits of one row at a time (see :func:`spikelfp.kernels.lif.add_rows`)."""
    q = q0
    while q + 8 <= q1:
        r0 = rows[tl[q]]
        r1 = rows[tl[q + 1]]
        r2 = rows[tl[q + 2]]
        r3 = rows[tl[q + 3]]
        r4 = rows[tl[q + 4]]
        r5 = rows[tl[q + 5]]
        r6 = rows[tl[q + 6]]
        r7 = rows[tl[q + 7]]
        for j in range(n):
            acc[j] = (((((((acc[j] + r0[j]) + r1[j]) + r2[j]) + r3[j]) + r4[j]) + r5[j]) + r6[j]) + r7[j]
        q += 8
    if q + 4 <= q1:
        r0 = rows[tl[q]]
        r1 = rows[tl[q + 1]]
        r2 = rows[tl[q + 2]]
        r3 = rows[tl[q + 3]]
        for j in range(n):
            acc[j] = (((acc[j] + r0[j]) + r1[j]) + r2[j]) + r3[j]
        q += 4
    while q < q1:
        r0 = rows[tl[q]]
        for j in range(n):
            acc[j] += r0[j]
        q += 1


@njit(cache=True, inline="always")
def _add_grouped(ptr, row0, idx, ns, T, n_in, n_out, rho, tl, cnt, start, fill, accv, gt):
    """GT[i, :] += sum of rho[s*T + t] over the spikes (t, i) of ``ns`` consecutive samples.

    Spikes of sample s at step t: ``idx[ptr[row0 + s*T + t] : ptr[row0 + s*T + t + 1]]``. They are
    grouped by channel (counting sort) and each channel's rho rows summed in ``accv``, so every row
    of ``gt`` (n_in x n_out, flat) is touched once, not once per spike.
    """
    for i in range(n_in):
        cnt[i] = 0
    for e in range(ptr[row0], ptr[row0 + ns * T]):
        cnt[idx[e]] += 1
    start[0] = 0
    for i in range(n_in):
        start[i + 1] = start[i] + cnt[i]
        fill[i] = start[i]
    for r in range(ns * T):
        for e in range(ptr[row0 + r], ptr[row0 + r + 1]):
            i = idx[e]
            tl[fill[i]] = r
            fill[i] += 1
    for i in range(n_in):
        if start[i + 1] == start[i]:
            continue
        first = rho[tl[start[i]]]
        for j in range(n_out):
            accv[j] = first[j]
        _add_listed_rows(accv, rho, tl, start[i] + 1, start[i + 1], n_out)
        grow = gt[i * n_out: i * n_out + n_out]
        for j in range(n_out):
            grow[j] += accv[j]


@njit(cache=True)
def _graded_inputs(cbuf, Ibuf, cl, n, T, theta, subtract, sp, sx, xg):
    """Credit factors of the n neurons at column ``cl`` (spikes in CSR ``sp``/``sx``): ``xg[t, k]`` =
    1 where k spiked at t, else clip(v[t] / theta, 0, 1) with v[t] = c[t] + I[t] (- theta s[t-1] with
    subtract reset): the membrane after the input, before reset."""
    for t in range(T):
        xr = xg[t]
        crow = cbuf[t, cl: cl + n]
        irow = Ibuf[t, cl: cl + n]
        for k in range(n):
            xr[k] = np.float64(crow[k]) + irow[k]      # in float64, as the rule computes
        if subtract and t > 0:
            for e in range(sp[t - 1], sp[t]):
                xr[sx[e]] -= theta
        for k in range(n):
            q = xr[k] / theta
            xr[k] = 0.0 if q < 0.0 else (q if q < 1.0 else 1.0)
        for e in range(sp[t], sp[t + 1]):
            xr[sx[e]] = 1.0


@njit(cache=True)
def _pass_graded(xg, T, n_in, WT, w0, n_out, rho, wt, acc, rr, gb):
    """g_below[t, k] = xg[t, k] (W[:, k] . rho[t]) for all t and every neuron k below (spikes: xg = 1,
    silent neurons below threshold: 0 < xg < 1, else 0): W^T rho for all steps as row updates of
    length n_in (vectorised) over a copy ``wt`` of W, then the credit factors. ``wt`` (n_out * n_in),
    ``acc`` (n_in) and ``rr`` (n_out) are work arrays in the weights' dtype: the sum runs in it (a
    float32 net's W^T rho in float32, 8 lanes a vector instead of 4), and goes to ``gb`` (float64;
    every entry [0:T, 0:n_in] written) times the credit factor. A float64 net gets the bits of the
    float64 sum as before."""
    for k in range(n_in):
        base = w0 + k * n_out
        for j in range(n_out):
            wt[j * n_in + k] = WT[base + j]
    grow = acc[:n_in]
    for t in range(T):
        for k in range(n_in):
            grow[k] = 0.0
        for j in range(n_out):
            rr[j] = rho[t, j]          # rho in the weights' dtype
        # grow += rho[t, j] * W[j, :] for j = 0 .. n_out-1 in that order, eight (then four, then one)
        # rows per pass over grow: the bits of one row at a time, an eighth of the loads and stores
        j = 0
        while j + 8 <= n_out:
            r0, r1, r2, r3 = rr[j], rr[j + 1], rr[j + 2], rr[j + 3]
            r4, r5, r6, r7 = rr[j + 4], rr[j + 5], rr[j + 6], rr[j + 7]
            wr0 = wt[j * n_in: j * n_in + n_in]
            wr1 = wt[(j + 1) * n_in: (j + 1) * n_in + n_in]
            wr2 = wt[(j + 2) * n_in: (j + 2) * n_in + n_in]
            wr3 = wt[(j + 3) * n_in: (j + 3) * n_in + n_in]
            wr4 = wt[(j + 4) * n_in: (j + 4) * n_in + n_in]
            wr5 = wt[(j + 5) * n_in: (j + 5) * n_in + n_in]
            wr6 = wt[(j + 6) * n_in: (j + 6) * n_in + n_in]
            wr7 = wt[(j + 7) * n_in: (j + 7) * n_in + n_in]
            for k in range(n_in):
                grow[k] = (((((((grow[k] + r0 * wr0[k]) + r1 * wr1[k]) + r2 * wr2[k]) + r3 * wr3[k]) + r4 * wr4[k])
                            + r5 * wr5[k]) + r6 * wr6[k]) + r7 * wr7[k]
            j += 8
        while j + 4 <= n_out:
            r0, r1, r2, r3 = rr[j], rr[j + 1], rr[j + 2], rr[j + 3]
            wr0 = wt[j * n_in: j * n_in + n_in]
            wr1 = wt[(j + 1) * n_in: (j + 1) * n_in + n_in]
            wr2 = wt[(j + 2) * n_in: (j + 2) * n_in + n_in]
            wr3 = wt[(j + 3) * n_in: (j + 3) * n_in + n_in]
            for k in range(n_in):
                grow[k] = (((grow[k] + r0 * wr0[k]) + r1 * wr1[k]) + r2 * wr2[k]) + r3 * wr3[k]
            j += 4
        while j < n_out:
            r = rr[j]
            wrow = wt[j * n_in: j * n_in + n_in]
            for k in range(n_in):
                grow[k] += r * wrow[k]
            j += 1
        xr = xg[t]
        out = gb[t, :n_in]
        for k in range(n_in):
            out[k] = grow[k] * xr[k]


@njit(cache=True)
def temporal_workspace(T, sizes, itemsize, ev_cap):
    """Sizes of :func:`temporal_feedback`'s per-chunk workspace: (float64 count, weight-dtype count,
    int32 count, S). ``ev_cap``: room for layer 0's input events of a sub-batch of S samples (at
    least the most events of any one sample; the sum over S samples keeps the sub-batches full).

    float64: g, g_below, rho and the graded credit factors (T x the widest layer each); weight dtype:
    c[t] and I[t] of every neuron (as the forward computes them), rho of layer 0 for S samples
    (S <= 32, at most 4 MB), then a graded layer's W and the graded pass's sum and rho (the widest
    layer each); int32: the spikes of every layer, the per-channel step lists, layer 0's grouped events."""
    n_tot, nmax, nw, nin_max = _layer_extents(sizes)
    n0 = sizes[1]
    S = max(1, min(32, (4 << 20) // (T * n0 * itemsize)))
    return 4 * T * nmax, 2 * T * n_tot + S * T * n0 + nw + 2 * nmax, T * n_tot + T * nin_max + ev_cap, S


@njit(cache=True)
def _layer_extents(sizes):
    """(neurons in all layers, the widest layer, the largest hidden-to-next W, the widest fan-in)."""
    L = sizes.size - 1
    n_tot = 0
    nmax = 1
    for l in range(1, L + 1):
        n_tot += sizes[l]
        nmax = max(nmax, sizes[l])
    nw = 1
    for l in range(1, L):
        nw = max(nw, sizes[l] * sizes[l + 1])
    nin_max = 1
    for l in range(L):
        nin_max = max(nin_max, sizes[l])
    return n_tot, nmax, nw, nin_max


@njit(cache=True, inline="always")
def pool_dot(WT, w0, cin, cout, cptr, cto, ctk, pin, ch, r):
    """``W[:, i] . r`` for the input i = (pixel ``pin``, channel ``ch``) of a pooling layer
    (:func:`spikelfp.packed.is_diagonal`): its one nonzero weight per tap, ``W[k, ch, ch]``, times r at
    the output's channel ch, summed over the taps in table order in float64, each product in its
    operands' dtypes. The general conv loop's lane ch (its other lanes are exact zeros): the same
    bits, to the sign of a zero."""
    acc = 0.0
    for q in range(cptr[pin], cptr[pin + 1]):
        acc += WT[w0 + (ctk[q] * cin + ch) * cout + ch] * r[cto[q] * cout + ch]
    return acc


@njit(cache=True, inline="always")
def _carry_step(crow, irow, grow, Rn, Cn, rr, eps, n):
    """One step t of the temporal rule's recursion over a layer's n neurons in the default form
    (carry, reward not scaled): the general loop of :func:`temporal_feedback` with its loop-invariant
    branches taken out, so that it vectorises; the same operations in the same order (same bits)."""
    for j in range(n):
        cc = np.float64(crow[j])
        ii = np.float64(irow[j])
        r = (grow[j] + Rn[j] + Cn[j]) / (abs(cc) + abs(ii) + eps)
        rr[j] = r
        Cn[j] = cc * r


@njit(cache=True, inline="always")
def _paper_den(cc, ii, bl, eps):
    """form="paper"'s denominator ``|u| + |I - (1 - beta) u| + eps`` with u = c / beta, the
    post-reset membrane of the step before (lfprop 1.0.0)."""
    u = cc / bl if bl != 0.0 else 0.0
    return abs(u) + abs(ii - (1.0 - bl) * u) + eps


@njit(cache=True, inline="always")
def _carry_folded(crow, irow, Cn, rr, eps, n, paper, bl):
    """:func:`_carry_step` for a step whose rewards from above (and through V) were already added to
    the carry at the neurons that have them (its own spikes: ``Cn = (g + Rn) + Cn`` there, the
    same operations in the same order): a pass that reads no g. Elsewhere g + Rn is zero, and
    ``(0 + 0) + C`` is C (to the sign of a zero, which no sum downstream can see). ``paper``: the
    denominator of ``form="paper"`` (``bl``: the layer's beta), as the general loop computes it."""
    if paper:
        for j in range(n):
            cc = np.float64(crow[j])
            ii = np.float64(irow[j])
            r = Cn[j] / _paper_den(cc, ii, bl, eps)
            rr[j] = r
            Cn[j] = cc * r
    else:
        for j in range(n):
            cc = np.float64(crow[j])
            ii = np.float64(irow[j])
            r = Cn[j] / (abs(cc) + abs(ii) + eps)
            rr[j] = r
            Cn[j] = cc * r


@njit(cache=True, inline="always")
def _carry_sums(irow, grow, Rn, rr, rcl, psl, n):
    """The conservation sums of a :func:`_carry_step` (after it: rr holds its rho): |reward
    received| ``grow + Rn`` and |reward passed on| ``I rho``, the values the step used (same bits)."""
    for j in range(n):
        rcl[j] += abs(grow[j] + Rn[j])
        psl[j] += abs(np.float64(irow[j]) * rr[j])


@njit(cache=True, parallel=True)
def temporal_feedback(in_ptr, in_idx, labels, B, T, sizes, w_off, WT, n_off, bias, has_bias,
                      beta, theta, reset, rec, conv, ct_ptr, ct_out, ct_k, eps, reward_kind, tau, out_scale,
                      form, contrib, bounds, counts, GT, Gb, recv, passed, track, wsf, wsw, wsi,
                      fx, WTq, qwexp, qdu, qdv, qvth, qbias, qscale):
    """Rule B (temporal membrane rule), fused with the forward pass, for a batch.

    With ``fx`` the forward is Loihi's integer run (:func:`spikelfp.kernels.loihi.fixed_layer` on
    ``WTq``, ``qwexp``, ``qdu``, ``qdv``, ``qvth``, ``qbias``): its spikes, and its carries and
    inputs divided by ``qscale``, are what the backward below reads; ``WT``, ``theta`` and
    ``beta`` are then the dequantized network's (``spikelfp.loihi.dequantized``).

    For each sample: forward through all layers storing carry c[t] and input I[t]; output reward
    g[t]; then per layer from the top, for t = T..1::

        A = g[t] + C[t+1];  rho = A / (|c[t]| + |I[t]| + eps);  C[t] = c[t] * rho
        g_below[t, i] = W[:, i] . rho   for every input spike i at t;   Gb += rho
        GT[i, :] += sum of rho[t] over the input spikes (t, i)   (grouped by channel per sample)

    ``contrib`` = CONTRIB_GRADED (graded credit): from a dense layer l > 0, a neuron k below that
    was silent at t also gets ``g_below[t, k] = x * (W[:, k] . rho)`` with ``x = clip(v_k[t] / theta,
    0, 1)`` (its membrane after the input, before reset): the worth of a spike at t, scaled by how
    near it came. The layer above's rho, carry, F_W and ``passed`` are unchanged (computed on the
    spikes that happened), so the credit is an extra reward at silent neurons, not taken from the
    layer above. Only dense/recurrent layers' neurons are graded: conv and pooling layers get and
    hand down reward through spikes only.

    A recurrent layer (``rec[l]``) also hands ``V[:, k] . rho[t]`` to each of its own neurons k
    that spiked at t-1: that reward joins g[t-1] of the same layer (it arrives before step t-1 is
    processed, the loop running backwards), and ``GV[k, :] += rho[t]``.

    Chunk c of the batch accumulates into ``GT[c]``, ``Gb[c]``, ``recv[c]``, ``passed[c]`` (the
    last two, the conservation sums, only with ``track``: two more loads and stores a neuron and
    step in the backward, 5-10 % of a conv net's step)
    (summed by the caller in chunk order: bit-reproducible for fixed chunk ``bounds``: chunk c holds
    samples ``bounds[c] : bounds[c+1]``, each chunk's result depends on its own samples only, so a
    chunk computed on another machine has the same bits).
    ``counts`` (B, sum n_l) receives the spike counts.
    """
    L = sizes.size - 1
    n_tot, nmax, nw, nin_max = _layer_extents(sizes)
    nin0 = sizes[0]
    n_chunks = bounds.size - 1
    nf, nws, ni, S = temporal_workspace(T, sizes, WT.itemsize, 0)
    # what is left of the int32 workspace holds layer 0's grouped events; capped so that the bits never
    # depend on the workspace's size (a sub-batch is flushed early only past 2**26 events)
    big = 0
    for b in range(B):
        big = max(big, in_ptr[(b + 1) * T] - in_ptr[b * T])
    ev_cap = min(wsi.shape[1] - ni, S * T * nin0, max(1 << 26, big))
    if (wsf.shape[0] < n_chunks or wsw.shape[0] < n_chunks or wsi.shape[0] < n_chunks or wsf.shape[1] < nf
            or wsw.shape[1] < nws or ev_cap < big):
        raise ValueError("temporal_feedback: workspace too small (make it with temporal_workspace)")
    n0 = sizes[1]
    for c in prange(n_chunks):
        lo = bounds[c]
        hi = bounds[c + 1]
        v = np.empty(nmax, dtype=WT.dtype)
        I = np.empty(nmax, dtype=WT.dtype)
        optr = np.zeros((L, T + 1), dtype=np.int64)
        Cn = np.empty(nmax, dtype=np.float64)
        Rn = np.empty(nmax, dtype=np.float64)    # recurrent reward for step t (from t+1)
        accv = np.empty(nmax, dtype=np.float64)
        va = np.empty(nmax, dtype=np.float64)    # a conv layer's per-channel sums of W[:, i] . rho
        cnt = np.zeros(nin_max, dtype=np.int64)
        start = np.zeros(nin_max + 1, dtype=np.int64)
        fill = np.zeros(nin_max, dtype=np.int64)
        # the large buffers are views into the caller's workspace (reused across batches: no
        # per-call allocation, whose page faults cost up to 2x the epoch; layout: temporal_workspace)
        # c[t] and I[t] in the weights' dtype, as the forward computes them (exact; half the bytes
        # in float32, where a conv net's T x n buffers outgrow the caches)
        cbuf = wsw[c, 0: T * n_tot].reshape((T, n_tot))
        Ibuf = wsw[c, T * n_tot: 2 * T * n_tot].reshape((T, n_tot))
        f = wsf[c]
        g = f[0: T * nmax].reshape((T, nmax))
        gbelow = f[T * nmax: 2 * T * nmax].reshape((T, nmax))
        rhob = f[2 * T * nmax: 3 * T * nmax].reshape((T, nmax))
        xg = f[3 * T * nmax: 4 * T * nmax].reshape((T, nmax))     # graded credit factors below
        # layer 0 (the widest fan-in): rho of a sub-batch of S samples is kept (in the weights' dtype)
        # and its input events grouped by channel across the sub-batch, so each row of GT is touched
        # once per sub-batch
        rho0 = wsw[c, 2 * T * n_tot: 2 * T * n_tot + S * T * n0].reshape((S * T, n0))
        w_end = 2 * T * n_tot + S * T * n0
        wt = wsw[c, w_end: w_end + nw]     # W of a graded layer, row-major (n_out x n_in), and the graded
        accw = wsw[c, w_end + nw: w_end + nw + nmax]             # pass's sum and rho, in the weights' dtype
        rrw = wsw[c, w_end + nw + nmax: w_end + nw + 2 * nmax]
        oidx = wsi[c, 0: T * n_tot]
        tl = wsi[c, T * n_tot: T * n_tot + T * nin_max]
        tl0 = wsi[c, T * n_tot + T * nin_max: T * n_tot + T * nin_max + ev_cap]
        sl = 0
        Nout = np.empty(sizes[L], dtype=np.float64)
        dummy3 = np.empty((1, 1, 1), dtype=np.uint8)
        dummyf = np.empty((1, 1, 1), dtype=WT.dtype)
        dummyi = np.empty((1, 1, 1), dtype=np.int64)
        dummyz = np.empty((1, 1, 1), dtype=np.float64)
        nq = nmax if fx else 1
        ui = np.zeros(nq, dtype=np.int64)
        vi = np.zeros(nq, dtype=np.int64)
        ai = np.zeros(nq, dtype=np.int64)
        ri = np.zeros(nq, dtype=np.int64)
        gt = GT[c]
        gb = Gb[c]
        # g / gbelow hold the reward of the layer being processed / handed below. A pass that hands
        # reward through spikes only writes gbelow at its input spikes, into a buffer known to be zero
        # there and elsewhere: the layer below reads it whole and zeroes those entries again once read
        # (g_sparse). Dense writes (the output reward, a graded pass) leave their columns marked
        # (g_dirty / gb_dirty: how many columns may be nonzero), zeroed when the buffer is next
        # written through spikes. The workspace comes from the last call: both count as dirty.
        g_dirty = nmax
        gb_dirty = nmax
        g_sparse = False
        rc = recv[c]
        ps = passed[c]
        for b in range(lo, hi):
            # ---- forward, storing c[t] and I[t] of every layer
            for l in range(L):
                n_out = sizes[l + 1]
                if l == 0:
                    ip, pb, ix = in_ptr, b * T, in_idx
                else:
                    ip, pb, ix = optr[l - 1], 0, oidx[T * n_off[l - 1]: T * n_off[l]]
                if fx:
                    fixed_layer(ip, pb, ix, T, WTq, w_off[l], sizes[l], n_out, rec[l], conv[l, 0] == 1, conv[l, 1],
                                conv[l, 2], conv[l, 3], conv[l, 10] == 1, ct_ptr, ct_out, ct_k, qwexp[l], qdu[l],
                                qdv[l], qvth[l], qbias, n_off[l], ui, vi, ai, ri, optr[l],
                                oidx[T * n_off[l]: T * n_off[l + 1]],
                                counts, b, False, dummy3, False, dummyi, True, cbuf, Ibuf, qscale[l], False, dummyz)
                    continue
                v0 = w_off[l] + sizes[l] * n_out if rec[l] else -1
                cv = conv_args(conv, ct_ptr, ct_out, ct_k, l)
                run_layer(ip, pb, ix, T, WT, w_off[l], n_out, v0, cv, bias, has_bias[l], beta[l], theta[l],
                          reset[l], v, I, optr[l], oidx[T * n_off[l]: T * n_off[l + 1]], counts, b,
                          True, cbuf, Ibuf, False, dummy3, MEM_NONE, dummyf, n_off[l])
            # ---- output reward
            for k in range(sizes[L]):
                Nout[k] = counts[b, n_off[L - 1] + k]
            temporal_reward(Nout, optr[L - 1], oidx[T * n_off[L - 1]: T * n_off[L]], T,
                            labels[b], reward_kind, tau, g)
            g_dirty = max(g_dirty, sizes[L])
            g_sparse = False
            # ---- feedback, top layer first
            for l in range(L - 1, -1, -1):
                n_out = sizes[l + 1]
                n_in = sizes[l]
                col = n_off[l]
                w0 = w_off[l]
                if l == 0:
                    ip, pb, ix = in_ptr, b * T, in_idx
                else:
                    ip, pb, ix = optr[l - 1], 0, oidx[T * n_off[l - 1]: T * n_off[l]]
                for j in range(n_out):
                    Cn[j] = 0.0
                    Rn[j] = 0.0
                v0 = w0 + n_in * n_out
                own_p = optr[l]
                own_x = oidx[T * n_off[l]: T * n_off[l + 1]]
                rcl = rc[col: col + n_out]      # slices, not rc[col + j]: vectorisable
                psl = ps[col: col + n_out]
                scale = out_scale and l == L - 1
                bl = beta[l]
                is_conv, cin, cout, cptr, cto, ctk, diag = conv_args(conv, ct_ptr, ct_out, ct_k, l)
                sh_cin = channel_shift(cin)
                grd = contrib == CONTRIB_GRADED and l > 0 and not is_conv and conv[l - 1, 0] == 0
                if l > 0 and not grd and gb_dirty > 0:
                    gbelow[:, :gb_dirty] = 0.0    # filled at the input spikes below (a graded pass writes all)
                    gb_dirty = 0
                if grd:
                    _graded_inputs(cbuf, Ibuf, n_off[l - 1], n_in, T, theta[l - 1], reset[l - 1] == RESET_SUBTRACT,
                                   ip, ix, xg)
                # g from a pass through spikes only is folded into the carry at this layer's spikes
                folded = g_sparse and not track and not scale
                for t in range(T - 1, -1, -1):
                    rr = rhob[0] if is_conv else rhob[t]    # a conv layer uses rho[t] within step t only
                    gt_row = g[t]
                    crow_t = cbuf[t, col: col + n_out]
                    irow_t = Ibuf[t, col: col + n_out]
                    if folded:
                        # g[t] (and Rn) can be nonzero only at this step's own spikes: add them into
                        # the carry there, zeroing g once read, then one pass that reads no g (a
                        # T x n float64 stream less)
                        for e in range(own_p[t], own_p[t + 1]):
                            k = own_x[e]
                            Cn[k] = (gt_row[k] + Rn[k]) + Cn[k]
                            gt_row[k] = 0.0
                        _carry_folded(crow_t, irow_t, Cn, rr, eps, n_out, form == FORM_PAPER, bl)
                    elif form != FORM_PAPER and not scale:
                        _carry_step(crow_t, irow_t, gt_row, Rn, Cn, rr, eps, n_out)
                        if track:
                            _carry_sums(irow_t, gt_row, Rn, rr, rcl, psl, n_out)
                    else:
                        for j in range(n_out):
                            cc = np.float64(crow_t[j])    # stored in the weights' dtype, used in float64
                            ii = np.float64(irow_t[j])
                            if form == FORM_PAPER:
                                den = _paper_den(cc, ii, bl, eps)
                            else:
                                den = abs(cc) + abs(ii) + eps
                            gj = (gt_row[j] * den if scale else gt_row[j]) + Rn[j]
                            a = gj + Cn[j]
                            r = a / den
                            rr[j] = r
                            Cn[j] = cc * r
                            if track:
                                rcl[j] += abs(gj)
                                psl[j] += abs(ii * r)
                    if g_sparse and not folded:
                        for e in range(own_p[t], own_p[t + 1]):     # read: zero again (g_sparse above)
                            gt_row[own_x[e]] = 0.0
                    if l == 0 and not is_conv:
                        r0 = rho0[sl * T + t]        # kept (in the weights' dtype) for the sub-batch
                        for j in range(n_out):
                            r0[j] = rr[j]
                    if has_bias[l]:
                        gbrow = gb[col: col + n_out]
                        for j in range(n_out):
                            gbrow[j] += rr[j]
                    if rec[l] and t > 0:
                        for j in range(n_out):
                            Rn[j] = 0.0
                        for e in range(own_p[t - 1], own_p[t]):   # own spikes of step t-1
                            base = v0 + own_x[e] * n_out
                            vrow = WT[base: base + n_out]
                            grow = gt[base: base + n_out]
                            for j in range(n_out):
                                grow[j] += rr[j]
                            Rn[own_x[e]] = dot(vrow, rr, n_out)
                    if is_conv and l == 0:
                        # the input layer hands no reward below: only the kernel feedback (vectorised)
                        for e in range(ip[pb + t], ip[pb + t + 1]):
                            pin, ch = split_index(ix[e], cin, sh_cin)
                            for q in range(cptr[pin], cptr[pin + 1]):
                                base = w0 + (ctk[q] * cin + ch) * cout
                                grow = gt[base: base + cout]
                                o = cto[q] * cout
                                rseg = rr[o: o + cout]
                                for j in range(cout):
                                    grow[j] += rseg[j]
                    elif is_conv and diag:
                        # a pooling layer (fixed synapses, not trained): no kernel feedback, and the
                        # reward below through its one weight per tap (:func:`pool_dot`)
                        for e in range(ip[pb + t], ip[pb + t + 1]):
                            pin, ch = split_index(ix[e], cin, sh_cin)
                            gbelow[t, ix[e]] = pool_dot(WT, w0, cin, cout, cptr, cto, ctk, pin, ch, rr)
                    elif is_conv:
                        for e in range(ip[pb + t], ip[pb + t + 1]):
                            pin, ch = split_index(ix[e], cin, sh_cin)
                            # W[:, i] . rho over the taps: per output channel j summed over the taps (in
                            # table order; elementwise, so it vectorises), then over j (:func:`lane_sum`)
                            q0 = cptr[pin]
                            if q0 == cptr[pin + 1]:
                                continue                  # no tap reaches an output: nothing to hand down
                            for q in range(q0, cptr[pin + 1]):
                                base = w0 + (ctk[q] * cin + ch) * cout
                                wrow = WT[base: base + cout]
                                grow = gt[base: base + cout]
                                o = cto[q] * cout
                                rseg = rr[o: o + cout]
                                if q == q0:               # the first tap sets va (0 + x is x, to a zero's sign)
                                    for j in range(cout):
                                        grow[j] += rseg[j]
                                        va[j] = wrow[j] * rseg[j]
                                else:
                                    for j in range(cout):
                                        grow[j] += rseg[j]
                                        va[j] += wrow[j] * rseg[j]
                            gbelow[t, ix[e]] = lane_sum(va, cout)
                    elif l > 0 and not grd:
                        for e in range(ip[pb + t], ip[pb + t + 1]):
                            base = w0 + ix[e] * n_out
                            gbelow[t, ix[e]] = dot(WT[base: base + n_out], rr, n_out)   # slices vectorise
                if l == 0:
                    continue
                if grd:
                    _pass_graded(xg, T, n_in, WT, w0, n_out, rhob, wt, accw, rrw, gbelow)
                    gb_dirty = max(gb_dirty, n_in)
                if not is_conv:
                    # hidden layers: this sample's spikes, grouped by channel (layer 0: per sub-batch below)
                    _add_grouped(ip, pb, ix, 1, T, n_in, n_out, rhob, tl, cnt, start, fill, accv,
                                 gt[w0: w0 + n_in * n_out])
                g, gbelow = gbelow, g              # the reward below becomes the next layer's g
                g_dirty, gb_dirty = gb_dirty, g_dirty
                g_sparse = not grd
            if conv[0, 0] == 1:
                continue                           # a conv layer 0 accumulated its feedback directly
            sl += 1
            nxt_events = in_ptr[min(b + 2, B) * T] - in_ptr[(b + 1 - sl) * T]   # if one more sample joined
            if sl == S or b == hi - 1 or nxt_events > tl0.size:
                # each channel's rho rows summed in the weights' dtype (rho0's: a float32 net's sums in
                # float32, 8 lanes a vector, as its forward), then added to the float64 GT
                _add_grouped(in_ptr, (b + 1 - sl) * T, in_idx, sl, T, nin0, n0, rho0, tl0, cnt, start, fill,
                             accw, gt)
                sl = 0


@njit(cache=True)
def spike_count_feedback(a_in, counts, credit, zin, labels, T, sizes, w_off, WT, n_off, has_bias, theta, rec, conv,
                         ct_ptr, ct_out, ct_k, eps, reward_kind, tau, secant, GT, Gb, recv, passed):
    """Rule A (spike-count rule) for a batch: the window as a rate network.

    a_0 = input counts (B, n_in), a_l = spike counts of layer l, ``z_l = a_{l-1} W_l^T + T b_l``.
    Output: ``rho_L = reward(N_L)`` (:func:`count_reward`), ``R_L = z_L * rho_L``. Per layer from
    the top::

        GT_l = a_{l-1}^T rho_l        (-> F_W = |W| * GT)       Gb_l = T * sum_batch rho_l
        R_{l-1} = a_{l-1} * (rho_l W_l)   rho_{l-1} = R_{l-1} / (z + eps * sign(z)), sign(0) = +1

    A recurrent layer treats its own counts N_l as one more input: ``z_l += N_l V_l^T`` and
    ``GV_l = N_l^T rho_l``; the reward share through V is not passed on (the window has no
    earlier window to hand it to), like the share of the data input. A conv layer computes the
    other two products through its connection table (:func:`_conv_back`).

    ``credit`` (B, sum n_l), graded counts (docs/rules.md), or a (0, 0) array for spike credit:
    where given, a dense layer hands R to the dense/recurrent layer below as ``credit * (rho W)``
    and that layer's bounded secant uses it in place of a (F_W and z keep the spike counts).
    ``zin`` (B, sum n_l): each neuron's feed-forward input ``a_{l-1} W_l^T + T b_l`` as the forward
    summed it over t (``run_forward(count_sums=True)``): no matmul over the counts is needed for z.

    Writes GT (packed), Gb, recv = sum|R_l|, passed = sum|z_l rho_l| (all summed over the batch).
    The matmuls run in the dtype of ``a_in``, which must be the weights' (float32 nets: sgemm).
    """
    L = sizes.size - 1
    B = a_in.shape[0]
    acts = []
    zs = []
    prev = a_in
    for l in range(L):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        z = np.empty((B, n_out), dtype=a_in.dtype)
        nxt = np.empty((B, n_out), dtype=a_in.dtype)
        for b in range(B):
            for j in range(n_out):
                z[b, j] = zin[b, n_off[l] + j]
                nxt[b, j] = counts[b, n_off[l] + j]
        if rec[l]:
            V_T = WT[w_off[l] + n_in * n_out: w_off[l + 1]].reshape((n_out, n_out))
            z += np.dot(nxt, V_T)
        acts.append(prev)
        zs.append(z)
        prev = nxt
    nL = sizes[L]
    rho = np.empty((B, nL), dtype=a_in.dtype)
    Nrow = np.empty(nL, dtype=np.float64)
    for b in range(B):
        for k in range(nL):
            Nrow[k] = prev[b, k]
        count_reward(Nrow, labels[b], T, reward_kind, tau, rho[b])
    R = zs[L - 1] * rho
    for l in range(L - 1, -1, -1):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        col = n_off[l]
        z = zs[l]
        a = acts[l]
        for b in range(B):
            for j in range(n_out):
                recv[col + j] += abs(R[b, j])
                passed[col + j] += abs(z[b, j] * rho[b, j])
        if conv[l, 0] == 1:
            R_below = _conv_back(a, rho, WT, w_off[l], GT, conv_args(conv, ct_ptr, ct_out, ct_k, l))
        else:
            np.dot(a.T, rho, GT[w_off[l]: w_off[l] + n_in * n_out].reshape((n_in, n_out)))   # in place
        if rec[l]:
            own = acts[l + 1] if l + 1 < L else prev
            GT[w_off[l] + n_in * n_out: w_off[l + 1]] = np.dot(own.T, rho).ravel()
        if has_bias[l]:
            for j in range(n_out):
                acc = 0.0
                for b in range(B):
                    acc += rho[b, j]
                Gb[col + j] = T * acc
        if l > 0:
            graded = credit.shape[0] == B and conv[l, 0] == 0 and conv[l - 1, 0] == 0
            ab = a
            if graded:
                ab = np.empty((B, n_in), dtype=a_in.dtype)
                for b in range(B):
                    for i in range(n_in):
                        ab[b, i] = credit[b, n_off[l - 1] + i]
            if conv[l, 0] == 1:
                R = R_below
            else:
                W_T = WT[w_off[l]: w_off[l] + n_in * n_out].reshape((n_in, n_out))
                R = ab * np.dot(rho, W_T.T)
            zb = zs[l - 1]
            rho = np.empty((B, n_in), dtype=a_in.dtype)
            th = theta[l - 1]
            for b in range(B):
                for i in range(n_in):
                    zz = zb[b, i]
                    if secant == SECANT_BOUNDED and ab[b, i] > 0:
                        rho[b, i] = R[b, i] / (max(abs(zz), th * ab[b, i]) + eps)
                    else:
                        rho[b, i] = R[b, i] / (zz + (eps if zz >= 0 else -eps))


@njit(cache=True)
def _conv_back(a, rho, WT, w0, GT, cv):
    """Kernel feedback GT[row] += sum a * rho (weight-gradient form) and the reward below
    R = a * (transposed conv of rho), for a conv layer of the spike-count rule."""
    _, cin, cout, cptr, cto, ctk, diag = cv
    sh_cin = channel_shift(cin)
    B, n_in = a.shape
    R = np.zeros((B, n_in), dtype=a.dtype)
    va = np.empty(cout, dtype=np.float64)
    for b in range(B):
        for i in range(n_in):
            ai = a[b, i]
            if ai == 0:
                continue
            pin, ch = split_index(i, cin, sh_cin)
            rb = rho[b]
            if diag:
                # a pooling layer (fixed synapses): its kernel feedback is not kept, and the reward
                # below goes through its one weight per tap (:func:`pool_dot`)
                R[b, i] = ai * pool_dot(WT, w0, cin, cout, cptr, cto, ctk, pin, ch, rb)
                continue
            for j in range(cout):
                va[j] = 0.0
            for q in range(cptr[pin], cptr[pin + 1]):
                base = w0 + (ctk[q] * cin + ch) * cout
                o = cto[q] * cout
                rseg = rb[o: o + cout]
                grow = GT[base: base + cout]
                wrow = WT[base: base + cout]
                for j in range(cout):
                    grow[j] += ai * rseg[j]
                    va[j] += wrow[j] * rseg[j]
            R[b, i] = ai * lane_sum(va, cout)
    return R
