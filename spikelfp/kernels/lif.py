"""Pure numba kernels: the event-driven LIF forward pass.

Weights travel as one flat buffer ``WT`` holding, per layer l, W_l transposed (n_in x n_out,
row-major) at ``WT[w_off[l] : w_off[l+1]]``: a presynaptic spike of channel i adds the contiguous
row ``WT[w_off[l] + i*n_out : ... + n_out]`` to the input current ("one SynOp per fan-out").
Biases, thresholds and decays are flat per-neuron / per-layer arrays; see
:func:`spikelfp.kernels.pack`.

A recurrent layer's V.T follows its W.T in ``WT`` (at ``v0``): the layer's own spikes of step
t-1 add their rows after the input's.

Per step t (docs/neuron.md)::

    I[t] = b + sum over input spikes i at t of W[:, i]      (added in ascending i)
             + sum over own spikes k at t-1 of V[:, k]     (recurrent layers; ascending k)
    zero:      v[t] = beta * v[t-1] * (1 - s[t-1]) + I[t]
    subtract:  v[t] = (beta * v[t-1] + I[t]) - theta * s[t-1]
    s[t] = v[t] > theta
"""

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

RESET_ZERO = 0
RESET_SUBTRACT = 1

MEM_NONE = 0     # mem_mode: record no membranes
MEM_TRACE = 1    # mem[b, t, n] = v[t] (after the input, before reset)
MEM_Z = 2        # the spike-count rule's sums over t (mem (B, 2, n)): mem[b, 1, n] = sum of the
                 # feed-forward input current b + W x[t] (its z, without the recurrent rows)
MEM_Z_GRADED = 3  # and mem[b, 0, n] = sum of clip(v[t] / theta, 0, 1) (graded counts)


def _cttz(x):
    """Count of trailing zero bits of a nonzero uint64: one ``tzcnt`` in compiled code (the
    overload below); this plain-Python body serves ``NUMBA_DISABLE_JIT=1`` runs."""
    x = int(x)
    return np.uint64((x & -x).bit_length() - 1)


@intrinsic
def _cttz_llvm(typingctx, x):
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))    # x == 0 is never passed
    return sig, codegen


@overload(_cttz)
def _cttz_compiled(x):
    if isinstance(x, types.Integer):
        return lambda x: _cttz_llvm(np.uint64(x))


@njit(cache=True, inline="always")
def emit_bits(m, base, out, k):
    """Append ``base +`` the positions of the set bits of the uint64 ``m``, ascending, to
    ``out[k:]`` (one ``tzcnt`` each); returns the new k."""
    while m != 0:
        out[k] = base + np.int64(_cttz(m))
        k += 1
        m &= m - np.uint64(1)
    return k


@njit(cache=True, inline="always")
def compress_spikes(v, theta, n_out, oidx, k):
    """Append the indices j (ascending) with ``v[j] > theta`` to ``oidx[k:]``; returns the new k.

    Per 64 neurons the comparisons are packed into one 64-bit mask (vectorised: compare, then
    OR in the bits), and the set bits are walked with ``tzcnt``: the work follows the spikes, not
    the neurons. The tail (n_out % 64) uses the branch-free store-and-advance loop."""
    nw = n_out // 64
    for w in range(nw):
        base = w * 64
        vw = v[base: base + 64]
        m = np.uint64(0)
        for q in range(64):
            m |= np.uint64(1 if vw[q] > theta else 0) << np.uint64(q)
        k = emit_bits(m, base, oidx, k)
    for j in range(nw * 64, n_out):
        oidx[k] = j
        k += 1 if v[j] > theta else 0
    return k


@njit(cache=True, inline="always")
def record_spikes(v, theta, n_out, oidx, k, counts, b, col, rec_raster, raster, t):
    """Step t's spikes (``v > theta``, :func:`compress_spikes`) appended to ``oidx[k:]``, counted into
    ``counts[b, col + j]`` and, with ``rec_raster``, set in ``raster[b, t, col + j]``; returns the new
    k. The float forward and the Loihi integer forward both end each step with it."""
    k0 = k
    k = compress_spikes(v, theta, n_out, oidx, k)
    for q in range(k0, k):
        counts[b, col + oidx[q]] += 1
    if rec_raster:
        for q in range(k0, k):
            raster[b, t, col + oidx[q]] = 1
    return k


@njit(cache=True, inline="always")
def channel_shift(cin):
    """log2(cin) when a conv layer's input channel count is a power of two, else -1: the argument
    :func:`split_index` takes."""
    sh = 0
    while (1 << sh) < cin:
        sh += 1
    return sh if (1 << sh) == cin else -1


