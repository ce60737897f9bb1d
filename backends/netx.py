"""lava-dl netx HDF5 export, written with h5py alone (lava-dl is not needed to write it).

Layout (what ``lava.lib.dl.netx.hdf5.Network`` reads)::

    /layer/0   type="input", shape=[n_in]
    /layer/k   type="dense", shape=[n_out], weight (n_out, n_in) int, [bias (n_out,) int]
               neuron/{type="CUBA", iDecay, vDecay, vThMant, refDelay, gradedSpike}

netx's conventions: weights are 8-bit signed integers in the units of the synaptic input (netx
picks the weight exponent itself), ``du = iDecay - 1``, ``dv = vDecay``, ``vth = vThMant`` and the
bias is a mantissa with exponent 6. So, per layer, with ``s8 = 127 / max|W|``::

    weight = round(W * s8)   vThMant = round(theta * s8)   bias = round(b * s8)
    iDecay = 4096 (current decays fully)   vDecay = round((1 - beta) * 4096)

This is a coarser quantization than :func:`spikelfp.loihi.quantize` (no weight exponent, so the
threshold has ~8 bits); :func:`read` returns the file as a :class:`spikelfp.loihi.LoihiNetwork`
so :func:`spikelfp.loihi.simulate_fixed` measures exactly what netx will run.
"""

from __future__ import annotations

import os

import h5py
import numpy as np

from spikelfp.io import atomic_path
from spikelfp.loihi import DECAY_UNITY, LoihiLayer, LoihiNetwork, check_loihi_compatible
from spikelfp.network import ConvLayer, Network


def _str(group, name, value):
    group.create_dataset(name, (1,), "S10", [value.encode("ascii")])


def to_netx_layers(network: Network) -> list[dict]:
    """The integer parameters netx will read, per layer (dense layers only)."""
    check_loihi_compatible(network)
    other = [(l, "recurrent" if layer.is_recurrent else "a conv/pooling layer")
             for l, layer in enumerate(network.layers) if layer.is_recurrent or isinstance(layer, ConvLayer)]
    if other:
        from spikelfp.loihi import UnsupportedNetworkError

        l, what = other[0]
        raise UnsupportedNetworkError(
            f"layer {l} is {what}: spikelfp's netx export writes dense blocks only (netx's recurrent and conv "
            "blocks are not mapped yet); export it with --to lava (Lava processes, float and fixed point) or --to nir")
    out = []
    for layer in network.layers:
        W = layer.weight.astype(np.float64)
        wmax = float(np.abs(W).max())
        s8 = 127.0 / wmax if wmax > 0 else 1.0
        vth = int(round(layer.threshold * s8))
        if not 1 <= vth < 2**17:
            raise ValueError(f"threshold {layer.threshold} maps to vThMant {vth}, outside Loihi's range")
        d = {"weight": np.clip(np.round(W * s8), -128, 127).astype(np.int32),
             "vThMant": max(vth, 1), "iDecay": DECAY_UNITY,
             "vDecay": int(np.clip(round((1.0 - layer.beta) * DECAY_UNITY), 0, DECAY_UNITY - 1)),
             "bias": None}
        if layer.bias is not None:
            d["bias"] = np.clip(np.round(layer.bias * s8), -4096, 4095).astype(np.int32)
        out.append(d)
    return out


def export(network: Network, path) -> str:
    """Write a netx HDF5 file (atomically); returns the path."""
    layers = to_netx_layers(network)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            top = f.create_group("layer")
            g0 = top.create_group("0")
            _str(g0, "type", "input")
            g0.create_dataset("shape", data=np.array([network.n_in]))
            for k, d in enumerate(layers, start=1):
                g = top.create_group(str(k))
                _str(g, "type", "dense")
                g.create_dataset("shape", data=np.array([d["weight"].shape[0]]))
                g.create_dataset("weight", data=d["weight"])
                if d["bias"] is not None:
                    g.create_dataset("bias", data=d["bias"])
                n = g.create_group("neuron")
                _str(n, "type", "CUBA")
                n.create_dataset("iDecay", data=d["iDecay"])
                n.create_dataset("vDecay", data=d["vDecay"])
                n.create_dataset("vThMant", data=d["vThMant"])
                n.create_dataset("refDelay", data=1)
                n.create_dataset("gradedSpike", data=False)
    return os.fspath(path)


def read(path) -> LoihiNetwork:
    """Read a netx file of dense CUBA layers as the fixed-point network netx builds from it."""
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path}: not a readable HDF5 file: {e}") from None
    with f:
        if "layer" not in f:
            raise ValueError(f"{path}: not a netx file (no /layer group)")
        top = f["layer"]
        layers = []
        for k in sorted(top, key=int):
            g = top[k]
            kind = g["type"][0].decode("ascii")
            if kind == "input":
                continue
            if kind != "dense":
                raise ValueError(f"{path}: layer {k} is {kind!r}; only dense layers are read")
            n = g["neuron"]
            w = g["weight"][()].astype(np.int32)
            bias = g["bias"][()].astype(np.int32) if "bias" in g else np.zeros(w.shape[0], np.int32)
            layers.append(LoihiLayer(weight=w, weight_exp=0, vth=int(n["vThMant"][()]),
                                     du=int(n["iDecay"][()]) - 1, dv=int(n["vDecay"][()]),
                                     bias_mant=bias, bias_exp=6, scale=float("nan")))
    return LoihiNetwork(layers)


__all__ = ["export", "read", "to_netx_layers"]
