"""snntorch backend: the same network in snntorch, and the surrogate-gradient baseline.

:func:`to_snntorch` builds ``Linear -> snn.Leaky`` per layer (a recurrent layer adds an explicit
bias-free ``Linear`` V applied to the layer's spikes of the previous step: ``I = W x + b + V s[t-1]``,
the contract of docs/neuron.md; snntorch's ``RLeaky`` gives its recurrent Linear a bias, which the
contract does not have) with the layer's beta, threshold and
reset (snntorch's default delayed reset is spikelfp's contract: ``v = beta v (1 - s[t-1]) + I``
for "zero", ``beta v + I - theta s[t-1]`` for "subtract"; spikes are ``v > theta``). State is
explicit: every forward call starts from zero membranes, nothing hidden survives between calls.
:func:`from_snntorch` reads the weights back into a :class:`~spikelfp.Network`.

:func:`train_sg` is the baseline LFP is measured against: BPTT through the same network with a
fast-sigmoid (slope 25) or atan (alpha 2) surrogate, snntorch's rate-coded cross-entropy
(``ce_rate_loss``), Adam or SGD, on the same batches, epochs and seeds as an LFP run. torch runs
on ``threads`` CPU threads (2 by default), and says so.
"""

from __future__ import annotations

import math
import time

import numpy as np

from spikelfp.loadmeter import OtherLoad
from spikelfp.network import ConvLayer, LIFLayer, Network

SURROGATES = {"fast-sigmoid": ("fast_sigmoid", {"slope": 25}), "atan": ("atan", {"alpha": 2.0})}


def _torch():
    try:
        import snntorch
        import torch
    except ImportError:
        raise ImportError("the snntorch backend needs torch and snntorch: pip install torch==2.13.0 snntorch "
                          "(or run `make venv`)") from None
    return torch, snntorch


def _surrogate(name):
    _, snntorch = _torch()
    from snntorch import surrogate

    if name not in SURROGATES:
        raise ValueError(f"unknown surrogate {name!r}; choose one of {', '.join(SURROGATES)}")
    fn, kw = SURROGATES[name]
    return getattr(surrogate, fn)(**kw)


def to_snntorch(network: Network, surrogate: str = "fast-sigmoid", dtype=None):
    """An ``SNNTorchNet`` (torch.nn.Module) with the network's weights, in ``dtype`` (default float64)."""
    torch, snntorch = _torch()
    import snntorch as snn

    dtype = dtype or torch.float64
    spike_grad = _surrogate(surrogate)

    class SNNTorchNet(torch.nn.Module):
        """Linear / Conv2d (+ recurrent Linear) + Leaky per layer; ``forward(x)`` takes (T, B, n_in) and
        returns the output spikes
        (T, B, n_out); ``forward(x, record=True)`` also returns every layer's spikes and membranes."""

        def __init__(self):
            super().__init__()
            self.fcs = torch.nn.ModuleList()
            self.recs = torch.nn.ModuleList()     # V per layer (torch.nn.Identity where there is none)
            self.lifs = torch.nn.ModuleList()
            self.shapes = []                      # a conv layer's (in_shape, out_shape), else None
            for layer in network.layers:
                if isinstance(layer, ConvLayer):
                    H, W, C = layer.in_shape
                    fc = torch.nn.Conv2d(C, layer.out_shape[2], layer.kernel_size, stride=layer.stride,
                                         padding=layer.padding, bias=layer.bias is not None, dtype=dtype)
                    with torch.no_grad():
                        fc.weight.copy_(torch.as_tensor(layer.weight, dtype=dtype))
                        if layer.bias is not None:
                            fc.bias.copy_(torch.as_tensor(layer.bias, dtype=dtype))
                    fc.weight.requires_grad_(layer.trainable)        # pooling: fixed synapses
                    self.fcs.append(fc)
                    self.recs.append(torch.nn.Identity())
                    self.shapes.append((layer.in_shape, layer.out_shape))
                    self.lifs.append(snn.Leaky(beta=torch.tensor(layer.beta, dtype=dtype),
                                               threshold=torch.tensor(layer.threshold, dtype=dtype),
                                               spike_grad=spike_grad, reset_mechanism=layer.reset, init_hidden=False))
                    continue
                self.shapes.append(None)
                if layer.recurrent is not None:
                    rc = torch.nn.Linear(layer.n_out, layer.n_out, bias=False, dtype=dtype)
                    with torch.no_grad():
                        rc.weight.copy_(torch.as_tensor(layer.recurrent, dtype=dtype))
                else:
                    rc = torch.nn.Identity()
                self.recs.append(rc)
                fc = torch.nn.Linear(layer.n_in, layer.n_out, bias=layer.bias is not None, dtype=dtype)
                with torch.no_grad():
                    fc.weight.copy_(torch.as_tensor(layer.weight, dtype=dtype))
                    if layer.bias is not None:
                        fc.bias.copy_(torch.as_tensor(layer.bias, dtype=dtype))
                self.fcs.append(fc)
                self.lifs.append(snn.Leaky(beta=torch.tensor(layer.beta, dtype=dtype),
                                           threshold=torch.tensor(layer.threshold, dtype=dtype),
                                           spike_grad=spike_grad, reset_mechanism=layer.reset, init_hidden=False))

        def forward(self, x, record: bool = False):
            mems = [torch.zeros(x.shape[1], _n_out(fc, sh), dtype=x.dtype, device=x.device)
                    for fc, sh in zip(self.fcs, self.shapes)]
            prev = [torch.zeros_like(m) for m in mems]
            spikes = [[] for _ in self.fcs]
            membranes = [[] for _ in self.fcs]
            for t in range(x.shape[0]):
                h = x[t]
                for l, (fc, rc, lif) in enumerate(zip(self.fcs, self.recs, self.lifs)):
                    if self.shapes[l] is not None:     # channels-last flat <-> torch's (B, C, H, W)
                        (H, W, C), _ = self.shapes[l]
                        img = h.to(fc.weight.dtype).reshape(-1, H, W, C).permute(0, 3, 1, 2)
                        cur = fc(img).permute(0, 2, 3, 1).reshape(h.shape[0], -1)
                    else:
                        cur = fc(h.to(fc.weight.dtype))
                    if isinstance(rc, torch.nn.Linear):
                        cur = cur + rc(prev[l].to(rc.weight.dtype))
                    h, mems[l] = lif(cur, mems[l])
                    prev[l] = h
                    spikes[l].append(h)
                    if record:
                        membranes[l].append(mems[l])
            out = torch.stack(spikes[-1])
            if record:
                return out, [torch.stack(s) for s in spikes], [torch.stack(m) for m in membranes]
            return out

    return SNNTorchNet()


