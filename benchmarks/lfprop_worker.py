"""The lfprop side of ``benchmarks/lfprop.py``; runs in lfprop's own environment, never the project's.

    LFPROP_PYTHON case.npz result.npz --threads 2 --repeats 5

``case.npz`` (written by ``benchmarks/lfprop.py``): the network layer by layer (``kind`` dense,
conv or pool; weights in spikelfp's layout; beta, threshold; a conv layer's input shape (H, W, C)
and stride), binary input ``x`` (B, T, n_in) with channels-last pixels, ``labels`` and ``eps``.
The net is built as the authors build theirs: ``SpikingLayer(Linear | Conv2d, snntorch.Leaky)``
(subtract reset, ``reset_delay=True``) stepped through T, ``SnnCorrectClassRewardSpikesRateCoded``
and ``LFPSNNEpsilonComposite``; a spikelfp pooling layer is a SpikingLayer of its fixed Conv2d
(``requires_grad=False``), so both sides run the same network and the same rule.

Writes, per trainable layer, lfprop's ``param.feedback`` in spikelfp's layout (float64 run: the
check), the output spikes, and the float32 step times (forward over T + reward + backward; the
optimizer step is not timed on either side).
"""

import argparse
import os
import sys
import time
import types

# this folder holds benchmarks/lfprop.py: off the path, or ``import lfprop`` would find it, not the package
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import numpy as np  # noqa: E402

for _name in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
    sys.modules.setdefault(_name, types.ModuleType(_name))      # PyPI's torchvision is CUDA-linked

import snntorch as snn  # noqa: E402
import torch  # noqa: E402
from lfprop.model.spiking_networks import SpikingLayer  # noqa: E402
from lfprop.propagation.propagator_snn import LFPSNNEpsilonComposite  # noqa: E402
from lfprop.rewards.reward_functions import SnnCorrectClassRewardSpikesRateCoded  # noqa: E402


def _heaviside(x):
    return (x > 0).to(x.dtype)


class ToImage(torch.nn.Module):
    """Flat channels-last pixels (B, H*W*C) -> torch's (B, C, H, W)."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(int(v) for v in shape)

    def forward(self, x):
        H, W, C = self.shape
        return x.reshape(-1, H, W, C).permute(0, 3, 1, 2)


def build(case, dtype):
    L = int(case["n_layers"])
    mods = []
    after_conv = None
    for l in range(L):
        kind = str(case[f"layer{l}/kind"])
        w = torch.as_tensor(case[f"layer{l}/weight"], dtype=dtype)
        last = l == L - 1
        if kind in ("conv", "pool"):
            H, W, C = (int(v) for v in case[f"layer{l}/in_shape"])
            if l == 0:
                mods.append(ToImage((H, W, C)))
            fc = torch.nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], stride=int(case[f"layer{l}/stride"]),
                                 bias=False, dtype=dtype)
            after_conv = None
        else:
            if after_conv is not None:         # torch flattens (C, H, W); spikelfp's columns are (H, W, C)
                H, W, C = after_conv
                w = w.reshape(w.shape[0], H, W, C).permute(0, 3, 1, 2).reshape(w.shape[0], -1)
                mods.append(torch.nn.Flatten())
            fc = torch.nn.Linear(w.shape[1], w.shape[0], bias=False, dtype=dtype)
        with torch.no_grad():
            fc.weight.copy_(w)
        fc.weight.requires_grad_(kind != "pool")
        if kind in ("conv", "pool"):
            after_conv = tuple(int(v) for v in case[f"layer{l}/out_shape"])
        leaky = snn.Leaky(beta=float(case[f"layer{l}/beta"]), threshold=float(case[f"layer{l}/threshold"]),
                          init_hidden=True, reset_mechanism="subtract", reset_delay=True, output=last,
                          spike_grad=_heaviside)
        mods.append(SpikingLayer(fc, leaky))
    model = torch.nn.Sequential(*mods).to(dtype)
    layers = [m for m in mods if isinstance(m, SpikingLayer)]
    return model, layers


def step(model, x, labels, eps):
    """One LFP feedback computation: T forward steps under the composite, the reward, the backward."""
    snn.Leaky.reset_hidden()
    composite = LFPSNNEpsilonComposite(epsilon=eps)
    with composite.context(model) as modified:
        xt = x.clone().requires_grad_(True)
        rec = []
        for t in range(x.shape[0]):
            spk, _mem = modified(xt[t])
            rec.append(spk)
        spikes = torch.stack(rec, dim=0)
        reward = SnnCorrectClassRewardSpikesRateCoded(torch.device("cpu"))(spikes, labels)
        torch.autograd.backward((spikes,), (reward,))
    return spikes


def feedback_in_spikelfp_layout(case, layers):
    out = {}
    L = int(case["n_layers"])
    after_conv = None
    for l in range(L):
        kind = str(case[f"layer{l}/kind"])
        w = layers[l].parameterized_layer.weight
        if kind == "pool":
            after_conv = tuple(int(v) for v in case[f"layer{l}/out_shape"])
            continue
        fb = w.feedback.detach().double().numpy()
        if kind == "dense" and after_conv is not None:
            H, W, C = after_conv
            fb = fb.reshape(fb.shape[0], C, H, W).transpose(0, 2, 3, 1).reshape(fb.shape[0], -1)
        if kind == "conv":
            after_conv = tuple(int(v) for v in case[f"layer{l}/out_shape"])
        out[f"feedback{l}"] = fb
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case")
    ap.add_argument("out")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--check-batch", type=int, default=16)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    case = dict(np.load(a.case, allow_pickle=False))
    eps = float(case["eps"])
    x = np.ascontiguousarray(case["x"].transpose(1, 0, 2))          # (T, B, n): snntorch's layout
    labels = torch.as_tensor(case["labels"].astype(np.int64))
    res = {}
    # the check: float64, the first check-batch samples
    nb = min(a.check_batch, x.shape[1])
    model, layers = build(case, torch.float64)
    spikes = step(model, torch.as_tensor(x[:, :nb], dtype=torch.float64), labels[:nb], eps)
    res["check_spikes"] = spikes.detach().numpy().astype(np.uint8)
    res.update(feedback_in_spikelfp_layout(case, layers))
    # the timing: float32, the whole batch
    model, layers = build(case, torch.float32)
    x32 = torch.as_tensor(x, dtype=torch.float32)
    times = []
    for _ in range(a.repeats + 1):                 # the first is the warm-up
        t0 = time.perf_counter()
        step(model, x32, labels, eps)
        times.append(time.perf_counter() - t0)
    res["seconds"] = np.array(times[1:])
    res["versions"] = np.array([f"{p} {__import__(p).__version__}" for p in ("torch", "snntorch")]
                               + [f"lfprop {_version('lfprop')}"])
    np.savez(a.out, **res)


def _version(name):
    import importlib.metadata as md

    return md.version(name)


if __name__ == "__main__":
    main()
