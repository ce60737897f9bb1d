"""Pure numba kernel: Loihi fixed-point LIF, bit-exact with Lava's ``fixed_pt`` models.

Integer arithmetic of lava-nc 0.10.0's ``PyDenseModelBitAcc`` and ``PyLifResetModelBitAcc``
(``lava/proc/dense/models.py``, ``lava/proc/lif/models.py``), per step and layer::

    a   = sum of w_q[:, i] over input spikes i;  a = a << e  (e > 0)  or  a >> -e  (floor)
    u'  = trunc0(u * (4096 - (du + 1)) / 4096) + (a << 6)          wrapped into 24 bits (Lava's way)
    v'  = clip(trunc0(v * (4096 - dv) / 4096) + u' + (bias_mant << bias_exp), -(2^23 - 1), 2^23 - 1)
    s   = v' > (vth << 6);   v' = 0 where s

``trunc0`` rounds toward zero (Lava: sign(x) * (|x| >> 12)). Lava's Dense adds one step of delay
per layer; this kernel does not (the exporter accounts for the shift). A recurrent layer's V is a
second Dense (Lava: from the layer's s_out back to its a_in; its one-step delay is the contract's
t-1): its sum over the layer's spikes of step t-1 is shifted by the same exponent on its own,
then added to a (Lava adds the two Dense outputs at the LIF's a_in).
"""

import numpy as np
from numba import njit, prange

from .lif import add_rows, channel_shift, record_spikes, split_index

UV_MAX = 2**23


@njit(cache=True, inline="always")
def _trunc_decay(x, factor):
    p = x * factor
    return p >> 12 if p >= 0 else -((-p) >> 12)


@njit(cache=True, inline="always")
def _lif_step(aj, rj, uj, vp, bias, sl, sr, fu, fv, th):
    """One neuron's step (the module docstring) on scalars, branch-free: ``aj`` / ``rj`` its summed
    feed-forward / recurrent weights, each shifted by the weight exponent (``<< sl >> sr``: one of
    the two is 0), ``uj`` its current, ``vp`` its membrane of the step before *before* reset (the
    reset is read back as ``vp > th``: a spike's v' = 0). Returns (u', the decayed membrane, v'
    before reset). The loops keep the loads and stores (so that they vectorise: a helper that took
    the arrays and the index kept them scalar)."""
    a = ((aj << sl) >> sr) + ((rj << sl) >> sr)
    dc = _trunc_decay(uj, fu) + (a << 6)
    wc = dc - 2 * UV_MAX if dc > UV_MAX else dc
    wc = dc + 2 * UV_MAX if wc <= -UV_MAX else wc     # Lava re-wraps from the unwrapped value
    carry = _trunc_decay(0 if vp > th else vp, fv)
    return wc, carry, min(max(carry + wc + bias, -UV_MAX + 1), UV_MAX - 1)