@njit(cache=True, inline="always")
def split_index(i, cin, sh):
    """(pixel, channel) of a conv layer's input ``i = pixel * cin + channel``; ``sh`` from
    :func:`channel_shift`. A shift where cin is a power of two (1, 2 polarities, 16, 32, 64
    channels): the division's latency sits on every input spike's path to its connection table,
    and the conv forward ran ~10 % faster without it (docs/performance.md); ``i // cin``
    otherwise."""
    p = i >> sh if sh >= 0 else i // cin
    return p, i - p * cin


@njit(cache=True)
def _conv_accumulate(ptr, r, idx, WT, w0, cin, cout, cptr, cto, ctk, diag, I):
    """Add the kernel rows of a conv layer's input spikes of row ``r`` (step) to I; returns the
    SynOps. Kept out of :func:`run_layer` so that the dense row-add loop compiles as before.
    ``diag`` (a pooling layer, :func:`spikelfp.packed.is_diagonal`): a spike of channel c adds only
    the kernel's (c, c) entry, the row's one nonzero (the others add exact zeros: same bits)."""
    ops = 0
    kstride = cin * cout
    sh_cin = channel_shift(cin)
    if diag:
        for e in range(ptr[r], ptr[r + 1]):
            pin, ch = split_index(idx[e], cin, sh_cin)
            wc = w0 + ch * cout + ch
            q0, q1 = cptr[pin], cptr[pin + 1]
            ops += q1 - q0
            for q in range(q0, q1):
                I[cto[q] * cout + ch] += WT[wc + ctk[q] * kstride]
        return ops
    for e in range(ptr[r], ptr[r + 1]):
        pin, ch = split_index(idx[e], cin, sh_cin)
        wc = w0 + ch * cout
        q0, q1 = cptr[pin], cptr[pin + 1]
        ops += (q1 - q0) * cout
        for q in range(q0, q1):
            base = wc + ctk[q] * kstride
            o = cto[q] * cout
            row = WT[base: base + cout]     # slices: indexing WT[base + j] measured 2x slower
            seg = I[o: o + cout]
            for j in range(cout):
                seg[j] += row[j]
    return ops


@njit(cache=True, inline="always")
def add_rows(I, WT, w0, n_out, idx, e0, e1):
    """``I += WT[w0 + idx[e]*n_out : ... + n_out]`` for e = e0 .. e1-1, in that order.

    Eight rows (then four, two, one) are added in one pass over I: each element is loaded and
    stored once per eight rows and the sums run in the same order as one row at a time, so the
    bits are those of the plain row-add loop. The one-row loop is bound by I's loads and stores
    (two loads, one store per SynOp); this does nine loads and one store per eight SynOps:
    1.5-1.9x its SynOps/s on float32 (docs/performance.md; ``benchmarks/simulator.py`` measures both).
    """
    e = e0
    while e + 8 <= e1:
        b0 = w0 + idx[e] * n_out
        b1 = w0 + idx[e + 1] * n_out
        b2 = w0 + idx[e + 2] * n_out
        b3 = w0 + idx[e + 3] * n_out
        b4 = w0 + idx[e + 4] * n_out
        b5 = w0 + idx[e + 5] * n_out
        b6 = w0 + idx[e + 6] * n_out
        b7 = w0 + idx[e + 7] * n_out
        r0 = WT[b0: b0 + n_out]     # slices, not WT[base + j]: lets LLVM vectorise (4-5x)
        r1 = WT[b1: b1 + n_out]
        r2 = WT[b2: b2 + n_out]
        r3 = WT[b3: b3 + n_out]
        r4 = WT[b4: b4 + n_out]
        r5 = WT[b5: b5 + n_out]
        r6 = WT[b6: b6 + n_out]
        r7 = WT[b7: b7 + n_out]
        for j in range(n_out):
            I[j] = (((((((I[j] + r0[j]) + r1[j]) + r2[j]) + r3[j]) + r4[j]) + r5[j]) + r6[j]) + r7[j]
        e += 8
    if e + 4 <= e1:
        b0 = w0 + idx[e] * n_out
        b1 = w0 + idx[e + 1] * n_out
        b2 = w0 + idx[e + 2] * n_out
        b3 = w0 + idx[e + 3] * n_out
        r0 = WT[b0: b0 + n_out]
        r1 = WT[b1: b1 + n_out]
        r2 = WT[b2: b2 + n_out]
        r3 = WT[b3: b3 + n_out]
        for j in range(n_out):
            I[j] = (((I[j] + r0[j]) + r1[j]) + r2[j]) + r3[j]
        e += 4
    if e + 2 <= e1:
        b0 = w0 + idx[e] * n_out
        b1 = w0 + idx[e + 1] * n_out
        r0 = WT[b0: b0 + n_out]
        r1 = WT[b1: b1 + n_out]
        for j in range(n_out):
            I[j] = (I[j] + r0[j]) + r1[j]
        e += 2
    while e < e1:
        b0 = w0 + idx[e] * n_out
        r0 = WT[b0: b0 + n_out]
        for j in range(n_out):
            I[j] += r0[j]
        e += 1


