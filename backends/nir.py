"""NIR backend: export a Network to the Neuromorphic Intermediate Representation, and import it back.

Graph: ``input -> fc0 (Affine, or Linear without bias) -> lif0 (LIF) -> fc1 -> lif1 ... -> output``.
Conv layers are ``Conv2d -> LIF`` on channels-first (C, H, W) tensors (NIR's and torch's layout;
a pooling layer is the Conv2d of its fixed synapses, listed in ``metadata["pool_layers"]``),
followed by one ``Flatten`` before the first dense layer, whose weight columns are reordered from
spikelfp's channels-last flat index to NIR's channels-first one (and back on import).
A recurrent layer adds ``rec<l>`` (Linear, V) in a cycle ``lif<l> -> rec<l> -> lif<l>``: the edge
back carries the previous step's spikes (NIR's recurrent convention; snntorch's importer turns
this cycle into an ``RLeaky``), i.e. ``I[t] = W x[t] + V s[t-1] + b``.
NIR's LIF is continuous, ``tau dv/dt = (v_leak - v) + R I``, reset to ``v_reset``. The NIR
ecosystem (norse, snntorch, the NIR paper's reference simulators) discretises it by forward Euler
with a step ``dt``: ``v <- (1 - dt/tau) v + (R dt/tau) I``. spikelfp's layer at a time step of
``dt`` [s] (the model's bin width, ``Network.dt``) is exactly that with

    tau = dt / (1 - beta),   R = tau / dt = 1 / (1 - beta),   v_leak = 0,   v_reset = 0,   v_threshold = theta

so the file holds the model's physical time constants (beta 0.9 at 10 ms bins: tau = 100 ms) and
its metadata the step ``dt`` they refer to (and the exact per-layer decays, which make a round trip
bit-exact). beta = 1 (no leak) is written as tau = inf. Subtract reset has no NIR form and is
refused.

Import (:func:`from_nir`) needs the step: an explicit ``dt=`` argument, else the graph's
``metadata["dt"]``; a graph that states neither is refused rather than guessed. A norse-style graph
``Linear -> LIF(tau = 10 ms, r = 1)`` read with ``dt=1e-3`` gives beta = 0.9 and weights scaled by
the input gain ``r dt / tau`` = 0.1, exactly the Euler model.

snntorch's importer (``snntorch.import_nir.import_from_nir``) hard-codes ``dt = 1e-4``: give it
:func:`for_snntorch` of the graph (time constants rescaled to that step; same discrete model) and
it runs spike for spike like spikelfp (tested).
"""

from __future__ import annotations

import os

import numpy as np

from spikelfp.io import atomic_path
from spikelfp.network import ConvLayer, LIFLayer, Network

SNNTORCH_DT = 1e-4      # the step snntorch's NIR importer assumes


def _nir():
    try:
        import nir
    except ImportError:
        raise ImportError("the NIR backend needs the nir package: pip install nir") from None
    return nir


