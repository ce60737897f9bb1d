"""Architecture specs: one compact grammar for every command and the Python API (docs/layers.md).

A spec lists the **hidden** layers, bottom up, separated by ``-``; the output layer (dense, one
neuron per class) is implied by the dataset::

    d256          one dense LIF layer of 256 neurons           (the default; = --hidden 256)
    r256          one recurrent LIF layer: I = W x + V s[t-1]
    r256-d128     recurrent 256, then dense 128
    ""            no hidden layer (inputs straight to the output layer)

Tokens: ``d<N>`` dense LIF, ``r<N>`` dense + recurrent LIF, N >= 1;
``c<C>k<K>[s<S>][p<P>]`` a 2-D convolution of C output channels, K x K kernel, stride S
(default 1), zero padding P (default 0), on the channels-last input (H, W, C) of the dataset
(camera datasets: ``(height, width, polarities)`` after binning); ``p<K>`` spike pooling over
K x K blocks (stride K; fixed synapses, max/OR pooling of binary spikes: docs/layers.md).

    c8k5s2-c16k3s2-d64      two conv layers, then dense 64
    c16k5-p2-c32k3-p2-d64   conv, pool, conv, pool, dense

Example
-------
>>> parse_arch("r256-d128")
[LayerSpec(kind='r', n=256, k=0, s=1, p=0), LayerSpec(kind='d', n=128, k=0, s=1, p=0)]
>>> format_arch(parse_arch("c8k5s2-d64"))
'c8k5s2-d64'
"""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np

KINDS = {"d": "dense LIF", "r": "recurrent LIF (dense input + recurrent weights)",
         "c": "conv LIF, c<C>k<K>[s<S>][p<P>]", "p": "spike pooling over K x K blocks, p<K>"}
_TOKEN = re.compile(r"([dr])(\d+)$")
_CONV = re.compile(r"c(\d+)k(\d+)(?:s(\d+))?(?:p(\d+))?$")
_POOL = re.compile(r"p(\d+)$")


class LayerSpec(NamedTuple):
    """One hidden layer of a spec: kind "d"/"r" (n neurons) or "c" (n channels, kernel k, stride s,
    padding p)."""

    kind: str
    n: int
    k: int = 0
    s: int = 1
    p: int = 0

    @property
    def token(self) -> str:
        if self.kind == "p":
            return f"p{self.k}"
        if self.kind != "c":
            return f"{self.kind}{self.n}"
        return f"c{self.n}k{self.k}" + (f"s{self.s}" if self.s != 1 else "") + (f"p{self.p}" if self.p else "")


class ArchError(ValueError):
    """An architecture spec that does not parse."""


MAX_LAYERS = 64       # hidden layers in one spec (deeper spiking nets do not train with either rule)


def parse_arch(spec: str) -> list[LayerSpec]:
    """``"r256-d128"`` -> ``[LayerSpec("r", 256), LayerSpec("d", 128)]``; raises :class:`ArchError`
    with the reason. Convolutions must come before every dense layer."""
    if not isinstance(spec, str):
        raise ArchError(f"an architecture spec is a string like 'r256-d128' (got {type(spec).__name__})")
    spec = spec.strip().lower()
    if not spec:
        return []
    if spec.count("-") + 1 > MAX_LAYERS:
        raise ArchError(f"{spec.count('-') + 1} hidden layers: at most {MAX_LAYERS} are supported")
    out = []
    for k, tok in enumerate(spec.split("-")):
        tok = tok.strip()
        m, c, pl = _TOKEN.match(tok), _CONV.match(tok), _POOL.match(tok)
        if pl:
            kk = int(pl.group(1))
            if kk < 1:
                raise ArchError(f"layer {k} {tok!r}: a pooling block needs K >= 1")
            if not out or out[-1].kind not in ("c", "p"):
                raise ArchError(f"layer {k} {tok!r}: pooling follows a convolution (or another pooling)")
            out.append(LayerSpec("p", 0, kk, kk, 0))
            continue
        if c:
            n, kk = int(c.group(1)), int(c.group(2))
            st, pd = int(c.group(3) or 1), int(c.group(4) or 0)
            if n < 1 or kk < 1 or st < 1 or pd >= kk:
                raise ArchError(f"layer {k} {tok!r}: need C >= 1, K >= 1, stride >= 1 and padding < K")
            if out and out[-1].kind not in ("c", "p"):
                raise ArchError(f"layer {k} {tok!r}: convolutions must come before the dense layers")
            out.append(LayerSpec("c", n, kk, st, pd))
            continue
        if not m:
            raise ArchError(f"layer {k} {tok!r} is not a layer token; available: " + _known()
                            + " (e.g. 'r256-d128')")
        kind, n = m.group(1), int(m.group(2))
        if n < 1:
            raise ArchError(f"layer {k} {tok!r}: a layer needs at least one neuron")
        out.append(LayerSpec(kind, n))
    return out


def format_arch(layers) -> str:
    """Inverse of :func:`parse_arch` (canonical form)."""
    return "-".join(LayerSpec(*la).token for la in layers)


def arch_from_hidden(hidden) -> str:
    """The spec of a dense stack with these hidden sizes (``[256]`` -> ``"d256"``)."""
    return format_arch(LayerSpec("d", int(h)) for h in hidden)


def conv_out_size(n: int, k: int, stride: int, padding: int) -> int:
    """Output length of a convolution along one axis (torch's floor rule)."""
    return (n + 2 * padding - k) // stride + 1


def layer_shapes(spec: str, in_shape, n_out: int) -> list[tuple[int, int, int, bool]]:
    """Per layer of the net (hidden layers, then the output): (n_in, n_out, number of weights,
    recurrent). ``in_shape`` is (H, W, C) (needed by conv layers) or n_in."""
    shape = tuple(in_shape) if np.ndim(in_shape) else (1, int(in_shape), 1)
    out = []
    for la in parse_arch(spec):
        n_in = int(np.prod(shape))
        if la.kind == "p":
            H, W, C = shape
            Ho, Wo = conv_out_size(H, la.k, la.k, 0), conv_out_size(W, la.k, la.k, 0)
            if min(Ho, Wo) < 1:
                raise ArchError(f"{la.token}: a {la.k}x{la.k} block does not fit the {H}x{W} input")
            shape = (Ho, Wo, C)
            out.append((n_in, Ho * Wo * C, C * C * la.k * la.k, False))
        elif la.kind == "c":
            H, W, C = shape
            Ho, Wo = conv_out_size(H, la.k, la.s, la.p), conv_out_size(W, la.k, la.s, la.p)
            if min(Ho, Wo) < 1:
                raise ArchError(f"{la.token}: a {la.k}x{la.k} kernel does not fit the {H}x{W} input")
            shape = (Ho, Wo, la.n)
            out.append((n_in, Ho * Wo * la.n, la.n * C * la.k * la.k, False))
        else:
            shape = (1, la.n, 1)
            out.append((n_in, la.n, n_in * la.n, la.kind == "r"))
    n_in = int(np.prod(shape))
    out.append((n_in, int(n_out), n_in * int(n_out), False))
    return out


def _known() -> str:
    return ", ".join(f"{k}<N> ({v})" for k, v in KINDS.items())


__all__ = ["parse_arch", "format_arch", "arch_from_hidden", "layer_shapes", "LayerSpec", "ArchError", "KINDS"]