def _n_out(fc, shape) -> int:
    return int(np.prod(shape[1])) if shape is not None else fc.out_features


def from_snntorch(model, dt: float = 1e-3) -> Network:
    """Read a model built by :func:`to_snntorch` (or any Linear/Leaky stack of that shape) back."""
    import torch

    layers = []
    recs = getattr(model, "recs", [None] * len(model.fcs))
    shapes = getattr(model, "shapes", [None] * len(model.fcs))
    for fc, rc, lif, sh in zip(model.fcs, recs, model.lifs, shapes, strict=True):
        beta = float(lif.beta.detach().clamp(0, 1).cpu().reshape(-1)[0])
        thr = float(lif.threshold.detach().cpu().reshape(-1)[0])
        reset = {0: "subtract", 1: "zero"}[int(lif.reset_mechanism_val)]
        w = fc.weight.detach().cpu().double().numpy().copy()
        b = None if fc.bias is None else fc.bias.detach().cpu().double().numpy().copy()
        if sh is not None:
            layers.append(ConvLayer(w, sh[0], fc.stride[0], fc.padding[0], b, beta=beta, threshold=thr, reset=reset,
                                    trainable=bool(fc.weight.requires_grad)))
            continue
        v = rc.weight.detach().cpu().double().numpy().copy() if isinstance(rc, torch.nn.Linear) else None
        layers.append(LIFLayer(w, b, beta=beta, threshold=thr, reset=reset, recurrent=v))
    return Network(layers, dt=dt)


def dense_batch(eb, torch, dtype):
    """EventBatch -> (T, B, n_in) tensor of 0/1."""
    return torch.from_numpy(np.ascontiguousarray(eb.to_dense(np.float32).transpose(1, 0, 2))).to(dtype)


