"""``spikelfp export``: write a trained model to a backend and (optionally) check it on test data.

Checks compare spike trains bin by bin: the agreement of a layer is the fraction of its
(sample, step, neuron) bins where both spike or both stay silent; "overall" pools all layers.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from .io import load_checkpoint
from .loihi import simulate_fixed
from .simulate import predict, simulate

TARGETS = ("lava", "nir", "nir-snntorch", "netx")
DEFAULT_SUFFIX = {"lava": ".lava.h5", "nir": ".nir", "nir-snntorch": ".snntorch.nir", "netx": ".netx.h5"}


def agreement(a: list, b: list) -> dict:
    """Per-layer and overall fraction of equal spike bins between two lists of rasters."""
    per = [float(np.mean(x == y)) for x, y in zip(a, b, strict=True)]
    total = sum(x.size for x in a)
    overall = sum(float(np.sum(x == y)) for x, y in zip(a, b, strict=True)) / total
    return {"per_layer": per, "overall": overall}


def _accuracy(rasters_or_counts, labels) -> float:
    out = rasters_or_counts[-1]
    counts = out.sum(1) if out.ndim == 3 else out
    return float(np.mean(predict(counts) == labels))


def output_path(model_path, target: str, out=None) -> str:
    """The export's file (default: the model's name with the target's suffix); never the model itself."""
    from .io import same_file

    if target not in TARGETS:
        raise ValueError(f"unknown export target {target!r}; choose one of {', '.join(TARGETS)}")
    base = os.path.splitext(os.fspath(model_path))[0]
    out = os.fspath(out) if out else base + DEFAULT_SUFFIX[target]
    if same_file(out, model_path):
        raise ValueError(f"the export would overwrite its input {model_path}: pass --out with another path")
    if os.path.isdir(out):
        raise ValueError(f"--out {out} is a folder: give a file name")
    return out


def _test_data(ckpt, n: int, seed: int, data_root, progress):
    from spikelfp import datasets
    from spikelfp.datasets import Binning

    name = ckpt.dataset or "digits-saccade"
    spec = datasets.get_spec(name)
    binning = Binning(**ckpt.binning) if ckpt.binning else spec.default_binning
    _, test = datasets.load(name, binning, root=data_root, progress=progress, download=False)
    if test.n_in != ckpt.network.n_in:
        raise ValueError(f"model has {ckpt.network.n_in} inputs but {name}'s test set has {test.n_in}")
    return test, test.sample_indices(n, seed)


