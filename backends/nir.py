"""NIR backend: export a Network to the Neuromorphic Intermediate Representation, and import it back.

Graph: ``input -> fc0 (Affine, or Linear without bias) -> lif0 (LIF) -> fc1 -> lif1 ... -> output``.
NIR's LIF is continuous, ``tau dv/dt = (v_leak - v) + R I``, reset to ``v_reset``. Discretised by
forward Euler with step ``dt`` it is spikelfp's layer when

    tau = dt / (1 - beta),   R = tau / dt,   v_leak = 0,   v_reset = 0,   v_threshold = theta

(beta = 1, no leak, is written as tau = inf). ``dt`` defaults to 1e-4 s, the step that snntorch's
and norse's NIR importers discretise with, so their import of our file runs our dynamics; the
graph's metadata holds that ``dt``, the model's own time step (``bin_dt``) and the exact per-layer
decays, which :func:`from_nir` uses so that a round trip is bit-exact. Subtract reset has no NIR
form and is refused.
"""

from __future__ import annotations

import os

import numpy as np

from spikelfp.io import atomic_path
from spikelfp.network import LIFLayer, Network

NIR_DT = 1e-4


def _nir():
    try:
        import nir
    except ImportError:
        raise ImportError("the NIR backend needs the nir package: pip install nir") from None
    return nir


def to_nir(network: Network, dt: float = NIR_DT):
    """The :class:`nir.NIRGraph` of a network."""
    nir = _nir()
    if not dt > 0:
        raise ValueError(f"dt must be > 0 (got {dt})")
    nodes = {"input": nir.Input(input_type={"input": np.array([network.n_in])})}
    edges = []
    prev = "input"
    for l, layer in enumerate(network.layers):
        if layer.reset != "zero":
            raise ValueError(f"layer {l} uses reset='{layer.reset}': NIR's LIF resets to v_reset, so only "
                             "reset='zero' networks can be exported to NIR")
        W = layer.weight.astype(np.float64)
        nodes[f"fc{l}"] = (nir.Affine(weight=W, bias=layer.bias.astype(np.float64)) if layer.bias is not None
                           else nir.Linear(weight=W))
        one_minus = 1.0 - layer.beta
        tau = dt / one_minus if one_minus > 0 else np.inf
        n = layer.n_out
        nodes[f"lif{l}"] = nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / dt if np.isfinite(tau) else 1.0),
                                   v_leak=np.zeros(n), v_threshold=np.full(n, float(layer.threshold)),
                                   v_reset=np.zeros(n))
        edges += [(prev, f"fc{l}"), (f"fc{l}", f"lif{l}")]
        prev = f"lif{l}"
    nodes["output"] = nir.Output(output_type={"output": np.array([network.n_out])})
    edges.append((prev, "output"))
    meta = {"dt": float(dt), "bin_dt": float(network.dt), "producer": "spikelfp",
            "beta": np.array([la.beta for la in network.layers], dtype=np.float64)}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def export(network: Network, path, dt: float = NIR_DT) -> str:
    """Write ``network`` as a NIR HDF5 file (atomically); returns the path."""
    nir = _nir()
    graph = to_nir(network, dt)
    with atomic_path(path) as tmp:
        nir.write(tmp, graph)
    return os.fspath(path)


def _chain(graph):
    nxt = {}
    for a, b in graph.edges:
        if a in nxt:
            raise ValueError(f"NIR graph is not a chain: node {a!r} has several successors")
        nxt[a] = b
    starts = [k for k, v in graph.nodes.items() if type(v).__name__ == "Input"]
    if len(starts) != 1:
        raise ValueError("NIR graph must have exactly one Input node")
    order, k = [], starts[0]
    while k in nxt:
        k = nxt[k]
        order.append(k)
    return order


def from_nir(graph) -> Network:
    """A Network from a NIR graph of (Affine | Linear) -> LIF pairs with v_leak = 0, v_reset = 0."""
    nir = _nir()
    meta = graph.metadata or {}
    dt = float(meta.get("dt", NIR_DT))
    exact_beta = np.asarray(meta["beta"], dtype=np.float64) if "beta" in meta else None
    order = [k for k in _chain(graph) if not isinstance(graph.nodes[k], nir.Output)]
    if len(order) % 2:
        raise ValueError("NIR graph must alternate Affine/Linear and LIF nodes")
    layers = []
    for k in range(0, len(order), 2):
        fc, lif = graph.nodes[order[k]], graph.nodes[order[k + 1]]
        if not isinstance(fc, (nir.Affine, nir.Linear)) or not isinstance(lif, nir.LIF):
            raise ValueError(f"unsupported NIR nodes {type(fc).__name__} -> {type(lif).__name__}; "
                             "spikelfp reads Affine/Linear -> LIF chains")
        for name in ("tau", "r", "v_threshold"):
            if np.unique(getattr(lif, name)).size != 1:
                raise ValueError(f"per-neuron {name} is not supported (one value per layer)")
        if not (np.allclose(lif.v_leak, 0) and np.allclose(lif.v_reset, 0)):
            raise ValueError("only v_leak = 0 and v_reset = 0 are supported")
        tau, r = float(lif.tau.flat[0]), float(lif.r.flat[0])
        if np.isfinite(tau):
            beta = 1.0 - dt / tau
            w_scale = r * dt / tau
        else:
            beta, w_scale = 1.0, r
        l = k // 2
        if exact_beta is not None and l < exact_beta.size and abs(exact_beta[l] - beta) < 1e-9:
            beta = float(exact_beta[l])
        W = np.asarray(fc.weight, dtype=np.float64)
        b = np.asarray(fc.bias, dtype=np.float64) if isinstance(fc, nir.Affine) else None
        if not np.isclose(w_scale, 1.0):
            W = W * w_scale
            b = None if b is None else b * w_scale
        layers.append(LIFLayer(W, b, beta=beta, threshold=float(lif.v_threshold.flat[0]), reset="zero"))
    return Network(layers, dt=float(meta.get("bin_dt", 1e-3)))


def load(path) -> Network:
    """Read a NIR file into a Network."""
    nir = _nir()
    try:
        graph = nir.read(os.fspath(path))
    except (OSError, KeyError) as e:
        raise ValueError(f"{path}: not a readable NIR file: {e}") from None
    return from_nir(graph)


__all__ = ["to_nir", "from_nir", "export", "load", "NIR_DT"]
