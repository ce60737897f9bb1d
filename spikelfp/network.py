"""Network model: layers of Heaviside LIF neurons, as plain validated data.

A :class:`Network` is a stack of :class:`LIFLayer` objects (dense, optionally recurrent; see
``docs/layers.md``). It holds parameters only; the simulator (:func:`spikelfp.simulate`) and the
backends interpret it. Every layer follows the neuron contract of ``docs/neuron.md``, for
t = 1..T and v[0] = s[0] = 0::

    I[t] = W x[t] + V s[t-1] + b            (V: recurrent weights, absent = 0)
    reset="zero":      v[t] = beta * v[t-1] * (1 - s[t-1]) + I[t]
    reset="subtract":  v[t] = beta * v[t-1] + I[t] - theta * s[t-1]
    s[t] = 1 if v[t] > theta else 0          (strict: v == theta does not spike)

Example
-------
>>> import numpy as np, spikelfp
>>> net = spikelfp.Network([spikelfp.LIFLayer(np.eye(2) * 1.5)])
>>> net.sizes
(2, 2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .arch import conv_out_size, parse_arch

RESETS = ("zero", "subtract")
DTYPES = (np.float64, np.float32)


def beta_from_tau(tau: float, dt: float) -> float:
    """Decay per step ``beta = 1 - dt / tau`` for a membrane time constant tau [s] and step dt [s].

    spikelfp's one beta <-> tau convention, the one its NIR export writes: NIR's LIF
    ``tau dv/dt = -v + R I`` integrated by forward Euler at step dt (what norse, snntorch and the
    NIR simulators do) is exactly ``v[t] = beta v[t-1] + I[t]`` with this beta (docs/neuron.md).
    The exponential form ``exp(-dt / tau)`` differs by < 6 % in tau at beta 0.9."""
    if not (tau > 0 and dt > 0 and math.isfinite(tau) and math.isfinite(dt)):
        raise ValueError(f"tau and dt must be > 0 and finite (got tau={tau}, dt={dt})")
    if dt > tau:
        raise ValueError(f"tau ({tau} s) must be at least one step dt ({dt} s): beta = 1 - dt/tau would be negative")
    return 1.0 - dt / tau


def tau_from_beta(beta: float, dt: float) -> float:
    """Inverse of :func:`beta_from_tau`: ``tau = dt / (1 - beta)`` [s] (NIR's tau)."""
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"tau is defined for 0 <= beta < 1 (got beta={beta})")
    return dt / (1.0 - beta)


@dataclass(frozen=True)
class LIFParams:
    """Shared parameters of one LIF population.

    Attributes
    ----------
    beta : float
        Membrane decay per time step, in [0, 1].
    threshold : float
        Firing threshold theta (> 0); a neuron spikes when v > theta (strictly).
    reset : str
        ``"zero"`` (default, Lava-compatible) or ``"subtract"`` (snntorch's default).
    """

    beta: float = 0.9
    threshold: float = 1.0
    reset: str = "zero"

    def __post_init__(self):
        beta, thr = float(self.beta), float(self.threshold)
        if not (math.isfinite(beta) and 0.0 <= beta <= 1.0):
            raise ValueError(f"beta must be a finite number in [0, 1] (got {self.beta!r})")
        if not (math.isfinite(thr) and thr > 0.0):
            raise ValueError(f"threshold must be a finite number > 0 (got {self.threshold!r})")
        if self.reset not in RESETS:
            raise ValueError(f"unknown reset {self.reset!r}; choose one of {', '.join(RESETS)}")
        object.__setattr__(self, "beta", beta)
        object.__setattr__(self, "threshold", thr)


def _float_weights(w: np.ndarray, name: str) -> np.ndarray:
    """Weights as a contiguous float32/float64 array (other dtypes become float64), finite."""
    if w.dtype not in DTYPES:
        w = w.astype(np.float64)
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{name} contains NaN or inf")
    return np.ascontiguousarray(w)


