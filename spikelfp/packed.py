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
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .kernels.lif import RESET_SUBTRACT, RESET_ZERO
from .network import LIFLayer, Network

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


def layer_offsets(sizes, rec=None) -> tuple[np.ndarray, np.ndarray]:
    """(w_off, n_off) for sizes (n_0..n_L) and recurrent flags: where each layer's weights /
    neurons start in the flat buffers."""
    sizes = np.asarray(sizes, dtype=np.int64)
    rec = np.zeros(sizes.size - 1, bool) if rec is None else np.asarray(rec, dtype=bool)
    w_off = np.zeros(sizes.size, dtype=np.int64)
    np.cumsum(sizes[:-1] * sizes[1:] + rec * sizes[1:] ** 2, out=w_off[1:])
    n_off = np.zeros(sizes.size, dtype=np.int64)
    np.cumsum(sizes[1:], out=n_off[1:])
    return w_off, n_off


def pack(net: Network) -> Packed:
    sizes = np.asarray(net.sizes, dtype=np.int64)
    rec = np.array([la.is_recurrent for la in net.layers], dtype=np.bool_)
    w_off, n_off = layer_offsets(sizes, rec)
    WT = np.empty(w_off[-1], dtype=net.dtype)
    bias = np.zeros(n_off[-1], dtype=net.dtype)
    for l, layer in enumerate(net.layers):
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
        rec,
    )


def unpack(p: Packed, dt: float = 1e-3, like: Network | None = None) -> Network:
    """The Network of packed (trained) weights. ``like`` supplies beta/threshold/reset exactly
    (a float32 pack holds them rounded to float32)."""
    layers = []
    for l in range(len(p.sizes) - 1):
        w = layer_view(p, p.WT, l).copy()
        v = recurrent_view(p, p.WT, l).copy() if p.rec[l] else None
        b = p.bias[p.n_off[l]: p.n_off[l + 1]].copy() if p.has_bias[l] else None
        if like is not None:
            src = like.layers[l]
            layers.append(LIFLayer(w, b, src.beta, src.threshold, src.reset, recurrent=v))
        else:
            layers.append(LIFLayer(w, b, float(p.beta[l]), float(p.theta[l]), _RESET_NAMES[int(p.reset[l])],
                                   recurrent=v))
    return Network(layers, dt=dt)


def layer_view(p: Packed, flat: np.ndarray, l: int) -> np.ndarray:
    """The (n_out, n_in) view of layer l inside a flat buffer in WT layout (a transposed view)."""
    n_in, n_out = int(p.sizes[l]), int(p.sizes[l + 1])
    return flat[p.w_off[l]: p.w_off[l] + n_in * n_out].reshape(n_in, n_out).T


def recurrent_view(p: Packed, flat: np.ndarray, l: int) -> np.ndarray | None:
    """The (n_out, n_out) view of layer l's recurrent weights V inside a flat buffer in WT layout
    (None for a feed-forward layer)."""
    if not p.rec[l]:
        return None
    n_in, n_out = int(p.sizes[l]), int(p.sizes[l + 1])
    start = p.w_off[l] + n_in * n_out
    return flat[start: start + n_out * n_out].reshape(n_out, n_out).T