@njit(cache=True, inline="always")
def _fill_input(I, brow, n_out, has_bias):
    """I = the bias (or 0): the input current every step starts from."""
    if has_bias:
        for j in range(n_out):
            I[j] = brow[j]
    else:
        for j in range(n_out):
            I[j] = 0.0


@njit(cache=True, inline="always")
def run_layer(ptr, pbase, idx, T, WT, w0, n_out, v0, cv, bias, has_bias, beta, theta, reset,
              v, I, optr, oidx, counts, b,
              store_ci, cbuf, Ibuf, rec_raster, raster, mem_mode, mem, col):
    """Run one layer of one sample for T steps; returns the input's synaptic operations.

    Input spikes of step t: ``idx[ptr[pbase+t] : ptr[pbase+t+1]]``. Output spikes are written as
    CSR into ``optr`` (T+1) / ``oidx`` (with ``v0 >= 0``, they also feed back through V.T at
    ``WT[v0:]``; -1: no recurrence); spike counts into ``counts[b, col : col+n_out]``; the bias
    is ``bias[col : col+n_out]``. ``cv`` = (is_conv, C_in, C_out, ct_ptr, ct_out, ct_k, diagonal): for a conv
    layer an input spike i = p * C_in + c adds the kernel row ``(k * C_in + c)`` (C_out weights)
    at every output pixel of its connection table (see :mod:`spikelfp.packed`).
    With ``store_ci`` the carry c[t] and input I[t] go to ``cbuf/Ibuf[t, col : col+n_out]``
    (the temporal rule needs them); rasters go to ``raster[b, t, col + j]``; ``mem_mode`` MEM_TRACE
    writes membranes to ``mem[b, t, col + j]``; MEM_Z sums the feed-forward input current
    ``b + W x[t]`` (before a recurrent layer's own rows) over t into ``mem[b, 1, col + j]``: the
    spike-count rule's ``z = a W^T + T b``, in time order, with no matmul over the window's counts;
    MEM_Z_GRADED also sums ``clip(v[t] / theta, 0, 1)`` into ``mem[b, 0, col + j]`` (a spike's
    v > theta counts exactly 1: the rule's graded counts, docs/rules.md, without a B x T x n buffer).

    ``v`` and ``I`` are work arrays in the weights' dtype; ``beta`` and ``theta`` come in that
    dtype too, so float32 runs in float32 throughout. ``v`` keeps each neuron's membrane before
    reset, so whether it spiked at the step before is ``v > theta`` again: the reset reads that
    instead of a stored spike state (two stores and a load less per neuron and step; the same
    values as ``beta v (1 - s)`` and ``theta s``, since theta > 0). Each pass over the neurons is
    branch-free (selects: the vectoriser's friend); spikes are then compressed into ``oidx``.
    """
    for j in range(n_out):
        v[j] = 0.0
    zero = theta - theta                 # +0 in the weights' dtype (a literal 0.0 would widen the selects)
    optr[0] = 0
    k = 0
    is_conv, cin, cout, cptr, cto, ctk, diag = cv
    ops = 0
    brow = bias[col: col + n_out]
    _fill_input(I, brow, n_out, has_bias)
    for t in range(T):
        if is_conv:
            ops += _conv_accumulate(ptr, pbase + t, idx, WT, w0, cin, cout, cptr, cto, ctk, diag, I)
        else:
            ops += (ptr[pbase + t + 1] - ptr[pbase + t]) * n_out
            add_rows(I, WT, w0, n_out, idx, ptr[pbase + t], ptr[pbase + t + 1])
        if mem_mode >= MEM_Z:            # MEM_Z or MEM_Z_GRADED
            zrow = mem[b, 1, col: col + n_out]
            for j in range(n_out):
                zrow[j] += I[j]
        if v0 >= 0 and t > 0:
            add_rows(I, WT, v0, n_out, oidx, optr[t - 1], optr[t])     # the layer's own spikes of step t-1
        if store_ci:
            crow_t = cbuf[t, col: col + n_out]
            irow_t = Ibuf[t, col: col + n_out]
            # one fused pass, as below, that also stores the carry and the input
            if reset == RESET_ZERO:
                for j in range(n_out):
                    vp = v[j]
                    ij = I[j]
                    c = zero if vp > theta else beta * vp
                    irow_t[j] = ij
                    crow_t[j] = c
                    v[j] = c + ij
                    I[j] = brow[j] if has_bias else 0.0
            else:
                for j in range(n_out):
                    vp = v[j]
                    ij = I[j]
                    c = beta * vp
                    irow_t[j] = ij
                    crow_t[j] = c
                    v[j] = (c + ij) - (theta if vp > theta else zero)
                    I[j] = brow[j] if has_bias else 0.0
        else:
            # one fused pass: membrane (its reset read from v itself), and I back to the bias for the next step
            # (has_bias is loop-invariant: LLVM unswitches the loops on it)
            if reset == RESET_ZERO:
                for j in range(n_out):
                    vp = v[j]
                    v[j] = (zero if vp > theta else beta * vp) + I[j]
                    I[j] = brow[j] if has_bias else 0.0
            else:
                for j in range(n_out):
                    vp = v[j]
                    v[j] = (beta * vp + I[j]) - (theta if vp > theta else zero)
                    I[j] = brow[j] if has_bias else 0.0
        if mem_mode == MEM_TRACE:
            mrow = mem[b, t, col: col + n_out]
            for j in range(n_out):
                mrow[j] = v[j]
        elif mem_mode == MEM_Z_GRADED:
            mrow = mem[b, 0, col: col + n_out]
            for j in range(n_out):
                q = v[j] / theta
                mrow[j] += 0.0 if q < 0.0 else (q if q < 1.0 else 1.0)
        k = record_spikes(v, theta, n_out, oidx, k, counts, b, col, rec_raster, raster, t)
        optr[t + 1] = k
    return ops


