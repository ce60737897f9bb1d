"""Slow, obvious numpy references for every kernel (written from docs/, not from the kernels)."""

import math

import numpy as np


def forward(net, x, dtype=np.float64):
    """Dense time-stepped LIF forward in ``dtype``. x: (B, T, n_in) 0/1. Per layer (raster, membrane).

    A recurrent layer adds V[:, k] for its own spikes k of step t-1 after the input's rows."""
    out = []
    inp = np.asarray(x, dtype=dtype)
    for layer in net.layers:
        W = layer.weight.astype(dtype)
        V = None if layer.recurrent is None else layer.recurrent.astype(dtype)
        b = np.zeros(layer.n_out, dtype) if layer.bias is None else layer.bias.astype(dtype)
        beta, theta = dtype(layer.beta), dtype(layer.threshold)
        B, T, _ = inp.shape
        raster = np.zeros((B, T, layer.n_out), dtype=np.uint8)
        mem = np.zeros((B, T, layer.n_out), dtype)
        for s_ in range(B):
            v = np.zeros(layer.n_out, dtype)
            s = np.zeros(layer.n_out, dtype)
            for t in range(T):
                I = b.copy()
                for i in np.flatnonzero(inp[s_, t]):   # same order as the kernel: ascending i
                    I += W[:, i]
                if V is not None:
                    for k in np.flatnonzero(s):          # own spikes of t-1, ascending k
                        I += V[:, k]
                if layer.reset == "zero":
                    v = beta * v * (1 - s) + I
                else:
                    v = beta * v + I - theta * s
                s = (v > theta).astype(dtype)
                raster[s_, t] = s
                mem[s_, t] = v
        out.append((raster, mem))
        inp = raster.astype(dtype)
    return out


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def count_reward(N, y, T, kind, tau):
    n = len(N)
    if kind == "explain":
        r = np.zeros(n)
        r[y] = 1.0
        return r
    if kind in ("softmax", "ce"):
        e = np.exp(np.asarray(N, float) / tau - np.max(np.asarray(N, float) / tau))
        p = e / e.sum()
        r = -p
        r[y] += 1
        return r
    r = np.zeros(n)
    for k in range(n):
        if k == y:
            r[k] = 1 - sigmoid(N[k] - T // 2)
        else:
            r[k] = -(N[k] / T) * (1 - sigmoid((T - N[k]) - T // 2))
    return r


def temporal_reward(raster_out, y, kind, tau):
    """raster_out: (T, n) of one sample -> g (T, n)."""
    T, n = raster_out.shape
    N = raster_out.sum(0)
    g = np.zeros((T, n))
    if kind in ("ce", "explain"):         # onehot - softmax(N / tau) (explain: onehot) at every step
        g[:] = count_reward(N, y, T, kind, tau)
    elif kind == "softmax":
        r = count_reward(N, y, T, "softmax", tau)
        g[:, y] = r[y]
        for k in range(n):
            if k != y:
                g[:, k] = raster_out[:, k] * r[k]
    else:
        g[:, y] = 1 - sigmoid(N[y] - T // 2)
        for k in range(n):
            if k != y:
                g[:, k] = -raster_out[:, k] * (1 - sigmoid((T - N[k]) - T // 2))
    return g


def credit_factors(net, fw, l, contrib):
    """Graded credit of layer l-1's neurons as seen from layer l (docs/rules.md): (B, T, n) of 1 at a
    spike, else clip(v / theta, 0, 1); None where the credit is spikes only (``contrib="spikes"``,
    the input layer, or a conv layer on either side: a dense equivalent carries ``from_conv``)."""
    if contrib != "graded" or l == 0:
        return None
    layer, below = net.layers[l], net.layers[l - 1]
    if getattr(layer, "from_conv", False) or getattr(below, "from_conv", False):
        return None
    ras, mem = fw[l - 1]
    return np.where(ras > 0, 1.0, np.clip(mem.astype(np.float64) / below.threshold, 0.0, 1.0))


def dequantized_net(q):
    """The float network a Loihi fixed-point run is (docs: spikelfp.loihi.dequantized): weights
    w_int * 2^(e+6) / scale, bias_int / scale, threshold vth * 64 / scale, beta (4096 - dv) / 4096."""
    import spikelfp

    layers = []
    for la in q.layers:
        f = 2.0 ** (la.weight_exp + 6) / la.scale
        b = (la.bias_mant.astype(np.int64) << la.bias_exp) / la.scale
        layers.append(spikelfp.LIFLayer(la.weight * f, b if np.any(b) else None, beta=(4096 - la.dv) / 4096,
                                        threshold=la.vth * 64 / la.scale,
                                        recurrent=None if la.recurrent is None else la.recurrent * f))
    return spikelfp.Network(layers)


def fixed_carry_input(q, fw_int):
    """Per layer (raster, v / scale, c, I) of a fixed-point run: c = trunc0(v_after_reset[t-1] *
    (4096 - dv) / 4096) / scale (the decayed membrane), I = (v[t] - c_int) / scale."""
    out = []
    for la, (ras, mem) in zip(q.layers, fw_int):
        prev = np.concatenate([np.zeros_like(mem[:, :1]), mem[:, :-1] * (1 - ras[:, :-1])], axis=1)
        d = prev * (4096 - la.dv)
        carry = np.sign(d) * (np.abs(d) >> 12)
        out.append((ras, mem / la.scale, carry / la.scale, (mem - carry) / la.scale))
    return out


def temporal_feedback(net, x, labels, eps=1e-6, kind="rate", tau=2.0, weight_scaling=True, out_scale=False,
                      form="carry", contrib="graded", fixed=None):
    """Rule B, straight from docs/rules.md. Returns (F_W list, F_b list, received, passed).

    form "carry": D = |c| + |I| + eps; "paper" (lfprop 1.0.0): u = v[t-1] after its reset,
    D = |u| + |I - (1 - beta) u| + eps; both carry c rho = beta u rho back in time.
    out_scale: the output reward g[t] is given in membrane units, g[t] * D[t] (so rho = g + ...).
    Recurrent layers: I[t] includes V s[t-1]; the reward s[t-1] * (V^T rho[t]) joins the same
    layer's reward at t-1, and F_V += rho[t] outer s[t-1]. Returns F_V as a 5th item (None where
    a layer is feed-forward).
    fixed (a LoihiNetwork): the forward is its integer run (loihi_fixed_forward), c and I its
    carries and inputs in float units (fixed_carry_input), and ``net`` must be dequantized_net(fixed).
    contrib "graded": below a dense layer l > 0, a dense/recurrent neuron k (a conv layer's dense
    equivalent carries ``from_conv``: neither it nor the layer below it is graded) that did not
    spike at t gets ``clip(v_k[t] / theta, 0, 1) * (W^T rho[t])_k`` (v = its membrane after
    the input, before reset); "spikes": only spiking neurons get a reward from above.
    """
    if fixed is not None:
        fci = fixed_carry_input(fixed, loihi_fixed_forward(fixed, x))
        fw = [(r, m) for r, m, _, _ in fci]
    else:
        fw = forward(net, x)
        fci = None
    B = x.shape[0]
    L = len(net.layers)
    FV = [None if la.recurrent is None else np.zeros((la.n_out, la.n_out)) for la in net.layers]
    FW = [np.zeros_like(la.weight, dtype=np.float64) for la in net.layers]
    Fb = [np.zeros(la.n_out) for la in net.layers]
    recv = [np.zeros(la.n_out) for la in net.layers]
    passed = [np.zeros(la.n_out) for la in net.layers]
    for s_ in range(B):
        g = temporal_reward(fw[-1][0][s_].astype(float), labels[s_], kind, tau)
        for l in range(L - 1, -1, -1):
            layer = net.layers[l]
            W = layer.weight.astype(np.float64)
            b = np.zeros(layer.n_out) if layer.bias is None else layer.bias.astype(np.float64)
            xin = (x[s_] if l == 0 else fw[l - 1][0][s_]).astype(np.float64)
            raster, mem = fw[l][0][s_].astype(float), fw[l][1][s_]
            T = xin.shape[0]
            C = np.zeros(layer.n_out)
            g_below = np.zeros((T, layer.n_in))
            g_rec = np.zeros((T, layer.n_out))
            V = None if layer.recurrent is None else layer.recurrent.astype(np.float64)
            factors = credit_factors(net, fw, l, contrib)
            xgr = xin if factors is None else factors[s_]
            for t in range(T - 1, -1, -1):
                v_prev = mem[t - 1] if t > 0 else np.zeros(layer.n_out)
                s_prev = raster[t - 1] if t > 0 else np.zeros(layer.n_out)
                u = v_prev * (1 - s_prev) if layer.reset == "zero" else v_prev
                c = layer.beta * u
                I = W @ xin[t] + b + (V @ s_prev if V is not None else 0.0)
                if fci is not None:
                    c, I = fci[l][2][s_, t], fci[l][3][s_, t]
                if form == "paper":
                    D = np.abs(u) + np.abs(I - (1 - layer.beta) * u) + eps
                else:
                    D = np.abs(c) + np.abs(I) + eps
                gt = (g[t] * D if (out_scale and l == L - 1) else g[t]) + g_rec[t]
                A = gt + C
                rho = A / D
                C = c * rho
                if V is not None and t > 0:
                    g_rec[t - 1] = s_prev * (V.T @ rho)
                    FV[l] += np.outer(rho, s_prev)
                FW[l] += np.outer(rho, xin[t])
                Fb[l] += rho
                g_below[t] = xgr[t] * (W.T @ rho)
                recv[l] += np.abs(gt)
                passed[l] += np.abs(I * rho)
            g = g_below
    for l, layer in enumerate(net.layers):
        if weight_scaling:
            FW[l] *= np.abs(layer.weight)
            Fb[l] = Fb[l] * (np.abs(layer.bias) if layer.bias is not None else 0.0)
            if FV[l] is not None:
                FV[l] *= np.abs(layer.recurrent)
        elif layer.bias is None:
            Fb[l] = Fb[l] * 0.0
    return FW, Fb, np.concatenate(recv), np.concatenate(passed), FV


def spike_count_feedback(net, x, labels, eps=1e-6, kind="softmax", tau=2.0, weight_scaling=True, secant="signed",
                         contrib="spikes", fixed=None):
    """Rule A, straight from docs/rules.md. Returns (F_W, F_b, received, passed, lrp_sums).

    secant "signed": rho = R / (z + eps sign z); "bounded": a spiking neuron (count a > 0) takes
    rho = R / (max(|z|, theta a) + eps) -- its secant a / z kept positive and at most 1 / theta.

    lrp_sums[l] = (sum of R handed below + bias share + recurrent share, sum of z*rho) per layer: equal
    (LRP conservation). Recurrent layers: z += N V^T (N = the layer's own counts), F_V = rho^T N
    (6th item; None for feed-forward layers); the recurrent share is not passed on.
    contrib "graded": below a dense layer, a dense/recurrent layer's reward is handed to its graded
    counts, sum over t of 1 (spike) or clip(v[t]/theta, 0, 1), and its bounded secant uses them;
    lrp_sums stay those of the spike counts (the graded excess is extra credit, as in Rule B).
    fixed (a LoihiNetwork; ``net`` = dequantized_net(fixed)): counts from its integer run, z the sum
    over t of each step's integer feed-forward input ((shifted W x[t]) << 6 + bias) / scale, the
    graded counts clip(v_int / (vth << 6), 0, 1) summed.
    """
    T = x.shape[1]
    if fixed is not None:
        fwi = loihi_fixed_forward(fixed, x)
        fw = [(r, m / la.scale) for (r, m), la in zip(fwi, fixed.layers)]
    else:
        fw = forward(net, x)
    acts = [x.sum(1).astype(float)] + [r.sum(1).astype(float) for r, _ in fw]
    zs = []
    for l, layer in enumerate(net.layers):
        b = np.zeros(layer.n_out) if layer.bias is None else layer.bias
        if fixed is not None:
            la = fixed.layers[l]
            inp = (x if l == 0 else fwi[l - 1][0]).astype(np.int64)
            ff = inp @ la.weight.astype(np.int64).T                       # (B, T, n_out), exact integers
            ff = ff << la.weight_exp if la.weight_exp > 0 else ff >> -la.weight_exp
            z = (((ff << 6) + (la.bias_mant.astype(np.int64) << la.bias_exp)) / la.scale).sum(1)
        else:
            z = acts[l] @ layer.weight.T + T * b
        if layer.recurrent is not None:
            z = z + acts[l + 1] @ layer.recurrent.T
        zs.append(z)
    L = len(net.layers)
    rho = np.stack([count_reward(acts[L][k], labels[k], T, kind, tau) for k in range(x.shape[0])])
    R = zs[-1] * rho
    FW, Fb, recv, passed, sums, FV = [None] * L, [None] * L, [None] * L, [None] * L, [None] * L, [None] * L
    for l in range(L - 1, -1, -1):
        layer = net.layers[l]
        a = acts[l]
        W = layer.weight
        b = np.zeros(layer.n_out) if layer.bias is None else layer.bias
        FW[l] = np.einsum("bj,bi->ji", rho, a)
        Fb[l] = T * rho.sum(0) if layer.bias is not None else np.zeros(layer.n_out)
        rec_share = 0.0
        if layer.recurrent is not None:
            N = acts[l + 1]
            FV[l] = np.einsum("bj,bk->jk", rho, N)
            rec_share = (N * (rho @ layer.recurrent)).sum()
            if weight_scaling:
                FV[l] = np.abs(layer.recurrent) * FV[l]
        if weight_scaling:
            FW[l] = np.abs(W) * FW[l]
            Fb[l] = np.abs(b) * Fb[l]
        recv[l] = np.abs(R).sum(0)
        passed[l] = np.abs(zs[l] * rho).sum(0)
        R_below = a * (rho @ W)
        sums[l] = (R_below.sum() + (T * b * rho).sum() + rec_share, (zs[l] * rho).sum())
        factors = credit_factors(net, fw, l, contrib)
        if factors is not None:
            a = factors.sum(1)                     # graded counts
            R_below = a * (rho @ W)
        if l > 0:
            z = zs[l - 1]
            rho = R_below / (z + eps * np.where(z >= 0, 1.0, -1.0))
            if secant == "bounded":
                theta = net.layers[l - 1].threshold
                bounded = R_below / (np.maximum(np.abs(z), theta * a) + eps)
                rho = np.where(a > 0, bounded, rho)
            R = R_below
    return FW, Fb, np.concatenate(recv), np.concatenate(passed), sums, FV


def adam(w, grads, lr, b1=0.9, b2=0.999, eps=1e-8):
    """Plain Adam over a list of gradients; returns the weights after each step."""
    w = w.copy()
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat = m / (1 - b1**t)
        vhat = v / (1 - b2**t)
        w = w - lr * mhat / (np.sqrt(vhat) + eps)
    return w


def bin_events(x, y, t, p, bin_us, n_bins, start_us, f, W, merge):
    """Set of (step, channel) pairs, sorted."""
    Wd = -(-W // f)
    P = 1 if merge else 2
    out = set()
    for xi, yi, ti, pi in zip(x, y, t, p):
        k = int((ti - start_us) // bin_us)
        if ti < start_us or k >= n_bins:
            continue
        out.add((k, ((yi // f) * Wd + xi // f) * P + (0 if merge else pi)))
    return sorted(out)


def loihi_fixed_forward(q, x):
    """Lava's bit-accurate Dense + LIF(Reset) integer arithmetic, vectorised per step in numpy,
    written from lava/proc/{dense,lif}/models.py (no Dense delay). Returns per layer (raster, v).
    A recurrent layer's V is a second Dense (own weight_exp shift) fed by the layer's spikes of t-1."""
    M = 2**23
    out = []
    inp = np.asarray(x, dtype=np.int64)
    for la in q.layers:
        W = la.weight.astype(np.int64)
        V = None if la.recurrent is None else la.recurrent.astype(np.int64)
        bias = la.bias_mant.astype(np.int64) << la.bias_exp
        B, T, _ = inp.shape
        raster = np.zeros((B, T, W.shape[0]), np.uint8)
        mem = np.zeros((B, T, W.shape[0]), np.int64)
        u = np.zeros((B, W.shape[0]), np.int64)
        v = np.zeros((B, W.shape[0]), np.int64)
        s = np.zeros((B, W.shape[0]), bool)

        def shift(a, e=la.weight_exp):
            return a << e if e > 0 else a >> -e

        for t in range(T):
            a = shift(inp[:, t] @ W.T)
            if V is not None:
                a = a + shift(s.astype(np.int64) @ V.T)
            du = u * (4096 - (la.du + 1))
            du = np.sign(du) * (np.abs(du) >> 12)
            dc = du + (a << 6)
            wc = np.where(dc > M, dc - 2 * M, dc)
            wc = np.where(wc <= -M, dc + 2 * M, wc)
            u = wc
            dv = v * (4096 - la.dv)
            dv = np.sign(dv) * (np.abs(dv) >> 12)
            v = np.clip(dv + u + bias, -M + 1, M - 1)
            s = v > (la.vth << 6)
            mem[:, t] = v
            raster[:, t] = s
            v = np.where(s, 0, v)
        out.append((raster, mem))
        inp = raster.astype(np.int64)
    return out


def conv_dense_matrix(layer):
    """The (n_out, n_in) dense matrix of a ConvLayer, straight from the definition
    I[y', x', o] = sum_{c, ky, kx} kernel[o, c, ky, kx] x[y' S - P + ky, x' S - P + kx, c] (channels-last),
    and a map ``tie`` of the same shape: the flat kernel index each entry is a copy of (-1: no connection)."""
    H, W, C = layer.in_shape
    Ho, Wo, Co = layer.out_shape
    K, S, P = layer.kernel_size, layer.stride, layer.padding
    M = np.zeros((Ho * Wo * Co, H * W * C), dtype=layer.weight.dtype)
    tie = -np.ones(M.shape, dtype=np.int64)
    for yo in range(Ho):
        for xo in range(Wo):
            for o in range(Co):
                for c in range(C):
                    for ky in range(K):
                        for kx in range(K):
                            y, x = yo * S - P + ky, xo * S - P + kx
                            if 0 <= y < H and 0 <= x < W:
                                r, q = (yo * Wo + xo) * Co + o, (y * W + x) * C + c
                                M[r, q] = layer.weight[o, c, ky, kx]
                                tie[r, q] = np.ravel_multi_index((o, c, ky, kx), layer.weight.shape)
    return M, tie


def dense_equivalent(net):
    """The same network with every conv layer as its dense matrix (bias expanded per position)."""
    import spikelfp

    layers = []
    for la in net.layers:
        if isinstance(la, spikelfp.ConvLayer):
            M, _ = conv_dense_matrix(la)
            b = None if la.bias is None else np.tile(la.bias, la.out_shape[0] * la.out_shape[1])
            dense = spikelfp.LIFLayer(M, b, la.beta, la.threshold, la.reset)
            dense.from_conv = True          # the temporal rule hands a conv layer's reward down to spikes only
            layers.append(dense)
        else:
            layers.append(la)
    return spikelfp.Network(layers, dt=net.dt)


def fold_conv_feedback(net, FW, Fb):
    """Dense-equivalent feedback -> per-kernel-weight and per-channel feedback (a shared weight's
    feedback is the sum over its copies: |w| is the same for each)."""
    import spikelfp

    outW, outb = [], []
    for la, fw, fb in zip(net.layers, FW, Fb):
        if isinstance(la, spikelfp.ConvLayer):
            _, tie = conv_dense_matrix(la)
            k = np.zeros(la.weight.size)
            np.add.at(k, tie[tie >= 0], fw[tie >= 0])
            outW.append(k.reshape(la.weight.shape))
            outb.append(np.asarray(fb).reshape(-1, la.out_shape[2]).sum(0))
        else:
            outW.append(fw)
            outb.append(fb)
    return outW, outb