@njit(cache=True, error_model="numpy")    # no zero check in its divisions (all by positive scales): they vectorise
def fixed_layer(ip, pb, ix, T, WT, w0, n_in, n_out, rec_l, is_conv, cin, cout, cst, diag, ct_ptr, ct_out, ct_k, e, du,
                dv, vth, bias_eff, col, u, v, acc, racc, op, ox, counts, b, rec_raster, raster, rec_mem, mem,
                store, cbuf, Ibuf, qscale, sums, zs):
    """One layer of one sample for T steps in Loihi's integer arithmetic (the module docstring);
    returns its SynOps. Input spikes of step t: ``ix[ip[pb+t] : ip[pb+t+1]]``; output spikes go
    to ``op`` (T+1) / ``ox`` as CSR. With ``store`` the carry (the decayed membrane) and the input
    of every step go to ``cbuf/Ibuf[t, col + j]`` in float units (integer / ``qscale``): what the
    temporal rule's backward reads, so LFP trains on exactly this run. With ``sums`` the
    spike-count rule's sums over t go to ``zs[b, :, col + j]`` (float units): ``[1]`` the
    feed-forward input ``(a_ff << 6) + bias`` (without the recurrent rows), ``[0]`` the graded
    count ``clip(v / (vth << 6), 0, 1)``. ``diag``: a pooling layer (:func:`spikelfp.packed.is_diagonal`),
    whose input spike of channel c adds only the kernel's (c, c) entry per tap (the row's one
    nonzero; SynOps count that one synapse)."""
    synops = 0
    sh_cin = channel_shift(max(cin, 1))
    fu = 4096 - (du + 1)
    fv = 4096 - dv
    th = vth << 6
    sl = max(e, 0)       # the weight exponent as two shifts, one of them by 0: a << e, or a >> -e (floor)
    sr = max(-e, 0)
    brow = bias_eff[col: col + n_out]
    for j in range(n_out):
        u[j] = 0
        v[j] = 0
        acc[j] = 0
        racc[j] = 0
    op[0] = 0
    k = 0
    v0 = w0 + n_in * n_out
    for t in range(T):
        if is_conv and diag:
            for q in range(ip[pb + t], ip[pb + t + 1]):
                pin, ch = split_index(ix[q], cin, sh_cin)
                synops += ct_ptr[cst + pin + 1] - ct_ptr[cst + pin]
                for m in range(ct_ptr[cst + pin], ct_ptr[cst + pin + 1]):
                    acc[ct_out[m] * cout + ch] += WT[w0 + (ct_k[m] * cin + ch) * cout + ch]
            for j in range(n_out):          # Lava's signed_clamp(x, 24): a wrap
                acc[j] = ((acc[j] + UV_MAX) & (2 * UV_MAX - 1)) - UV_MAX   # floor mod 2^24, as a mask
        elif is_conv:
            for q in range(ip[pb + t], ip[pb + t + 1]):
                pin, ch = split_index(ix[q], cin, sh_cin)
                synops += (ct_ptr[cst + pin + 1] - ct_ptr[cst + pin]) * cout
                for m in range(ct_ptr[cst + pin], ct_ptr[cst + pin + 1]):
                    base = w0 + (ct_k[m] * cin + ch) * cout
                    o = ct_out[m] * cout
                    row = WT[base: base + cout]      # slices vectorise (as the float forward's)
                    seg = acc[o: o + cout]
                    for j in range(cout):
                        seg[j] += row[j]
            for j in range(n_out):          # Lava's signed_clamp(x, 24): a wrap
                acc[j] = ((acc[j] + UV_MAX) & (2 * UV_MAX - 1)) - UV_MAX   # floor mod 2^24, as a mask
        else:
            synops += (ip[pb + t + 1] - ip[pb + t]) * n_out
            add_rows(acc, WT, w0, n_out, ix, ip[pb + t], ip[pb + t + 1])    # eight rows a pass: integers, exact
        if rec_l and t > 0:
            synops += (op[t] - op[t - 1]) * n_out
            add_rows(racc, WT, v0, n_out, ox, op[t - 1], op[t])      # own spikes of step t-1
        # One branch-free pass over the neurons (:func:`_lif_step`); its variants differ only in
        # what they record, each a loop of its own so that it vectorises (a flag tested inside kept
        # the loop scalar: 2-3x slower)
        if not (rec_mem or sums):
            if store:
                crow = cbuf[t, col: col + n_out]
                irow = Ibuf[t, col: col + n_out]
                for j in range(n_out):
                    u[j], carry, vv = _lif_step(acc[j], racc[j], u[j], v[j], brow[j], sl, sr, fu, fv, th)
                    acc[j] = 0
                    racc[j] = 0
                    v[j] = vv
                    crow[j] = carry / qscale
                    irow[j] = (vv - carry) / qscale     # input and bias (and the clip) of this step
            else:
                for j in range(n_out):
                    u[j], carry, v[j] = _lif_step(acc[j], racc[j], u[j], v[j], brow[j], sl, sr, fu, fv, th)
                    acc[j] = 0
                    racc[j] = 0
        else:
            for j in range(n_out):
                af = (acc[j] << sl) >> sr            # the feed-forward input alone (the spike-count sums)
                u[j], carry, vv = _lif_step(acc[j], racc[j], u[j], v[j], brow[j], sl, sr, fu, fv, th)
                acc[j] = 0
                racc[j] = 0
                v[j] = vv
                if store:
                    cbuf[t, col + j] = carry / qscale
                    Ibuf[t, col + j] = (vv - carry) / qscale
                if rec_mem:
                    mem[b, t, col + j] = vv
                if sums:
                    zs[b, 1, col + j] += ((af << 6) + brow[j]) / qscale
                    gq = vv / th
                    zs[b, 0, col + j] += 0.0 if gq < 0.0 else (gq if gq < 1.0 else 1.0)
        k = record_spikes(v, th, n_out, ox, k, counts, b, col, rec_raster, raster, t)
        op[t + 1] = k
    return synops