@njit(cache=True, inline="always")
def conv_args(conv, ct_ptr, ct_out, ct_k, l):
    """The ``cv`` tuple of layer l for :func:`run_layer`: (is_conv, C_in, C_out, its connection
    table's ptr, out, k, diagonal); a dense layer gets is_conv False."""
    if conv[l, 0] == 1:
        hw = conv[l, 4] * conv[l, 5]
        st = conv[l, 3]
        return (True, conv[l, 1], conv[l, 2], ct_ptr[st: st + hw + 1], ct_out, ct_k, conv[l, 10] == 1)
    return (False, np.int64(1), np.int64(1), ct_ptr[0: 1], ct_out, ct_k, False)


@njit(cache=True, parallel=True)
def forward(in_ptr, in_idx, B, T, sizes, w_off, WT, n_off, bias, has_bias, beta, theta, reset, rec,
            conv, ct_ptr, ct_out, ct_k, n_chunks, counts, rec_raster, raster, mem_mode, mem, wsi):
    """Forward pass of a batch; fills ``counts`` (B, sum n_l) and, on request, rasters/membranes.

    Samples are split into ``n_chunks`` contiguous chunks run in parallel; results do not depend
    on the chunking. ``wsi`` (>= n_chunks, >= 2 T max(n_l)) int32: the caller's scratch for the
    layers' spikes (kept across calls: no per-call allocation in the worker threads). Returns the
    number of synaptic operations (input spikes x fan-out, recurrent spikes included) per sample.
    """
    L = sizes.size - 1
    nmax = 1
    for l in range(1, L + 1):
        nmax = max(nmax, sizes[l])
    synops = np.zeros(B, dtype=np.int64)
    if wsi.shape[0] < n_chunks or wsi.shape[1] < 2 * T * nmax:
        raise ValueError("forward: scratch too small: needs (n_chunks, 2 T max(n_l)) int32")
    for c in prange(n_chunks):
        lo = c * B // n_chunks
        hi = (c + 1) * B // n_chunks
        v = np.empty(nmax, dtype=WT.dtype)
        I = np.empty(nmax, dtype=WT.dtype)
        ptr_a = np.zeros(T + 1, dtype=np.int64)
        ptr_b = np.zeros(T + 1, dtype=np.int64)
        idx_a = wsi[c, 0: T * nmax]
        idx_b = wsi[c, T * nmax: 2 * T * nmax]
        dummy = np.empty((1, 1), dtype=WT.dtype)
        for b in range(lo, hi):
            for l in range(L):
                n_out = sizes[l + 1]
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
                v0 = w_off[l] + sizes[l] * n_out if rec[l] else -1   # (no branches inside the call: numba)
                cv = conv_args(conv, ct_ptr, ct_out, ct_k, l)
                synops[b] += run_layer(ip, pb, ix, T, WT, w_off[l], n_out, v0, cv, bias, has_bias[l], beta[l],
                                       theta[l], reset[l], v, I, op, ox, counts, b,
                                       False, dummy, dummy, rec_raster, raster, mem_mode, mem, n_off[l])
                if rec[l]:
                    synops[b] += op[T - 1] * n_out      # own spikes of steps 1..T-1 through V
    return synops