def to_nir(network: Network, dt: float | None = None):
    """The :class:`nir.NIRGraph` of a network, in physical units for time step ``dt`` [s]
    (default: the network's own, ``network.dt``)."""
    nir = _nir()
    dt = float(network.dt if dt is None else dt)
    if not dt > 0:
        raise ValueError(f"dt must be > 0 (got {dt})")
    first = network.layers[0]
    in_type = [first.in_shape[2], *first.in_shape[:2]] if isinstance(first, ConvLayer) else [network.n_in]
    nodes = {"input": nir.Input(input_type={"input": np.array(in_type)})}
    edges = []
    prev = "input"
    for l, layer in enumerate(network.layers):
        if layer.reset != "zero":
            raise ValueError(f"layer {l} uses reset='{layer.reset}': NIR's LIF resets to v_reset, so only "
                             "reset='zero' networks can be exported to NIR")
        W = layer.weight.astype(np.float64)
        tau, r = tau_r_from_beta(layer.beta, dt)
        if isinstance(layer, ConvLayer):
            Ho, Wo, Co = layer.out_shape
            b = np.zeros(Co) if layer.bias is None else layer.bias.astype(np.float64)
            nodes[f"fc{l}"] = nir.Conv2d(input_shape=tuple(layer.in_shape[:2]), weight=W, stride=layer.stride,
                                         padding=layer.padding, dilation=1, groups=1, bias=b)
            shape = (Co, Ho, Wo)                  # NIR's tensors are channels-first
        else:
            if l > 0 and isinstance(network.layers[l - 1], ConvLayer):
                Hp, Wp, Cp = network.layers[l - 1].out_shape
                nodes["flatten"] = nir.Flatten(input_type={"input": np.array([Cp, Hp, Wp])}, start_dim=0)
                edges.append((prev, "flatten"))
                prev = "flatten"
                W = W[:, _channels_last_order(Hp, Wp, Cp)]      # columns in NIR's flatten order
            nodes[f"fc{l}"] = (nir.Affine(weight=W, bias=layer.bias.astype(np.float64)) if layer.bias is not None
                               else nir.Linear(weight=W))
            shape = (layer.n_out,)
        nodes[f"lif{l}"] = nir.LIF(tau=np.full(shape, tau), r=np.full(shape, r), v_leak=np.zeros(shape),
                                   v_threshold=np.full(shape, float(layer.threshold)), v_reset=np.zeros(shape))
        edges += [(prev, f"fc{l}"), (f"fc{l}", f"lif{l}")]
        if layer.recurrent is not None:
            nodes[f"rec{l}"] = nir.Linear(weight=layer.recurrent.astype(np.float64))
            edges += [(f"lif{l}", f"rec{l}"), (f"rec{l}", f"lif{l}")]
        prev = f"lif{l}"
    nodes["output"] = nir.Output(output_type={"output": np.array([network.n_out])})
    edges.append((prev, "output"))
    meta = {"dt": dt, "producer": "spikelfp", "time_convention": "forward Euler, beta = 1 - dt / tau",
            "beta": np.array([la.beta for la in network.layers], dtype=np.float64),
            "pool_layers": np.array([l for l, la in enumerate(network.layers)
                                     if isinstance(la, ConvLayer) and not la.trainable], dtype=np.int64)}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def _channels_last_order(H: int, W: int, C: int) -> np.ndarray:
    """For each channels-first flat index (c, y, x), the channels-last flat index (y, x, c)."""
    return np.arange(H * W * C).reshape(H, W, C).transpose(2, 0, 1).ravel()


def tau_r_from_beta(beta: float, dt: float) -> tuple[float, float]:
    """NIR LIF ``(tau [s], r)`` of a layer with decay ``beta`` per step ``dt`` [s] (unit input gain)."""
    one_minus = 1.0 - float(beta)
    if one_minus <= 0:
        return float("inf"), 1.0
    return dt / one_minus, 1.0 / one_minus


def for_snntorch(graph):
    """A copy of ``graph`` with its time constants rescaled to snntorch's importer step (1e-4 s),
    and each Flatten's start_dim moved past the batch dimension (snntorch passes NIR's batch-free
    dims to ``torch.nn.Flatten`` unchanged).

    snntorch's ``import_from_nir`` discretises every LIF with ``dt = 1e-4``; scaling tau by
    ``1e-4 / dt`` (r unchanged) keeps ``beta = 1 - dt/tau`` and the input gain ``r dt/tau``, so the
    imported model is the same discrete network::

        from snntorch.import_nir import import_from_nir
        model = import_from_nir(for_snntorch(nir.read("model.nir")))
    """
    import copy

    nir = _nir()
    dt = (graph.metadata or {}).get("dt")
    if dt is None:
        raise ValueError("the graph does not state its time step (metadata['dt']); cannot rescale it")
    g = copy.deepcopy(graph)
    k = SNNTORCH_DT / float(dt)
    for name, node in list(g.nodes.items()):
        if isinstance(node, nir.LIF):
            node.tau = np.asarray(node.tau, dtype=np.float64) * k
        elif isinstance(node, nir.Flatten) and node.start_dim >= 0:
            # NIR's dims exclude the batch; snntorch hands start_dim to torch.nn.Flatten as is
            g.nodes[name] = nir.Flatten(input_type=node.input_type, start_dim=node.start_dim + 1,
                                        end_dim=node.end_dim)
    g.metadata = {**(g.metadata or {}), "dt": SNNTORCH_DT}
    return g


def export(network: Network, path, dt: float | None = None, *, snntorch: bool = False) -> str:
    """Write ``network`` as a NIR HDF5 file (atomically); returns the path. ``snntorch=True``
    writes :func:`for_snntorch` of the graph: the file to give ``snntorch.import_from_nir``
    (``spikelfp export --to nir-snntorch``); other NIR tools want the plain one."""
    nir = _nir()
    graph = to_nir(network, dt)
    if snntorch:
        graph = for_snntorch(graph)
    with atomic_path(path) as tmp:
        nir.write(tmp, graph)
    return os.fspath(path)