@njit(cache=True, parallel=True)
def forward_fixed(in_ptr, in_idx, B, T, sizes, w_off, WT, n_off, rec, conv, ct_ptr, ct_out, ct_k, wexp, du, dv,
                  vth, bias_eff, n_chunks, counts, rec_raster, raster, rec_mem, mem, sums, zs, qscale):
    """Fixed-point forward pass; ``WT`` the integer weights in the packed transposed layout, ``bias_eff`` the
    per-neuron effective bias (bias_mant << bias_exp). Fills counts and optional rasters/membranes
    (v after the update, before the reset, in Lava's integer units); returns SynOps per sample.

    A conv layer (Lava's ``Conv``, fixed_pt) sums its kernel rows through the connection table
    (spikelfp.packed), wraps the sum into 24 signed bits (Lava's ``signed_clamp``) and applies no
    weight exponent (Lava's fixed Conv model has none). ``sums``: the spike-count rule's sums
    into ``zs`` (B, 2, sum n_l), in float units (integer / ``qscale[l]``; see :func:`fixed_layer`)."""
    L = sizes.size - 1
    nmax = 1
    for l in range(1, L + 1):
        nmax = max(nmax, sizes[l])
    synops = np.zeros(B, dtype=np.int64)
    dummy = np.empty((1, 1), dtype=np.float64)
    for c in prange(n_chunks):
        lo = c * B // n_chunks
        hi = (c + 1) * B // n_chunks
        u = np.zeros(nmax, dtype=np.int64)
        v = np.zeros(nmax, dtype=np.int64)
        acc = np.zeros(nmax, dtype=np.int64)
        racc = np.zeros(nmax, dtype=np.int64)
        ptr_a = np.zeros(T + 1, dtype=np.int64)
        ptr_b = np.zeros(T + 1, dtype=np.int64)
        idx_a = np.empty(T * nmax, dtype=np.int32)
        idx_b = np.empty(T * nmax, dtype=np.int32)
        for b in range(lo, hi):
            for l in range(L):
                if l == 0:
                    ip, pb, ix = in_ptr, b * T, in_idx
                elif l % 2 == 1:
                    ip, pb, ix = ptr_a, 0, idx_a
                else:
                    ip, pb, ix = ptr_b, 0, idx_b
                if l % 2 == 0:
                    op, ox = ptr_a, idx_a
                else:
                    op, ox = ptr_b, idx_b
                synops[b] += fixed_layer(ip, pb, ix, T, WT, w_off[l], sizes[l], sizes[l + 1], rec[l],
                                         conv[l, 0] == 1, conv[l, 1], conv[l, 2], conv[l, 3], conv[l, 10] == 1,
                                         ct_ptr, ct_out, ct_k,
                                         wexp[l], du[l], dv[l], vth[l], bias_eff, n_off[l], u, v, acc, racc, op, ox,
                                         counts, b, rec_raster, raster, rec_mem, mem, False, dummy, dummy,
                                         qscale[l], sums, zs)
    return synops