def export_model(model_path, target: str, out=None, check: int = 0, seed: int = 0, data_root=None,
                 progress=None) -> dict:
    """Export ``model_path`` (a spikelfp checkpoint) to ``target``; with ``check`` > 0, run that many
    test samples through the exported network and compare with spikelfp's simulation."""
    if target not in TARGETS:
        raise ValueError(f"unknown export target {target!r}; choose one of {', '.join(TARGETS)}")
    out = output_path(model_path, target, out)
    ckpt = load_checkpoint(model_path)
    net = ckpt.network
    from spikelfp import backends

    backend = backends.get("nir" if target == "nir-snntorch" else target)
    report: dict = {"model": os.fspath(model_path), "target": target, "out": out, "sizes": list(net.sizes),
                    "arch": net.arch, "synapses": synapse_counts(net, ckpt.pruning)}
    quantized = (ckpt.config or {}).get("quantize")
    bits = int((ckpt.config or {}).get("weight_bits", 8)) if quantized else 8
    if quantized:          # trained through quantize(): the export's fixed-point parameters are the trained ones
        report["trained_quantized"] = {"quantize": quantized, "weight_bits": bits,
                                       "test_accuracy": (ckpt.history[-1] if ckpt.history else {}).get("test_accuracy")}
    if target == "lava":
        float_exp, fixed_exp = backend.export(net, "float"), backend.export(net, "fixed", bits)
        backend.write_parameters(out, net, bits)
        report["layers"] = {"float": float_exp.describe(), "fixed": fixed_exp.describe()}
        report["synapses"]["lava"] = {m: {"synapses": sum(d["synapses"] for d in report["layers"][m]),
                                          "connections": [d["connection"] for d in report["layers"][m]]}
                                      for m in ("float", "fixed")}
    elif target == "nir-snntorch":
        backend.export(net, out, snntorch=True)
    else:
        backend.export(net, out)
    if check and check > 0:
        test, idx = _test_data(ckpt, check, seed, data_root, progress)
        eb = test.batch(idx)
        y = test.labels[idx]
        ref = simulate(net, eb, raster=True)
        report.update({"samples": int(idx.size), "reference_accuracy": _accuracy(ref.counts, y)})
        if target == "lava":
            sim_fixed = simulate_fixed(fixed_exp.quantized, eb, raster=True)
            note = (lambda m: print(m, file=sys.stderr, flush=True)) if progress is not None else (lambda m: None)
            note(f"lava: running {idx.size} samples ({idx.size * eb.n_steps} steps) in floating_pt ...")
            run_float = float_exp.run(eb)
            note(f"lava: floating_pt done in {run_float.seconds:.0f} s; running fixed_pt ...")
            run_fixed = fixed_exp.run(eb)
            note(f"lava: fixed_pt done in {run_fixed.seconds:.0f} s")
            everything = test.batch(np.arange(len(test)))
            full_q = simulate_fixed(fixed_exp.quantized, everything)
            full_ref = simulate(net, everything)
            report.update({
                "float_accuracy": _accuracy(run_float.rasters, y),
                "fixed_accuracy": _accuracy(run_fixed.rasters, y),
                "float_spike_agreement": agreement(run_float.rasters, ref.rasters),
                "fixed_spike_agreement": agreement(run_fixed.rasters, ref.rasters),
                "fixed_vs_spikelfp_fixed_agreement": agreement(run_fixed.rasters, sim_fixed.rasters),
                "spikelfp_fixed_accuracy": _accuracy(sim_fixed.counts, y),
                "lava_seconds_per_step": {"float": run_float.seconds_per_step,
                                          "fixed": run_fixed.seconds_per_step},
                "lava_steps": run_float.lava_steps,
                "full_test_set": {"samples": len(test), "reference_accuracy": _accuracy(full_ref.counts, test.labels),
                                  "fixed_accuracy": _accuracy(full_q.counts, test.labels)},
            })
            if quantized:
                report["trained_quantized"]["full_test_set_fixed_accuracy"] = report["full_test_set"]["fixed_accuracy"]
        elif target == "nir":
            back = backend.load(out)
            rec = simulate(back, eb, raster=True)
            report.update({"roundtrip_spike_agreement": agreement(rec.rasters, ref.rasters),
                           "roundtrip_accuracy": _accuracy(rec.counts, y),
                           "roundtrip_exact": all(np.array_equal(a.weight, b.weight) and a.beta == b.beta
                                                  and a.threshold == b.threshold
                                                  for a, b in zip(net.layers, back.layers, strict=True))})
        elif target == "nir-snntorch":
            got = backend.run_snntorch(out, eb.to_dense(), input_shape=_conv_input_shape(net))
            report.update({"snntorch_output_agreement": float(np.mean(got == ref.rasters[-1])),
                           "snntorch_accuracy": _accuracy([got], y)})
        else:
            qn = backend.read(out)
            rec = simulate_fixed(qn, eb, raster=True)
            report.update({"fixed_spike_agreement": agreement(rec.rasters, ref.rasters),
                           "fixed_accuracy": _accuracy(rec.counts, y)})
    return report


def _conv_input_shape(net):
    from spikelfp.network import ConvLayer

    first = net.layers[0]
    return tuple(first.in_shape) if isinstance(first, ConvLayer) else None


def synapse_counts(net, pruning: dict | None) -> dict:
    """Weights and non-zero synapses of a network (W and V of every trainable layer), the fixed
    synapses of its pooling layers (``fixed``: the nonzero entries of their kernels, which Lava's
    synapse count includes), and, for a pruned model, the count before pruning (``spikelfp
    prune``'s record)."""
    from spikelfp.network import ConvLayer
    from spikelfp.prune import nonzero_synapses, prunable

    r = {"weights": int(sum(a.size for _, a in prunable(net))), "nonzero": nonzero_synapses(net),
         "fixed": int(sum(np.count_nonzero(la.weight) for la in net.layers
                          if isinstance(la, ConvLayer) and not la.trainable))}
    if pruning:
        r["before_pruning"] = pruning.get("synapses_before")
        r["pruning"] = {k: pruning.get(k) for k in ("amount", "criterion", "scope", "finetune_epochs")}
    return r


