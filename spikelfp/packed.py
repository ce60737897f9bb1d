"""The one conversion between a :class:`~spikelfp.Network` and the kernels' flat arrays.

numba takes NamedTuples of arrays, not dataclasses: a Network is packed once at the boundary.
Layout (per layer l, sizes n_0..n_L):

* ``WT[w_off[l] : w_off[l+1]]`` = W_l.T flattened row-major (n_in x n_out): one contiguous row of
  fan-out weights per presynaptic channel; for a recurrent layer (``rec[l]``) followed by V_l.T
  (n_out x n_out) at ``w_off[l] + n_in * n_out``: one row per neuron of the layer itself. Every
  trained weight lives in ``WT``, so feedback and optimizer state share this one layout.
* ``bias[n_off[l] : n_off[l+1]]`` (zeros where a layer has none; ``has_bias[l]`` says which).
* ``beta``, ``theta`` (in the weights' dtype: a float32 network runs in float32 throughout),
  ``reset`` (int8: 0 zero, 1 subtract) per layer.
* A conv layer (``conv[l, 0] == 1``, docs/layers.md) holds its kernel as (K, K, C_in, C_out)
  rows of C_out in ``WT`` (row ``(ky * K + kx) * C_in + c``) and its channel bias expanded to every
  output position (kept tied: every position gets the same feedback). ``conv[l]`` =
  (is_conv, C_in, C_out, ct_start, H, W, K, stride, padding, trainable: 0 for a pooling layer,
  diagonal: 1 for a fixed layer whose kernel links each channel only to itself, a pooling layer,
  whose input spikes the kernels then add to their own channel alone instead of adding C_out-wide
  rows of zeros); the connection table of input pixel
  p = y * W + x is ``ct_out/ct_k[ct_ptr[ct_start + p] : ct_ptr[ct_start + p + 1]]``: the output
  pixels it reaches and the kernel offset ``ky * K + kx`` it reaches them through.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from .kernels.lif import RESET_SUBTRACT, RESET_ZERO
from .network import ConvLayer, LIFLayer, Network

_RESET_CODES = {"zero": RESET_ZERO, "subtract": RESET_SUBTRACT}
_RESET_NAMES = {v: k for k, v in _RESET_CODES.items()}


class Packed(NamedTuple):
    sizes: np.ndarray
    w_off: np.ndarray
    WT: np.ndarray
    n_off: np.ndarray
    bias: np.ndarray
    has_bias: np.ndarray
    beta: np.ndarray
    theta: np.ndarray
    reset: np.ndarray
    rec: np.ndarray
    conv: np.ndarray
    ct_ptr: np.ndarray
    ct_out: np.ndarray
    ct_k: np.ndarray

CONV_COLS = 11  # is_conv, C_in, C_out, ct_start, H, W, K, stride, padding, trainable, diagonal


@functools.lru_cache(maxsize=64)
def connection_table(H, W, K, S, P, Ho, Wo):
    """(ptr, out, k) of a convolution: for input pixel p = y * W + x, the output pixels
    ``out[ptr[p]:ptr[p+1]]`` it reaches, through kernel offsets ``k`` = ky * K + kx (ascending).

    It depends on the geometry only, and every :func:`pack` of a conv layer needs it (each
    simulate, evaluation and training run): built once per geometry (a 32x32 input with a 5x5
    kernel took 2.7 ms in Python each time) and kept read-only."""
    ptr = np.zeros(H * W + 1, np.int64)
    outs, ks = [], []
    for y in range(H):
        for x in range(W):
            for ky in range(K):
                yy = y + P - ky
                if yy < 0 or yy % S or yy // S >= Ho:
                    continue
                for kx in range(K):
                    xx = x + P - kx
                    if xx < 0 or xx % S or xx // S >= Wo:
                        continue
                    outs.append((yy // S) * Wo + xx // S)
                    ks.append(ky * K + kx)
            ptr[y * W + x + 1] = len(outs)
    table = ptr, np.asarray(outs, np.int32), np.asarray(ks, np.int32)
    for a in table:
        a.flags.writeable = False
    return table


def is_diagonal(layer: ConvLayer) -> bool:
    """Whether a conv layer is fixed (not trained) and links each input channel to the same output
    channel only (C_in == C_out, every other kernel entry exactly zero): a pooling layer. Its input
    spikes reach one channel, so the kernels add one weight per tap, not a C_out-wide row (the same
    sums: the rest are exact zeros) and skip its kernel feedback (not kept). A trained layer never
    takes that path, whatever its zeros: training could make them nonzero."""
    return not layer.trainable and diagonal_kernel(layer.weight)


def diagonal_kernel(w: np.ndarray) -> bool:
    """Whether a (C_out, C_in, K, K) kernel has C_in == C_out and no nonzero entry off its diagonal."""
    if w.shape[0] != w.shape[1]:
        return False
    off = w.copy()
    off[np.arange(w.shape[0]), np.arange(w.shape[0])] = 0
    return not np.any(off)


def layer_offsets(sizes, rec=None, n_weights=None) -> tuple[np.ndarray, np.ndarray]:
    """(w_off, n_off) for sizes (n_0..n_L), recurrent flags and (for conv layers) the number of
    weights per layer: where each layer's weights / neurons start in the flat buffers."""
    sizes = np.asarray(sizes, dtype=np.int64)
    rec = np.zeros(sizes.size - 1, bool) if rec is None else np.asarray(rec, dtype=bool)
    nw = sizes[:-1] * sizes[1:] if n_weights is None else np.asarray(n_weights, dtype=np.int64)
    w_off = np.zeros(sizes.size, dtype=np.int64)
    np.cumsum(nw + rec * sizes[1:] ** 2, out=w_off[1:])
    n_off = np.zeros(sizes.size, dtype=np.int64)
    np.cumsum(sizes[1:], out=n_off[1:])
    return w_off, n_off


