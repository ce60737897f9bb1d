"""Loihi fixed point: the one float -> Loihi conversion, and a bit-exact fixed-point simulator.

:func:`quantize` maps each float layer to Loihi's formats (as Lava's ``fixed_pt`` models read
them); :func:`simulate_fixed` runs the result with the integer arithmetic of Lava's bit-accurate
Dense + LIFReset models (see :mod:`spikelfp.kernels.loihi`), at numba speed, so Loihi accuracy can
be measured without Lava; the Lava backend is then only the final check.

Scales, per layer (float weight W, threshold theta, bias b, decay beta)::

    s      = 254 / max|W|                          weights -> 8-bit mixed sign (even ints in [-256, 254])
    w_q    = 2 * round(W * s / 2)
    e      = clip(floor(log2(VTH_TARGET / (theta * s))), -8, 7)      weight_exp
    vth    = round(theta * s * 2^e)                (17 bit; compared with v >> 6)
    bias   = round(b * s * 2^e * 64) = bias_mant << bias_exp     (13-bit mantissa, 3-bit exponent)
    dv     = round((1 - beta) * 4096),  du = 4095  (current decays fully: u = input of this step)

With ``weight_bits`` = n < 8 (Lava's ``num_weight_bits``) the step 2 becomes ``2^(9 - n)`` and 254
becomes ``256 - 2^(9 - n)``, the values Lava's Dense keeps when it truncates to n bits (4 bits:
multiples of 32 in [-256, 224]), and max|W| becomes the clip level ``c <= max|W|`` whose rounding
error over the layer's weights is least (:func:`weight_clip`; the few weights above it saturate: at
3-4 bits a max-based scale rounds most of an LFP layer's weights to zero).

In both, v_int = v_float * s * 2^e * 64 up to rounding. Only reset-to-zero layers can be expressed.
A recurrent layer's V shares W's scale (s from max(|W|, |V|)) and exponent: both feed one u, as two
Dense processes whose inputs Lava adds after each one's own ``weight_exp`` shift. A conv layer gets
e = 0: Lava's fixed-point Conv model ignores ``weight_exp`` (lava-nc 0.10.0), so its threshold has
the precision of ``theta * s`` (about 8 bits for theta ~ max|W|); its 24-bit accumulator wraps as
Lava's ``signed_clamp`` does.

Example
-------
>>> import numpy as np, spikelfp
>>> from spikelfp.loihi import quantize, simulate_fixed
>>> net = spikelfp.Network.random([20, 8, 3], seed=0, gain=3.0)
>>> q = quantize(net)
>>> int(np.abs(q.layers[0].weight).max()) <= 256
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import njit

from .events import as_event_batch
from .kernels.loihi import forward_fixed
from .network import ConvLayer, LIFLayer, Network
from .packed import Packed, diagonal_kernel, pack
from .simulate import Record, default_chunks, record_buffers, split_record

VTH_TARGET = 2**13        # aim the integer threshold here: v range +-2^23 / 64 = +-16 thresholds
W_MAX_INT = 254
WEIGHT_BITS = (2, 3, 4, 5, 6, 7, 8)   # Lava's num_weight_bits with mixed sign (1 bit leaves only -256 and 0)
VTH_MAX = 2**17 - 1
BIAS_MANT_MAX = 4095
DECAY_UNITY = 4096


def weight_step(bits: int) -> int:
    """The spacing of the integer weights at ``bits`` (mixed sign: ``2^(9 - bits)``; 2 at 8 bits)."""
    if bits not in WEIGHT_BITS:
        raise ValueError(f"weight bits must be one of {', '.join(map(str, WEIGHT_BITS))} (got {bits!r})")
    return 2 ** (9 - int(bits))


def weight_top(bits: int) -> int:
    """The largest integer weight at ``bits`` (254 at 8 bits; the smallest is -256 at any)."""
    return 256 - weight_step(bits)


CLIP_CANDIDATES = 64   # below 8 bits the clip level is searched among max|W| * k / 64, k = 1..64


def weight_clip(arrays, bits: int) -> float:
    """The float weight magnitude a layer's top integer level stands for: at 8 bits max |W| (every
    weight in range: 8 bits lose nothing measurable, docs/loihi.md); below, the clip level among
    ``max |W| * k / 64`` (k = 1..64) whose symmetric rounding ``min(step round(|w| s / step), top) / s``
    (s = top / clip) has the least squared error over the layer's non-zero weights. The error is
    summed over the sorted magnitudes, so the result depends only on the values, not on their
    layout (``quantize`` and the training step's ``fixed_of`` agree to the bit); ties go to the
    larger clip."""
    top_w = max((float(np.abs(a).max()) for a in arrays if np.size(a)), default=0.0)   # exact: |w| rounds nothing
    if bits == 8 or top_w == 0.0:
        return top_w
    mags = np.concatenate([np.abs(np.asarray(a, np.float64)).ravel() for a in arrays])
    mags = np.sort(mags[mags > 0])
    return _clip_search(mags, top_w, float(weight_step(bits)), float(weight_top(bits)), CLIP_CANDIDATES)


@njit(cache=True)
def _clip_search(mags, top_w, step, top, n):
    """:func:`weight_clip`'s search over the sorted magnitudes ``mags`` (largest clip first, so a
    tie keeps the larger)."""
    best, best_err = top_w, -1.0
    for k in range(n, 0, -1):
        c = top_w * k / n
        sc = top / c
        err = 0.0
        for i in range(mags.size):
            q = min(step * np.rint(mags[i] * sc / step), top) / sc
            err += (q - mags[i]) ** 2
        if best_err < 0.0 or err < best_err:
            best, best_err = c, err
    return best


class UnsupportedNetworkError(ValueError):
    """A network the target cannot express (e.g. subtract reset on Lava's LIF)."""


@dataclass(frozen=True)
class LoihiLayer:
    """One layer in Loihi's fixed-point formats (Lava Dense + LIF(Reset) parameters)."""

    weight: np.ndarray        # int32 (n_out, n_in), even values in [-256, 254] (weight_bits < 8: weight_step's
                              # multiples in [-256, weight_top])
    weight_exp: int
    vth: int
    du: int
    dv: int
    bias_mant: np.ndarray     # int32 (n_out,)
    bias_exp: int
    scale: float              # v_int / v_float = s * 2^e * 64
    recurrent: np.ndarray | None = None   # int32 (n_out, n_out), same format and weight_exp as weight
    conv: tuple | None = None             # a conv layer: (in_shape (H, W, C), stride, padding); weight
                                          # is then the (C_out, C_in, K, K) kernel and weight_exp 0
    weight_bits: int = 8                  # Lava's num_weight_bits (mixed sign)

    @property
    def n_out(self) -> int:
        if self.conv is None:
            return int(self.weight.shape[0])
        from .arch import conv_out_size
        (H, W, _), st, pd = self.conv
        K = self.weight.shape[2]
        return conv_out_size(H, K, st, pd) * conv_out_size(W, K, st, pd) * int(self.weight.shape[0])

    @property
    def n_in(self) -> int:
        return int(np.prod(self.conv[0])) if self.conv is not None else int(self.weight.shape[1])

    @property
    def effective_bias(self) -> np.ndarray:
        return self.bias_mant.astype(np.int64) << self.bias_exp

    @property
    def weight_scale(self) -> float:
        """s, the factor from float weights to the 8-bit mantissas (``scale = s * 2^e * 64``)."""
        return self.scale / (2.0**self.weight_exp * 64)


def network_weight_bits(q) -> int:
    """The one ``weight_bits`` of a quantized network's layers (a :class:`LoihiNetwork` or a :class:`Hold`)."""
    bits = {la.weight_bits for la in q.layers}
    if len(bits) != 1:
        raise ValueError(f"quantized layers with different weight bits {sorted(bits)}")
    return bits.pop()


@dataclass(frozen=True)
class LoihiNetwork:
    layers: list
    dt: float = 1e-3

    @property
    def sizes(self) -> tuple:
        return (self.layers[0].n_in,) + tuple(la.n_out for la in self.layers)


def check_loihi_compatible(net: Network) -> None:
    """Raise :class:`UnsupportedNetworkError` for what Lava's LIF cannot express."""
    for l, layer in enumerate(net.layers):
        if layer.reset != "zero":
            raise UnsupportedNetworkError(
                f"layer {l} uses reset='{layer.reset}': Lava's LIF only resets the membrane to zero "
                "(retrain with --reset zero, or run it in spikelfp's simulator)")


def _layer_format(layer, is_conv: bool, wmax: float | None, bias: np.ndarray | None, held: LoihiLayer | None,
                  bits: int = 8):
    """One layer's fixed-point format (module docstring): ``(s, e, vth, scale, bias_mant, bias_exp,
    dv)`` from the float layer's threshold and beta, ``wmax`` = the clip level (:func:`weight_clip`;
    ignored when ``held`` gives s and e), ``bias`` (one per channel, or None: ``bias_mant`` None,
    exponent 0) and the weight ``bits`` (the clip maps to :func:`weight_top`). The one definition
    :func:`quantize` and :func:`fixed_of` share."""
    if held is not None:
        e = held.weight_exp
        s = held.weight_scale
        ts = layer.threshold * s
    else:
        s = weight_top(bits) / wmax if wmax > 0 else 1.0
        ts = layer.threshold * s
        e = 0 if is_conv else int(np.clip(math.floor(math.log2(VTH_TARGET / ts)), -8, 7))
    vth = int(round(ts * 2.0**e))
    if vth > VTH_MAX:
        raise UnsupportedNetworkError(f"threshold {layer.threshold} does not fit Loihi's 17-bit vth")
    scale = s * 2.0**e * 64
    bm, bexp = None, 0
    if bias is not None:
        bs = bias.astype(np.float64) * scale
        big = float(np.abs(bs).max())
        bexp = 0 if big <= BIAS_MANT_MAX else int(math.ceil(math.log2(big / BIAS_MANT_MAX)))
        if bexp > 7:
            raise UnsupportedNetworkError(
                f"bias up to {float(np.abs(bias).max()):.3g} does not fit Loihi's 13-bit mantissa "
                "with a 3-bit exponent at this layer's scale")
        bm = np.clip(np.round(bs / 2.0**bexp), -BIAS_MANT_MAX - 1, BIAS_MANT_MAX).astype(np.int32)
    dv = int(np.clip(round((1.0 - layer.beta) * DECAY_UNITY), 0, DECAY_UNITY - 1))
    return s, e, max(vth, 1), scale, bm, bexp, dv


@njit(cache=True)
def _qw_into(a, s, step, top, out):
    """``out = clip(step round(a s / step), -256, top)`` in one pass: the integer weights at scale s
    (8 bits: step 2, top 254; float64 arithmetic, round half to even as ``np.round``; clipped before
    the integer conversion, which changes nothing for any value an int32 holds)."""
    for i in range(a.size):
        q = step * np.rint(np.float64(a[i]) * s / step)
        out[i] = np.int32(-256.0 if q < -256.0 else (top if q > top else q))


def _qw(a: np.ndarray, s: float, bits: int) -> np.ndarray:
    """:func:`_qw_into` of an array of any shape, as a new int32 array."""
    out = np.empty(a.shape, dtype=np.int32)
    _qw_into(np.ascontiguousarray(a).ravel(), s, float(weight_step(bits)), float(weight_top(bits)), out.ravel())
    return out


def _bits_of(bits: int | None, hold: LoihiNetwork | Hold | None) -> int:
    """The weight bits of a quantization: ``bits``, else the held one's, else 8; a held
    quantization at other bits is refused."""
    held = None if hold is None else network_weight_bits(hold)
    if bits is None:
        bits = 8 if held is None else held
    weight_step(bits)                     # checks the value
    if held is not None and held != bits:
        raise ValueError(f"quantize: the held quantization has {held}-bit weights, not {bits}")
    return int(bits)


def quantize(net: Network, hold: LoihiNetwork | Hold | None = None, bits: int | None = None) -> LoihiNetwork:
    """Convert a float network to Loihi fixed point (see the module docstring for the scales).

    ``hold``: an earlier quantization of the same network structure whose per-layer weight scale
    ``s`` and exponent ``e`` are kept instead of recomputed from ``max|W|`` (weights past the held
    range saturate at the integer limits; the trainer's ``quantize_scale="epoch"`` re-derives such a
    layer first, :func:`refresh_hold`); a :class:`Hold` (:func:`hold_of`) serves as well.
    ``bits``: the weights' precision, Lava's ``num_weight_bits`` (2-8; default 8, or the held
    quantization's)."""
    check_loihi_compatible(net)
    if hold is not None and len(hold.layers) != len(net.layers):
        raise ValueError("quantize: the held quantization has another number of layers")
    bits = _bits_of(bits, hold)
    layers = []
    for l, layer in enumerate(net.layers):
        is_conv = isinstance(layer, ConvLayer)
        held = None if hold is None else hold.layers[l]
        arrays = [a for a in (layer.weight, layer.recurrent) if a is not None]
        wmax = None if held is not None else weight_clip(arrays, bits)
        s, e, vth, scale, bm, bexp, dv = _layer_format(layer, is_conv, wmax, layer.bias, held, bits)
        wq = _qw(layer.weight, s, bits)
        if bm is None:
            bm = np.zeros(layer.weight.shape[0] if is_conv else layer.n_out, dtype=np.int32)
        layers.append(LoihiLayer(wq, e, vth, DECAY_UNITY - 1, dv, bm, bexp, scale,
                                 recurrent=None if layer.recurrent is None else _qw(layer.recurrent, s, bits),
                                 conv=(tuple(layer.in_shape), layer.stride, layer.padding) if is_conv else None,
                                 weight_bits=bits))
    return LoihiNetwork(layers, dt=net.dt)


class FixedPacked(NamedTuple):
    """A :class:`LoihiNetwork` in spikelfp's packed layout, as the integer kernels take it:
    ``p`` the structure (offsets, conv tables), ``WT`` the integer weights (int32: 8-bit values,
    half the bytes of int64 for the row adds; sums are int64 in the kernel; packed, transposed),
    per layer ``wexp``, ``du``, ``dv``, ``vth`` and ``scale`` (v_int / v_float), and ``bias`` the
    effective integer bias per neuron."""

    p: Packed
    WT: np.ndarray
    wexp: np.ndarray
    du: np.ndarray
    dv: np.ndarray
    vth: np.ndarray
    bias: np.ndarray
    scale: np.ndarray


def pack_fixed(q: LoihiNetwork, structure: Packed | None = None) -> FixedPacked:
    """``q`` in the packed layout; ``structure``: the packed float network it came from, whose
    offsets and conv tables it shares (a training step reuses them instead of packing again)."""
    if structure is not None:
        p = structure
    else:   # the integer network in spikelfp's packed layout (conv rows and tables as for float nets);
        # for a forward only: a conv kernel that links each channel only to itself (a pooling layer)
        # is marked fixed, so that the kernels add its one weight per tap (packed.is_diagonal)
        shadow = Network([
            ConvLayer(np.zeros(la.weight.shape), *la.conv, trainable=not diagonal_kernel(la.weight))
            if la.conv is not None else
            LIFLayer(np.zeros(la.weight.shape),
                     recurrent=None if la.recurrent is None else np.zeros(la.recurrent.shape))
            for la in q.layers])
        p = pack(shadow)
    WT = np.concatenate([(a.transpose(2, 3, 1, 0) if a.ndim == 4 else a.T).astype(np.int32).ravel()
                         for la in q.layers for a in (la.weight, la.recurrent) if a is not None])
    bias = np.concatenate([np.tile(la.effective_bias, la.n_out // la.effective_bias.size)
                           for la in q.layers]).astype(np.int64)

    def per_layer(name, dtype=np.int64):
        return np.array([getattr(la, name) for la in q.layers], dtype)

    if WT.size != p.WT.size or bias.size != p.bias.size:
        raise ValueError("pack_fixed: the structure given is not the quantized network's")
    return FixedPacked(p, WT, per_layer("weight_exp"), per_layer("du"), per_layer("dv"), per_layer("vth"), bias,
                       per_layer("scale", np.float64))


def simulate_fixed(q: LoihiNetwork | FixedPacked, x, *, raster: bool = False, membrane: bool = False) -> Record:
    """Run a quantized network with Lava ``fixed_pt``'s integer arithmetic (no Dense delay).

    Membranes (on request) are Lava's integer v after the update, before the reset.
    """
    fx = q if isinstance(q, FixedPacked) else pack_fixed(q)
    p = fx.p
    sizes = p.sizes
    eb = as_event_batch(x, int(sizes[0]))
    B, T = eb.batch_size, eb.n_steps
    counts, ras, mem = record_buffers(eb, int(p.n_off[-1]), np.int64, raster, membrane)
    synops = forward_fixed(eb.indptr, eb.indices, B, T, sizes, p.w_off, fx.WT, p.n_off, p.rec, p.conv, p.ct_ptr,
                           p.ct_out, p.ct_k, fx.wexp, fx.du, fx.dv, fx.vth, fx.bias,
                           default_chunks(B), counts, raster, ras, membrane, mem, False, _NO_SUMS, fx.scale)
    return split_record(counts, ras, mem, p.n_off, raster, membrane, synops)


_NO_SUMS = np.zeros((1, 1, 1), np.float64)


def fixed_count_sums(fx: FixedPacked, eb) -> tuple[np.ndarray, np.ndarray]:
    """The spike-count rule's inputs from the integer run: counts (B, sum n_l) int32 and the sums
    over t (B, 2, sum n_l) in float units, ``[:, 1]`` the feed-forward input, ``[:, 0]`` the
    graded count (as :func:`spikelfp.simulate.run_forward` with ``count_sums`` for float nets)."""
    p = fx.p
    B, T = eb.batch_size, eb.n_steps
    n_tot = int(p.n_off[-1])
    counts = np.zeros((B, n_tot), np.int32)
    zs = np.zeros((B, 2, n_tot), np.float64)
    dummy_r = np.zeros((1, 1, 1), np.uint8)
    dummy_m = np.zeros((1, 1, 1), np.int64)
    forward_fixed(eb.indptr, eb.indices, B, T, p.sizes, p.w_off, fx.WT, p.n_off, p.rec, p.conv, p.ct_ptr, p.ct_out,
                  p.ct_k, fx.wexp, fx.du, fx.dv, fx.vth, fx.bias, default_chunks(B), counts, False, dummy_r, False,
                  dummy_m, True, zs, fx.scale)
    return counts, zs


def dequantized(p: Packed, fx: FixedPacked) -> Packed:
    """The float network a fixed-point run *is*, in ``p``'s packed layout and dtype: weights
    ``w_int * 2^e * 64 / scale``, biases ``bias_int / scale``, thresholds ``vth * 64 / scale``,
    decays ``(4096 - dv) / 4096``. What the temporal rule's backward and the |W| factor use when
    training through the fixed-point forward (``TrainConfig.quantize``)."""
    WT = np.empty_like(p.WT)
    for l in range(len(p.sizes) - 1):
        lo, hi = p.w_off[l], p.w_off[l + 1]
        WT[lo:hi] = fx.WT[lo:hi] * (2.0 ** (int(fx.wexp[l]) + 6) / fx.scale[l])
    per_neuron = np.repeat(fx.scale, np.diff(p.n_off))
    return p._replace(WT=WT, bias=(fx.bias / per_neuron).astype(p.bias.dtype),
                      theta=(fx.vth * 64.0 / fx.scale).astype(p.theta.dtype),
                      beta=((DECAY_UNITY - fx.dv) / DECAY_UNITY).astype(p.beta.dtype))


class HeldFormat(NamedTuple):
    """What a held quantization keeps of a layer (:func:`quantize`'s and :func:`fixed_of`'s ``hold``
    read nothing else): its weight exponent, its scale (``v_int / v_float = s 2^e 64``) and the
    weight bits. A :class:`LoihiLayer` has the same attributes."""

    weight_exp: int
    scale: float
    weight_bits: int

    @property
    def weight_scale(self) -> float:
        """s, the factor from float weights to the weight mantissas (as :attr:`LoihiLayer.weight_scale`)."""
        return self.scale / (2.0**self.weight_exp * 64)


class Hold(NamedTuple):
    """The held formats of a network's layers (:func:`hold_of`): a ``hold`` for :func:`quantize`
    and :func:`fixed_of`, as a :class:`LoihiNetwork` is, without its integer weights."""

    layers: tuple


def _held_format(p: Packed, like: Network, l: int, bits: int) -> HeldFormat:
    """Layer l's format derived from the packed weights ``p`` (its clip level over W and a
    recurrent V together, :func:`weight_clip`: the values', whatever their layout), as
    :func:`quantize` derives it from the unpacked layer."""
    seg = p.WT[int(p.w_off[l]): int(p.w_off[l + 1])]
    _, e, _, scale, _, _, _ = _layer_format(like.layers[l], bool(p.conv[l, 0]), weight_clip([seg], bits), None,
                                            None, bits)
    return HeldFormat(e, scale, bits)


def hold_of(p: Packed, like: Network, bits: int = 8) -> Hold:
    """Every layer's format as :func:`quantize` derives it from the packed weights ``p`` (the
    trainer's hold at the start of an epoch: no unpacking, no integer weights)."""
    check_loihi_compatible(like)
    return Hold(tuple(_held_format(p, like, l, bits) for l in range(len(p.sizes) - 1)))


def refresh_hold(p: Packed, like: Network, hold: LoihiNetwork | Hold) -> LoihiNetwork | Hold:
    """``hold`` with every layer whose largest |weight| in ``p`` has outgrown the range its held
    scale was derived for (``max |w| * s > top``) re-derived from ``p`` (as :func:`quantize` would);
    the other layers keep theirs (a :class:`Hold`). ``hold`` itself where none has: a held scale then
    never saturates a weight (``TrainConfig.quantize_scale="epoch"``, docs/loihi.md). Below 8 bits
    ``hold`` itself: the clip (:func:`weight_clip`) saturates the largest weights by design, and
    re-deriving it as they grow would search the clip at nearly every step; it is derived again at
    the next epoch."""
    bits = network_weight_bits(hold)
    if bits < 8:            # the clip saturates the largest weights by design: held for the whole epoch
        return hold
    out = []
    top = float(weight_top(bits))
    for l, held in enumerate(hold.layers):
        seg = p.WT[int(p.w_off[l]): int(p.w_off[l + 1])]
        if not seg.size:
            continue
        if max(float(seg.max()), -float(seg.min())) * held.weight_scale > top * (1 + 1e-12):
            out.append(l)
    if not out:
        return hold
    check_loihi_compatible(like)
    return Hold(tuple(_held_format(p, like, l, bits) if l in out else h for l, h in enumerate(hold.layers)))


def fixed_of(p: Packed, like: Network, hold: LoihiNetwork | Hold | None = None, bits: int | None = None) -> FixedPacked:
    """The Loihi network that float master weights ``p`` quantize to, in ``p``'s packed structure;
    ``like`` gives the layers' constants (beta, threshold, reset), ``hold`` the held scales, ``bits``
    the weights' precision (as :func:`quantize`).

    The same numbers as ``pack_fixed(quantize(unpack(p, like=like), hold, bits), structure=p)``
    (:func:`quantize` is the one definition; ``tests/test_quantized.py`` compares the two), computed
    on the packed arrays directly: every weight and bias is quantized elementwise, so the packed
    (transposed) order gives the same integers without unpacking and packing again. A training
    step calls this once per batch."""
    check_loihi_compatible(like)
    L = len(p.sizes) - 1
    if hold is not None and len(hold.layers) != L:
        raise ValueError("quantize: the held quantization has another number of layers")
    bits = _bits_of(bits, hold)
    step, top = float(weight_step(bits)), float(weight_top(bits))
    WT = np.empty(p.WT.size, dtype=np.int32)
    bias = np.zeros(p.bias.size, dtype=np.int64)
    wexp, vths, dvs = np.zeros(L, np.int64), np.zeros(L, np.int64), np.zeros(L, np.int64)
    scales = np.zeros(L, np.float64)
    for l, layer in enumerate(like.layers):
        is_conv = bool(p.conv[l, 0])
        lo, hi = int(p.w_off[l]), int(p.w_off[l + 1])
        n0, n1 = int(p.n_off[l]), int(p.n_off[l + 1])
        seg = p.WT[lo:hi]                               # W (and a recurrent layer's V) of layer l
        per = int(p.conv[l, 2]) if is_conv else n1 - n0   # a conv layer: one bias per channel
        held = None if hold is None else hold.layers[l]
        wmax = None if held is not None else weight_clip([seg], bits)   # (the values' own: layout-free)
        s, e, vth, scale, bm, bexp, dv = _layer_format(layer, is_conv, wmax,
                                                       p.bias[n0: n0 + per] if p.has_bias[l] else None, held, bits)
        _qw_into(seg, s, step, top, WT[lo:hi])
        if bm is not None:
            bias[n0:n1] = np.tile(bm.astype(np.int64) << bexp, (n1 - n0) // per)
        wexp[l], vths[l], scales[l], dvs[l] = e, vth, scale, dv
    return FixedPacked(p, WT, wexp, np.full(L, DECAY_UNITY - 1, np.int64), dvs, vths, bias, scales)


def quantized_training_pair(p: Packed, like: Network, hold: LoihiNetwork | Hold | None = None,
                            bits: int | None = None) -> tuple[Packed, FixedPacked]:
    """For one training step on float master weights ``p``: :func:`fixed_of` and the float view
    of it (:func:`dequantized`)."""
    fx = fixed_of(p, like, hold, bits)
    return dequantized(p, fx), fx


def evaluate_fixed(fx: FixedPacked, data, batch_size: int = 256) -> dict:
    """:func:`spikelfp.train.evaluate` in Loihi fixed point: accuracy, tie rate, spikes and SynOps
    (non-zero synapses) per sample of the integer run."""
    from .simulate import score

    return score(fx.p._replace(WT=fx.WT.astype(np.float64)), data,
                 lambda eb, raster: simulate_fixed(fx, eb, raster=raster), batch_size)