def format_synapses(s: dict) -> str:
    line = f"synapses: {s['nonzero']} non-zero of {s['weights']} weights"
    if s.get("fixed"):
        line += f", and {s['fixed']} fixed ones in pooling layers"
    if s.get("pruning"):
        pr = s["pruning"]
        line += (f" (before pruning {s.get('before_pruning')}; {pr.get('amount', 0):.0%} pruned by "
                 f"{pr.get('criterion')}, {pr.get('scope')})")
    lava = s.get("lava")
    if lava:
        line += (f"; in Lava: {lava['float']['synapses']} (floating_pt), {lava['fixed']['synapses']} (fixed_pt, "
                 f"after 8-bit quantization); connections {', '.join(lava['float']['connections'])}")
    return line


def format_report(r: dict) -> str:
    shape = "-".join(str(v) for v in (r["sizes"][0], r.get("arch", ""), r["sizes"][-1]) if v != "")
    lines = [f"exported {r['model']} -> {r['target']}: {r['out']}  (network {shape})"]
    if "synapses" in r:
        lines.append("  " + format_synapses(r["synapses"]))
    tq = r.get("trained_quantized")
    if tq:
        acc = tq.get("test_accuracy")
        lines.append(f"  trained in Loihi fixed point (--quantize {tq['quantize']}, {tq.get('weight_bits', 8)}-bit "
                     "weights): trained test accuracy "
                     + (f"{acc:.4f}" if acc is not None else "?")
                     + (f", fixed point now on the full test set {tq['full_test_set_fixed_accuracy']:.4f}"
                        if "full_test_set_fixed_accuracy" in tq else ""))
    if "samples" not in r:
        return "\n".join(lines)
    lines.append(f"checked on {r['samples']} test samples; spikelfp accuracy {r['reference_accuracy']:.4f}")

    def agree(name, a):
        per = "  ".join(f"L{k}: {v:.6f}" for k, v in enumerate(a["per_layer"]))
        return f"  {name:<34} overall {a['overall']:.6f}   {per}"

    if r["target"] == "lava":
        lines += [
            agree("Lava float vs spikelfp", r["float_spike_agreement"]),
            agree("Lava fixed vs spikelfp float", r["fixed_spike_agreement"]),
            agree("Lava fixed vs spikelfp fixed", r["fixed_vs_spikelfp_fixed_agreement"]),
            f"  accuracy: Lava float {r['float_accuracy']:.4f}, Lava fixed {r['fixed_accuracy']:.4f} "
            f"(change {r['fixed_accuracy'] - r['reference_accuracy']:+.4f}); spikelfp fixed mode "
            f"{r['spikelfp_fixed_accuracy']:.4f}",
            f"  full test set ({r['full_test_set']['samples']}): float {r['full_test_set']['reference_accuracy']:.4f}, "
            f"fixed point {r['full_test_set']['fixed_accuracy']:.4f} (spikelfp's bit-exact Loihi mode)",
            f"  Lava CPU simulator: {r['lava_seconds_per_step']['float'] * 1e3:.2f} ms/step (float), "
            f"{r['lava_seconds_per_step']['fixed'] * 1e3:.2f} ms/step (fixed), {r['lava_steps']} steps",
        ]
    elif r["target"] == "nir-snntorch":
        lines += [f"  snntorch.import_from_nir output spikes vs spikelfp: {r['snntorch_output_agreement']:.6f}; "
                  f"accuracy {r['snntorch_accuracy']:.4f}"]
    elif r["target"] == "nir":
        lines += [agree("NIR round trip vs original", r["roundtrip_spike_agreement"]),
                  f"  round trip exact: {r['roundtrip_exact']}; accuracy {r['roundtrip_accuracy']:.4f}"]
    else:
        lines += [agree("netx (fixed point) vs spikelfp float", r["fixed_spike_agreement"]),
                  f"  netx accuracy {r['fixed_accuracy']:.4f} (change "
                  f"{r['fixed_accuracy'] - r['reference_accuracy']:+.4f})"]
    return "\n".join(lines)