def train_sg(train, test, *, hidden=(256,), recurrent=None, arch=None, epochs=20, batch_size=32, lr=2e-3,
             optimizer="adam", momentum=0.9, schedule="constant",
             surrogate="fast-sigmoid", beta=0.9, threshold=1.0, reset="zero", bias=False, init_gain=1.0,
             init_min_rate=0.01, seed=0, threads=2, dt=1e-3, log=None, progress=False,
             epoch_callback=None) -> dict:
    """Surrogate-gradient BPTT with snntorch on the same data, batches and init as an LFP run.

    The init uses the same generator and order as :class:`spikelfp.train.Trainer` (so an LFP and
    an SG run with one seed start from the same weights) and the epochs shuffle with it as well.
    Evaluation runs the trained weights in spikelfp's simulator (identical spikes; see the tests).
    ``recurrent``: one flag per hidden layer (recurrent LIF, docs/layers.md); None: all dense.
    ``arch``: an architecture spec (docs/layers.md), used instead of ``hidden``/``recurrent``.
    Returns a dict with the network, the history and timings.
    """
    torch, snntorch = _torch()
    import snntorch.functional as SF

    from spikelfp.train import evaluate

    log = log or (lambda msg: None)
    torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    from spikelfp.train import activate_hidden, probe_batch

    if arch is None:
        from spikelfp.arch import format_arch

        arch = format_arch(("r" if r else "d", int(h)) for h, r in zip(hidden, recurrent or [False] * len(hidden)))
    from spikelfp.train import input_shape

    net0 = Network.from_arch(arch, input_shape(train), train.n_classes, seed=rng, beta=beta, threshold=threshold,
                             reset=reset, bias=bias, gain=init_gain, dt=dt)
    if init_min_rate > 0:   # the same init as an LFP run (spikelfp.train.Trainer.init_network)
        net0 = activate_hidden(net0, probe_batch(train), init_min_rate)
    def make(net):
        m = to_snntorch(net, surrogate=surrogate, dtype=torch.float32)
        return m, (torch.optim.Adam(m.parameters(), lr=lr) if optimizer == "adam"
                   else torch.optim.SGD(m.parameters(), lr=lr, momentum=momentum))

    loss_fn = SF.ce_rate_loss()
    # untimed warm-up, as the LFP trainer's (spikelfp.train.Trainer.warm_up): a process's first torch
    # batches run up to 2x slower than the rest (0.9, 0.7, 0.6 s against 0.5 s on a DVS-sized conv
    # net), so three steps of a throwaway copy on the first batch; it draws on no generator and
    # leaves the model, the optimizer and torch's RNG as they were
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        wm, wo = make(net0)
        idx = np.arange(min(batch_size, len(train)))
        x, y = dense_batch(train.batch(idx), torch, torch.float32), torch.from_numpy(train.labels[idx])
        for _ in range(3):
            wloss = loss_fn(wm(x), y)
            wo.zero_grad()
            wloss.backward()
            wo.step()
        del wm, wo
    warm_s = time.perf_counter() - t0
    model, opt = make(net0)
    n = len(train)
    steps = math.ceil(n / batch_size)
    from spikelfp.optim import make_schedule

    lr_at = make_schedule(schedule, lr, epochs * steps)    # the LFP trainer's schedule, step by step
    history = []
    run_meter = OtherLoad(start=False)     # other processes' CPU share over all timed epochs
    bar = None
    if progress:
        from spikelfp.progress import progress_bar
        bar = progress_bar(total=epochs * steps, desc=f"train sg-{surrogate}", unit="batch", leave=False)
    log(f"snntorch surrogate-gradient training on {torch.get_num_threads()} torch threads")
    try:
        for epoch in range(epochs):
            perm = rng.permutation(n)
            meter = OtherLoad()
            run_meter.start()
            t0 = time.perf_counter()
            model.train()
            for s in range(steps):
                idx = perm[s * batch_size: (s + 1) * batch_size]
                x = dense_batch(train.batch(idx), torch, torch.float32)
                y = torch.from_numpy(train.labels[idx])
                out = model(x)
                loss = loss_fn(out, y)
                opt.zero_grad()
                loss.backward()
                for group in opt.param_groups:
                    group["lr"] = lr_at(epoch * steps + s)
                opt.step()
                if bar is not None:
                    bar.update(1)
            train_s = time.perf_counter() - t0
            other_load = meter.stop()
            run_meter.stop()
            net = from_snntorch(model, dt=dt)
            ev_test = evaluate(net, test)
            ev_train = evaluate(net, train)
            rec = {"epoch": epoch + 1, "train_accuracy": ev_train["accuracy"], "test_accuracy": ev_test["accuracy"],
                   "test_tie_rate": ev_test["tie_rate"], "spikes_per_sample": ev_test["spikes_per_sample"],
                   "synops_per_sample": ev_test["synops_per_sample"], "train_seconds": train_s,
                   "samples_per_s": n / train_s, "other_cpu_load": other_load, "loss": float(loss.detach())}
            history.append(rec)
            if epoch_callback is not None:
                epoch_callback(rec)
            log(f"epoch {epoch + 1}/{epochs}: train {rec['train_accuracy']:.4f}  test {rec['test_accuracy']:.4f}  "
                f"({train_s:.1f} s, {n / train_s:.0f} samples/s)")
    finally:
        if bar is not None:
            bar.close()
    return {"network": from_snntorch(model, dt=dt), "history": history, "threads": torch.get_num_threads(),
            "other_cpu_load": run_meter.share(), "warm_up_seconds": warm_s}


__all__ = ["to_snntorch", "from_snntorch", "train_sg", "SURROGATES"]