def _checked(a, dtype, shape, shape_msg: str, name: str) -> np.ndarray:
    """``a`` as a contiguous ``dtype`` array of ``shape`` with finite values, else ValueError."""
    arr = np.asarray(a, dtype=dtype)
    if arr.shape != shape:
        raise ValueError(f"{shape_msg}; got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} NaN or inf")
    return np.ascontiguousarray(arr)


@dataclass
class LIFLayer:
    """A dense layer of LIF neurons, optionally recurrent.

    Parameters
    ----------
    weight : array (n_out, n_in)
        Synaptic weights W (NIR's and torch's orientation: out x in).
    bias : array (n_out,) or None
        Constant input current b per step; None means no bias (b = 0, and it is never trained).
    beta, threshold, reset
        See :class:`LIFParams`.
    recurrent : array (n_out, n_out) or None
        Recurrent weights V: the layer's own spikes of step t-1 add ``V s[t-1]`` to I[t]
        (``V[j, k]`` is the weight from neuron k to neuron j). None: a feed-forward layer.
    """

    weight: np.ndarray
    bias: np.ndarray | None = None
    beta: float = 0.9
    threshold: float = 1.0
    reset: str = "zero"
    recurrent: np.ndarray | None = None
    params: LIFParams = field(init=False, repr=False)

    def __post_init__(self):
        w = np.asarray(self.weight)
        if w.ndim != 2 or w.shape[0] == 0 or w.shape[1] == 0:
            raise ValueError(f"weight must be a non-empty 2-D array (n_out, n_in); got shape {w.shape}")
        self.weight = w = _float_weights(w, "weight")
        if self.bias is not None:
            self.bias = _checked(self.bias, w.dtype, (w.shape[0],),
                                 f"bias must have shape ({w.shape[0]},) to match weight {w.shape}", "bias contains")
        if self.recurrent is not None:
            self.recurrent = _checked(self.recurrent, w.dtype, (w.shape[0], w.shape[0]),
                                      f"recurrent weights must have shape ({w.shape[0]}, {w.shape[0]}) "
                                      "(n_out x n_out)", "recurrent weights contain")
        self.params = LIFParams(self.beta, self.threshold, self.reset)
        self.beta, self.threshold = self.params.beta, self.params.threshold

    @property
    def n_in(self) -> int:
        return self.weight.shape[1]

    @property
    def n_out(self) -> int:
        return self.weight.shape[0]

    @property
    def has_bias(self) -> bool:
        return self.bias is not None

    @property
    def is_recurrent(self) -> bool:
        return self.recurrent is not None

    def weight_arrays(self) -> list[np.ndarray]:
        """The layer's synaptic weight matrices: [W] or [W, V]."""
        return [self.weight] if self.recurrent is None else [self.weight, self.recurrent]

    @property
    def kind(self) -> str:
        """The layer type's name in architecture specs (``docs/layers.md``): ``"d"`` or ``"r"``."""
        return "r" if self.recurrent is not None else "d"

    def copy(self) -> LIFLayer:
        return self.astype(self.weight.dtype)

    def astype(self, dtype) -> LIFLayer:
        """A copy with every weight array cast to ``dtype``."""
        def cast(a):
            return None if a is None else a.astype(dtype)   # astype copies
        return LIFLayer(cast(self.weight), cast(self.bias), self.beta, self.threshold, self.reset,
                        recurrent=cast(self.recurrent))