def run_snntorch(path, x, input_shape=None) -> np.ndarray:
    """Import a NIR file with snntorch's importer and step it through ``x`` (B, T, n_in) 0/1 in
    float64; returns its output spikes (B, T, n_out). ``input_shape`` (H, W, C): a conv net's
    steps go in as (B, C, H, W) images."""
    import contextlib
    import io

    from snntorch.import_nir import import_from_nir

    with contextlib.redirect_stdout(io.StringIO()):      # the importer prints its progress
        model = import_from_nir(_nir().read(os.fspath(path))).double()
    return run_snntorch_model(model, x, input_shape)


def run_snntorch_model(model, x, input_shape=None) -> np.ndarray:
    """Step a model made by snntorch's NIR importer through ``x``, as :func:`run_snntorch`."""
    import torch

    for mod in model.modules():          # the importer stores float32 weights; spikes come out float32
        if isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d)):
            mod.register_forward_pre_hook(lambda m, args: tuple(a.double() for a in args))
    outs, state = [], None
    with torch.no_grad():
        for t in range(x.shape[1]):
            step = np.asarray(x[:, t], dtype=np.float64)
            if input_shape is not None:
                H, W, C = input_shape
                step = step.reshape(-1, H, W, C).transpose(0, 3, 1, 2)
            o, state = model(torch.from_numpy(np.ascontiguousarray(step)), state)
            outs.append(o.numpy())
    return np.stack(outs, 1)


def _chain(graph):
    """(order of the feed-forward chain after Input, {LIF node: its recurrent Affine/Linear node})."""
    nir = _nir()
    succ, pred = {}, {}
    for a, b in graph.edges:
        succ.setdefault(a, []).append(b)
        pred.setdefault(b, []).append(a)
    loops = {}
    for k, node in graph.nodes.items():      # a weight node whose only in- and out-edge is one LIF
        if isinstance(node, (nir.Affine, nir.Linear)) and succ.get(k) == pred.get(k) and len(succ.get(k, [])) == 1:
            lif = succ[k][0]
            if isinstance(graph.nodes[lif], nir.LIF):
                if lif in loops:
                    raise ValueError(f"NIR graph: LIF {lif!r} has several recurrent weight nodes")
                loops[lif] = k
    starts = [k for k, v in graph.nodes.items() if isinstance(v, nir.Input)]
    if len(starts) != 1:
        raise ValueError("NIR graph must have exactly one Input node")
    order, k = [], starts[0]
    while True:
        nxt = [b for b in succ.get(k, []) if b != loops.get(k)]
        if not nxt:
            break
        if len(nxt) > 1:
            raise ValueError(f"NIR graph is not a chain: node {k!r} has several successors {nxt}")
        k = nxt[0]
        if k in order:
            raise ValueError(f"NIR graph has a cycle through {k!r} that is not a LIF's recurrent weights")
        order.append(k)
    return order, loops


