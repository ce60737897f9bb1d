"""Architecture specs: one compact grammar for every command and the Python API (docs/layers.md).

A spec lists the **hidden** layers, bottom up, separated by ``-``; the output layer (dense, one
neuron per class) is implied by the dataset::

    d256          one dense LIF layer of 256 neurons           (the default; = --hidden 256)
    r256          one recurrent LIF layer: I = W x + V s[t-1]
    r256-d128     recurrent 256, then dense 128
    ""            no hidden layer (inputs straight to the output layer)

Tokens: ``d<N>`` dense LIF, ``r<N>`` dense + recurrent LIF, N >= 1. Convolution and pooling are
designed in docs/layers.md but not implemented yet; their tokens are refused with that message.

Example
-------
>>> parse_arch("r256-d128")
[('r', 256), ('d', 128)]
>>> format_arch([("r", 256), ("d", 128)])
'r256-d128'
"""

from __future__ import annotations

import re

KINDS = {"d": "dense LIF", "r": "recurrent LIF (dense input + recurrent weights)"}
_TOKEN = re.compile(r"([a-z]+)(\d+)$")


class ArchError(ValueError):
    """An architecture spec that does not parse."""


def parse_arch(spec: str) -> list[tuple[str, int]]:
    """``"r256-d128"`` -> ``[("r", 256), ("d", 128)]``; raises :class:`ArchError` with the reason."""
    if not isinstance(spec, str):
        raise ArchError(f"an architecture spec is a string like 'r256-d128' (got {type(spec).__name__})")
    spec = spec.strip().lower()
    if not spec:
        return []
    out = []
    for k, tok in enumerate(spec.split("-")):
        m = _TOKEN.match(tok.strip())
        if not m:
            if tok.startswith(("c", "p")) and tok[1:2].isdigit():
                raise ArchError(f"layer {k} {tok!r}: convolution and pooling layers are not implemented yet "
                                "(docs/layers.md); available: " + _known())
            raise ArchError(f"layer {k} {tok!r} is not a layer token; available: " + _known()
                            + " (e.g. 'r256-d128')")
        kind, n = m.group(1), int(m.group(2))
        if kind not in KINDS:
            raise ArchError(f"layer {k} {tok!r}: unknown layer type {kind!r}; available: " + _known())
        if n < 1:
            raise ArchError(f"layer {k} {tok!r}: a layer needs at least one neuron")
        out.append((kind, n))
    return out


def format_arch(layers) -> str:
    """Inverse of :func:`parse_arch` (canonical form)."""
    return "-".join(f"{kind}{int(n)}" for kind, n in layers)


def arch_from_hidden(hidden) -> str:
    """The spec of a dense stack with these hidden sizes (``[256]`` -> ``"d256"``)."""
    return format_arch(("d", int(h)) for h in hidden)


def _known() -> str:
    return ", ".join(f"{k}<N> ({v})" for k, v in KINDS.items())


__all__ = ["parse_arch", "format_arch", "arch_from_hidden", "ArchError", "KINDS"]