@dataclass
class ConvLayer:
    """A 2-D convolutional layer of LIF neurons (docs/layers.md), channels-last.

    Input and output are flattened (y, x, c) channels-last, the layout of spikelfp's event
    datasets (channel index ``(y * W + x) * C + c``). ``I[y', x', o] = b[o] + sum over c, ky, kx
    of kernel[o, c, ky, kx] * x[y' S - P + ky, x' S - P + kx, c]`` (torch's cross-correlation;
    zero padding), then the neuron contract of docs/neuron.md per output neuron.

    Parameters
    ----------
    weight : array (C_out, C_in, K, K)
        The kernel, in torch's / NIR's orientation.
    in_shape : (H, W, C_in)
    stride, padding : int
    bias : array (C_out,) or None
        One bias per output channel.
    beta, threshold, reset
        See :class:`LIFParams`.
    trainable : bool
        False for a pooling layer (:func:`pool_layer`): its fixed kernel gets no feedback, the
        reward still flows through it to the layer below.
    """

    weight: np.ndarray
    in_shape: tuple
    stride: int = 1
    padding: int = 0
    bias: np.ndarray | None = None
    beta: float = 0.9
    threshold: float = 1.0
    reset: str = "zero"
    trainable: bool = True
    params: LIFParams = field(init=False, repr=False)

    def __post_init__(self):
        w = np.asarray(self.weight)
        if w.ndim != 4 or w.shape[2] != w.shape[3] or min(w.shape) == 0:
            raise ValueError(f"conv weight must be a non-empty (C_out, C_in, K, K) array; got shape {w.shape}")
        self.weight = w = _float_weights(w, "conv weight")
        shape = tuple(int(v) for v in self.in_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"in_shape must be (H, W, C_in) with positive sizes; got {self.in_shape}")
        if shape[2] != w.shape[1]:
            raise ValueError(f"in_shape has {shape[2]} channels but the kernel expects C_in={w.shape[1]}")
        self.in_shape = shape
        self.stride, self.padding = int(self.stride), int(self.padding)
        if self.stride < 1 or self.padding < 0 or self.padding >= self.kernel_size:
            raise ValueError(f"need stride >= 1 and 0 <= padding < kernel size (got stride {self.stride}, "
                             f"padding {self.padding}, kernel {self.kernel_size})")
        if min(self.out_shape[:2]) < 1:
            raise ValueError(f"a {self.kernel_size}x{self.kernel_size} kernel (stride {self.stride}, padding "
                             f"{self.padding}) does not fit the input {shape[0]}x{shape[1]}")
        if self.bias is not None:
            self.bias = _checked(self.bias, w.dtype, (w.shape[0],),
                                 f"conv bias must have shape ({w.shape[0]},) (one per output channel)", "bias contains")
        self.params = LIFParams(self.beta, self.threshold, self.reset)
        self.beta, self.threshold = self.params.beta, self.params.threshold

    recurrent = None
    is_recurrent = False

    @property
    def kernel_size(self) -> int:
        return int(self.weight.shape[2])

    @property
    def out_shape(self) -> tuple:
        H, W, _ = self.in_shape
        k, s, p = self.kernel_size, self.stride, self.padding
        return (conv_out_size(H, k, s, p), conv_out_size(W, k, s, p), int(self.weight.shape[0]))

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def has_bias(self) -> bool:
        return self.bias is not None

    @property
    def kind(self) -> str:
        if not self.trainable:
            return f"p{self.kernel_size}"
        c = f"c{self.weight.shape[0]}k{self.kernel_size}"
        return c + (f"s{self.stride}" if self.stride != 1 else "") + (f"p{self.padding}" if self.padding else "")

    def weight_arrays(self) -> list[np.ndarray]:
        """The trained weight arrays ([] for a pooling layer)."""
        return [self.weight] if self.trainable else []

    def copy(self) -> ConvLayer:
        return self.astype(self.weight.dtype)

    def astype(self, dtype) -> ConvLayer:
        return ConvLayer(self.weight.astype(dtype), self.in_shape, self.stride, self.padding,
                         None if self.bias is None else self.bias.astype(dtype), self.beta, self.threshold,
                         self.reset, self.trainable)


POOL_GAIN = 1.1    # pooling synapse weight, in thresholds: one input spike makes the pooled neuron fire