def from_nir(graph, dt: float | None = None) -> Network:
    """A Network from a NIR graph of (Affine | Linear | Conv2d) -> LIF pairs with v_leak = 0,
    v_reset = 0, a LIF optionally with a recurrent (Affine without bias | Linear) node in a cycle
    with it, and a Flatten between the last Conv2d pair and the first dense pair (NIR's tensors
    are channels-first; spikelfp's flat channels are channels-last, so columns are reordered).

    ``dt`` [s] is the simulation step to discretise with (forward Euler, as NIR's own tools do):
    the argument, else ``graph.metadata["dt"]``; with neither, ValueError (never a guess).
    """
    nir = _nir()
    meta = graph.metadata or {}
    if dt is None:
        if "dt" not in meta:
            raise ValueError("the NIR graph does not state its time step (metadata['dt']): pass dt= "
                             "(the step in seconds to simulate it with, e.g. dt=1e-3)")
        dt = meta["dt"]
    dt = float(dt)
    if not dt > 0:
        raise ValueError(f"dt must be > 0 (got {dt})")
    exact_beta = np.asarray(meta["beta"], dtype=np.float64) if "beta" in meta else None
    pool_layers = {int(v) for v in np.atleast_1d(meta.get("pool_layers", []))}
    chain, loops = _chain(graph)
    order = [k for k in chain if not isinstance(graph.nodes[k], nir.Output)]
    flat_from = None                         # the conv output a Flatten node flattened (channels-first)
    if "flatten" in [type(graph.nodes[k]).__name__.lower() for k in order]:
        order_ = []
        for k in order:
            if isinstance(graph.nodes[k], nir.Flatten):
                if not order_ or not isinstance(graph.nodes[order_[-2]], nir.Conv2d):
                    raise ValueError("NIR graph: a Flatten node must follow a Conv2d -> LIF pair")
                flat_from = k
                continue
            order_.append(k)
        order = order_
    if len(order) % 2:
        raise ValueError("NIR graph must alternate Affine/Linear and LIF nodes")
    layers = []
    for k in range(0, len(order), 2):
        fc, lif = graph.nodes[order[k]], graph.nodes[order[k + 1]]
        if not isinstance(fc, (nir.Affine, nir.Linear, nir.Conv2d)) or not isinstance(lif, nir.LIF):
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
        b = np.asarray(fc.bias, dtype=np.float64) if isinstance(fc, (nir.Affine, nir.Conv2d)) else None
        if isinstance(fc, nir.Conv2d):
            if np.any(np.asarray(fc.dilation) != 1) or fc.groups != 1 or isinstance(fc.padding, str) or \
                    len(set(np.atleast_1d(fc.stride).tolist())) != 1 or \
                    len(set(np.atleast_1d(fc.padding).tolist())) != 1 or fc.input_shape is None:
                raise ValueError("NIR Conv2d: spikelfp reads square stride/padding, dilation 1, groups 1 and a "
                                 "stated input_shape")
            b = b if np.any(b != 0) else None
            if not np.isclose(w_scale, 1.0):
                W, b = W * w_scale, None if b is None else b * w_scale
            layers.append(ConvLayer(W, (*[int(v) for v in fc.input_shape], W.shape[1]),
                                    int(np.atleast_1d(fc.stride)[0]), int(np.atleast_1d(fc.padding)[0]), b,
                                    beta=beta, threshold=float(lif.v_threshold.flat[0]), reset="zero",
                                    trainable=l not in pool_layers))
            continue
        if layers and isinstance(layers[-1], ConvLayer):
            if flat_from is None:
                raise ValueError("NIR graph: a dense layer after a Conv2d needs a Flatten node between them")
            Hp, Wp, Cp = layers[-1].out_shape
            order_cl = _channels_last_order(Hp, Wp, Cp)
            W2 = np.empty_like(W)
            W2[:, order_cl] = W                          # NIR's flatten order -> channels-last columns
            W = W2
        V = None
        if order[k + 1] in loops:
            rn = graph.nodes[loops[order[k + 1]]]
            if isinstance(rn, nir.Affine) and np.any(np.asarray(rn.bias) != 0):
                raise ValueError(f"recurrent node {loops[order[k + 1]]!r} has a bias: spikelfp's recurrent "
                                 "weights have none (fold it into the layer's bias)")
            V = np.asarray(rn.weight, dtype=np.float64)
        if not np.isclose(w_scale, 1.0):
            W = W * w_scale
            b = None if b is None else b * w_scale
            V = None if V is None else V * w_scale
        layers.append(LIFLayer(W, b, beta=beta, threshold=float(lif.v_threshold.flat[0]), reset="zero",
                               recurrent=V))
    # files of spikelfp 0.1 wrote dt = 1e-4 (snntorch's step) and the bin width as bin_dt
    return Network(layers, dt=float(meta.get("bin_dt", dt)))


def load(path, dt: float | None = None) -> Network:
    """Read a NIR file into a Network (``dt``: see :func:`from_nir`)."""
    nir = _nir()
    try:
        graph = nir.read(os.fspath(path))
    except (OSError, KeyError, TypeError, ValueError, AssertionError) as e:
        raise ValueError(f"{path}: not a readable NIR file: {type(e).__name__}: {e}") from None
    try:
        return from_nir(graph, dt)
    except ValueError:
        raise
    except (ZeroDivisionError, TypeError, AssertionError, KeyError, AttributeError, IndexError) as e:
        raise ValueError(f"{path}: a NIR graph spikelfp cannot read ({type(e).__name__}: {e}; spikelfp reads "
                         "Affine/Linear/Conv2d -> LIF chains with finite, positive time constants)") from None


__all__ = ["to_nir", "from_nir", "for_snntorch", "tau_r_from_beta", "export", "load", "run_snntorch",
           "run_snntorch_model", "SNNTORCH_DT"]