def pack(net: Network) -> Packed:
    sizes = np.asarray(net.sizes, dtype=np.int64)
    L = len(net.layers)
    rec = np.array([la.is_recurrent for la in net.layers], dtype=np.bool_)
    w_off, n_off = layer_offsets(sizes, rec, [la.weight.size for la in net.layers])
    WT = np.empty(w_off[-1], dtype=net.dtype)
    bias = np.zeros(n_off[-1], dtype=net.dtype)
    conv = np.zeros((L, CONV_COLS), dtype=np.int64)
    ptrs, outs, ks = [np.zeros(1, np.int64)], [], []
    n_ct, n_edges = 1, 0
    for l, layer in enumerate(net.layers):
        if isinstance(layer, ConvLayer):
            H, W, C = layer.in_shape
            Ho, Wo, Co = layer.out_shape
            K, S, P = layer.kernel_size, layer.stride, layer.padding
            WT[w_off[l]: w_off[l + 1]] = layer.weight.transpose(2, 3, 1, 0).ravel()
            if layer.bias is not None:
                bias[n_off[l]: n_off[l + 1]] = np.tile(layer.bias, Ho * Wo)
            ptr, out, k = connection_table(H, W, K, S, P, Ho, Wo)
            conv[l] = (1, C, Co, n_ct - 1, H, W, K, S, P, int(layer.trainable), int(is_diagonal(layer)))
            ptrs.append(ptr[1:] + n_edges)
            outs.append(out)
            ks.append(k)
            n_ct += ptr.size - 1
            n_edges += out.size
            continue
        nw = layer.n_in * layer.n_out
        WT[w_off[l]: w_off[l] + nw] = layer.weight.T.ravel()
        if layer.is_recurrent:
            WT[w_off[l] + nw: w_off[l + 1]] = layer.recurrent.T.ravel()
        if layer.bias is not None:
            bias[n_off[l]: n_off[l + 1]] = layer.bias
    return Packed(
        sizes, w_off, WT, n_off, bias,
        np.array([la.has_bias for la in net.layers], dtype=np.bool_),
        np.array([la.beta for la in net.layers], dtype=net.dtype),
        np.array([la.threshold for la in net.layers], dtype=net.dtype),
        np.array([_RESET_CODES[la.reset] for la in net.layers], dtype=np.int8),
        rec, conv, np.concatenate(ptrs),
        np.concatenate(outs) if outs else np.zeros(0, np.int32),
        np.concatenate(ks) if ks else np.zeros(0, np.int32),
    )


def unpack(p: Packed, dt: float = 1e-3, like: Network | None = None) -> Network:
    """The Network of packed (trained) weights. ``like`` supplies beta/threshold/reset exactly
    (a float32 pack holds them rounded to float32)."""
    layers = []
    for l in range(len(p.sizes) - 1):
        src = like.layers[l] if like is not None else None
        if p.conv[l, 0]:
            _, C, Co, _, H, W, K, S, P, trainable = (int(v) for v in p.conv[l, :10])
            k = p.WT[p.w_off[l]: p.w_off[l + 1]].reshape(K, K, C, Co).transpose(3, 2, 0, 1).copy()
            b = p.bias[p.n_off[l]: p.n_off[l] + Co].copy() if p.has_bias[l] else None
            beta, thr, reset = ((src.beta, src.threshold, src.reset) if src is not None else
                                (float(p.beta[l]), float(p.theta[l]), _RESET_NAMES[int(p.reset[l])]))
            layers.append(ConvLayer(k, (H, W, C), S, P, b, beta, thr, reset, trainable=bool(trainable)))
            continue
        w = layer_view(p, p.WT, l).copy()
        v = recurrent_view(p, p.WT, l).copy() if p.rec[l] else None
        b = p.bias[p.n_off[l]: p.n_off[l + 1]].copy() if p.has_bias[l] else None
        if src is not None:
            layers.append(LIFLayer(w, b, src.beta, src.threshold, src.reset, recurrent=v))
        else:
            layers.append(LIFLayer(w, b, float(p.beta[l]), float(p.theta[l]), _RESET_NAMES[int(p.reset[l])],
                                   recurrent=v))
    return Network(layers, dt=dt)