def pool_layer(in_shape, k: int, *, beta=0.9, threshold=1.0, reset="zero", dtype=np.float64) -> ConvLayer:
    """Spike pooling over k x k blocks (stride k, no padding), the Loihi way: a LIF layer fed by
    fixed, untrained synapses of weight ``POOL_GAIN * threshold`` from each channel's block to the
    same channel. One input spike in a block is enough to make the pooled neuron spike, so on binary
    spikes this is max (OR) pooling per step; LFP hands a pooled neuron's reward to its inputs by
    their contribution (the rule with fixed weights). docs/layers.md."""
    H, W, C = (int(v) for v in in_shape)
    w = np.zeros((C, C, k, k), dtype=dtype)
    w[np.arange(C), np.arange(C)] = POOL_GAIN * threshold
    return ConvLayer(w, (H, W, C), k, 0, None, beta, threshold, reset, trainable=False)


@dataclass
class Network:
    """A stack of LIF layers (each dense or dense + recurrent).

    Parameters
    ----------
    layers : list of LIFLayer
        Consecutive layers; ``layers[l].n_in == layers[l-1].n_out``.
    dt : float
        Duration of one time step [s] (metadata for exports; the simulator is unitless).
    """

    layers: list[LIFLayer]
    dt: float = 1e-3

    def __post_init__(self):
        self.layers = list(self.layers)
        if not self.layers:
            raise ValueError("a Network needs at least one layer")
        for k, layer in enumerate(self.layers):
            if not isinstance(layer, (LIFLayer, ConvLayer)):
                raise TypeError(f"layer {k} is a {type(layer).__name__}, expected LIFLayer or ConvLayer")
        for k in range(1, len(self.layers)):
            if self.layers[k].n_in != self.layers[k - 1].n_out:
                raise ValueError(
                    f"layer {k} expects {self.layers[k].n_in} inputs but layer {k - 1} has "
                    f"{self.layers[k - 1].n_out} neurons")
        dtypes = {layer.weight.dtype for layer in self.layers}
        if len(dtypes) > 1:
            raise ValueError(f"all layers must share one dtype; got {sorted(map(str, dtypes))}")
        if not (math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt must be > 0 (got {self.dt})")

    @property
    def sizes(self) -> tuple[int, ...]:
        """(n_in, n_1, ..., n_out)."""
        return (self.layers[0].n_in,) + tuple(layer.n_out for layer in self.layers)

    @property
    def n_in(self) -> int:
        return self.layers[0].n_in

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out

    @property
    def dtype(self) -> np.dtype:
        return self.layers[0].weight.dtype

    def __len__(self) -> int:
        return len(self.layers)

    def copy(self) -> Network:
        return Network([layer.copy() for layer in self.layers], dt=self.dt)

    def astype(self, dtype) -> Network:
        """A copy with every weight and bias cast to ``dtype`` (float64 or float32)."""
        dtype = np.dtype(dtype)
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be float64 or float32, got {dtype}")
        return Network([la.astype(dtype) for la in self.layers], dt=self.dt)

    @property
    def arch(self) -> str:
        """The architecture spec of the hidden layers (``docs/layers.md``), e.g. ``"r256-d128"``;
        the output layer is implied by the number of classes."""
        return "-".join(la.kind if isinstance(la, ConvLayer) else f"{la.kind}{la.n_out}" for la in self.layers[:-1])

    @classmethod
    def from_arch(cls, arch: str, in_shape, n_out: int, *, seed=0, beta=0.9, threshold=1.0, reset="zero",
                  bias=False, gain=1.0, dt=1e-3, dtype=np.float64) -> Network:
        """A random network for an architecture spec (docs/layers.md; :mod:`spikelfp.arch`).

        ``in_shape``: (H, W, C) channels-last (conv layers need it) or the number of inputs. Dense
        and recurrent layers draw exactly as :meth:`random` does; a conv layer draws its kernel,
        then its bias, as ``U(-g/sqrt(fan_in), g/sqrt(fan_in))`` with fan_in = C_in K^2 (torch's
        Conv2d init). ``gain`` is one value for every layer.
        """
        specs = parse_arch(arch)
        if not any(la.kind in ("c", "p") for la in specs):
            n_in = int(np.prod(in_shape))
            return cls.random([n_in, *[la.n for la in specs], n_out], seed=seed, beta=beta, threshold=threshold,
                              reset=reset, bias=bias, gain=gain, dt=dt, dtype=dtype,
                              recurrent=[la.kind == "r" for la in specs] + [False])
        if np.ndim(in_shape) == 0 or len(in_shape) != 3:
            raise ValueError(f"conv layers need the input's (H, W, C) shape; got {in_shape!r}")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        shape = tuple(int(v) for v in in_shape)
        layers = []
        for la in specs:
            if la.kind == "p":
                layer = pool_layer(shape, la.k, beta=beta, threshold=threshold, reset=reset, dtype=dtype)
                shape = layer.out_shape
            elif la.kind == "c":
                bound = gain / math.sqrt(shape[2] * la.k * la.k)
                w = rng.uniform(-bound, bound, size=(la.n, shape[2], la.k, la.k)).astype(dtype)
                b = rng.uniform(-bound, bound, size=la.n).astype(dtype) if bias else None
                layer = ConvLayer(w, shape, la.s, la.p, b, beta, threshold, reset)
                shape = layer.out_shape
            else:
                n_in = int(np.prod(shape))
                rest = cls.random([n_in, la.n], seed=rng, beta=beta, threshold=threshold, reset=reset, bias=bias,
                                  gain=gain, dt=dt, dtype=dtype, recurrent=la.kind == "r")
                layer = rest.layers[0]
                shape = (1, la.n, 1)
            layers.append(layer)
        out = cls.random([int(np.prod(shape)), n_out], seed=rng, beta=beta, threshold=threshold, reset=reset,
                         bias=bias, gain=gain, dt=dt, dtype=dtype)
        return cls(layers + out.layers, dt=dt)

    @classmethod
    def random(cls, sizes, *, seed=0, beta=0.9, threshold=1.0, reset="zero", bias=False,
               gain=1.0, dt=1e-3, dtype=np.float64, recurrent=False) -> Network:
        """Random network with torch's Linear init, W ~ U(-g/sqrt(n_in), g/sqrt(n_in)).

        Parameters
        ----------
        sizes : sequence of int
            (n_in, n_hidden..., n_out).
        seed : int or numpy.random.Generator
        gain : float or sequence of float
            Scale g of the init, one per layer or one for all.
        bias : bool
            Give every layer a bias, drawn like the weights (a zero bias would never be trained by LFP).
        recurrent : bool or sequence of bool
            Which layers get recurrent weights V (one flag per layer, or one for all), drawn after
            the layer's W and b as ``U(-g/sqrt(n_out), g/sqrt(n_out))`` (torch's init of the
            n_out x n_out recurrent Linear). Feed-forward layers draw exactly as before.
        """
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes must list at least n_in and n_out, all >= 1; got {sizes}")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        gains = np.broadcast_to(np.asarray(gain, dtype=float), (len(sizes) - 1,))
        recs = np.broadcast_to(np.asarray(recurrent, dtype=bool), (len(sizes) - 1,))
        layers = []
        for k in range(len(sizes) - 1):
            bound = gains[k] / math.sqrt(sizes[k])
            w = rng.uniform(-bound, bound, size=(sizes[k + 1], sizes[k])).astype(dtype)
            b = rng.uniform(-bound, bound, size=sizes[k + 1]).astype(dtype) if bias else None
            v = None
            if recs[k]:
                rb = gains[k] / math.sqrt(sizes[k + 1])
                v = rng.uniform(-rb, rb, size=(sizes[k + 1], sizes[k + 1])).astype(dtype)
            layers.append(LIFLayer(w, b, beta=beta, threshold=threshold, reset=reset, recurrent=v))
        return cls(layers, dt=dt)