def layer_view(p: Packed, flat: np.ndarray, l: int) -> np.ndarray:
    """The (n_out, n_in) view of layer l inside a flat buffer in WT layout (a transposed view);
    for a conv layer, the (C_out, C_in, K, K) kernel (a transposed view)."""
    n_in, n_out = int(p.sizes[l]), int(p.sizes[l + 1])
    if p.conv[l, 0]:
        _, C, Co, _, _, _, K = (int(v) for v in p.conv[l, :7])
        return flat[p.w_off[l]: p.w_off[l + 1]].reshape(K, K, C, Co).transpose(3, 2, 0, 1)
    return flat[p.w_off[l]: p.w_off[l] + n_in * n_out].reshape(n_in, n_out).T


def recurrent_view(p: Packed, flat: np.ndarray, l: int) -> np.ndarray | None:
    """The (n_out, n_out) view of layer l's recurrent weights V inside a flat buffer in WT layout
    (None for a feed-forward layer)."""
    if not p.rec[l]:
        return None
    n_in, n_out = int(p.sizes[l]), int(p.sizes[l + 1])
    start = p.w_off[l] + n_in * n_out
    return flat[start: start + n_out * n_out].reshape(n_out, n_out).T


def neuron_segments(p: Packed) -> np.ndarray:
    """The trained weights of ``WT`` as per-neuron blocks, (n_seg, 4) int64 rows
    ``(start, rows, cols, v_start)``: ``WT[start : start + rows * cols]`` is a row-major
    (rows, cols) block whose column j holds neuron j's fan-in (a dense layer's W.T: rows = n_in;
    a recurrent layer's V.T: a second block, rows = n_out; a conv kernel: rows = K K C_in, one
    column per output channel). ``v_start`` numbers the columns of all blocks consecutively (a
    per-neuron buffer of ``segments[:, 2].sum()`` entries). A pooling layer's fixed synapses are
    not listed."""
    rows_out = []
    v = 0
    for l in range(len(p.sizes) - 1):
        a, b = int(p.w_off[l]), int(p.w_off[l + 1])
        if p.conv[l, 0]:
            if not p.conv[l, 9]:
                continue
            cols = int(p.conv[l, 2])
            blocks = [(a, (b - a) // cols, cols)]
        else:
            n_in, n_out = int(p.sizes[l]), int(p.sizes[l + 1])
            blocks = [(a, n_in, n_out)] + ([(a + n_in * n_out, n_out, n_out)] if p.rec[l] else [])
        for start, rows, cols in blocks:
            rows_out.append((start, rows, cols, v))
            v += cols
    return np.array(rows_out, dtype=np.int64).reshape(-1, 4)


def synapse_fanout(p: Packed) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Per layer, each presynaptic neuron's number of non-zero outgoing synapses: ``(ff, rec)``,
    ``ff`` (n_in_l,) through W (a conv layer: input neuron ``(y * W + x) * C + c`` reaches
    ``sum over its kernel offsets k of #{co : kernel[k, c, co] != 0}``), ``rec`` (n_out_l,) through
    V (None for a feed-forward layer). An unpruned network's fan-outs are the full ones, so SynOps
    counted with them equal the simulator's (a pruned synapse does no work: it is not counted)."""
    out = []
    for l in range(len(p.sizes) - 1):
        n_in, n_out = int(p.sizes[l]), int(p.sizes[l + 1])
        a = int(p.w_off[l])
        if p.conv[l, 0]:
            _, C, Co, cts, H, W, K = (int(v) for v in p.conv[l, :7])
            nz = (p.WT[a: int(p.w_off[l + 1])].reshape(K * K, C, Co) != 0).sum(axis=2)     # (K*K, C)
            ptr = p.ct_ptr[cts: cts + H * W + 1]
            ff = np.zeros((H * W, C), np.int64)
            for px in range(H * W):
                ks = p.ct_k[ptr[px]: ptr[px + 1]]
                if ks.size:
                    ff[px] = nz[ks].sum(axis=0)
            out.append((ff.ravel(), None))
            continue
        ff = (p.WT[a: a + n_in * n_out].reshape(n_in, n_out) != 0).sum(axis=1)
        rec = ((p.WT[a + n_in * n_out: a + n_in * n_out + n_out * n_out].reshape(n_out, n_out) != 0).sum(axis=1)
               if p.rec[l] else None)
        out.append((ff.astype(np.int64), None if rec is None else rec.astype(np.int64)))
    return out
