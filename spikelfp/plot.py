"""Plots of spike trains and membranes (matplotlib; ``pip install matplotlib``).

>>> rec = spikelfp.simulate(net, x, raster=True, membrane=True)         # doctest: +SKIP
>>> spikelfp.plot.raster(rec.rasters[0][0], dt=net.dt)                  # doctest: +SKIP
>>> spikelfp.plot.sample_figure(net, test, 3, "sample3.png")            # doctest: +SKIP

(layer 0 of sample 0; the figure ``spikelfp plot MODEL --sample 3`` writes; docs/models.md runs both)

:func:`raster` draws one dot per spike at (time, neuron); :func:`membranes` the traces of a few
neurons with the threshold; :func:`sample_figure` both for one sample through every layer of a
network: input events, each layer's spikes, the output layer's membranes, label and prediction.
"""

from __future__ import annotations

import os

import numpy as np


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("spikelfp.plot needs matplotlib: pip install matplotlib") from None
    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg") and not os.environ.get("DISPLAY"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _axes(ax):
    if ax is not None:
        return ax
    return _pyplot().subplots(figsize=(6, 3))[1]


def raster(spikes, ax=None, *, dt: float | None = None, title: str | None = None, marker_size: float = 2.0,
           color: str = "k"):
    """One dot per spike of a ``(T, n)`` 0/1 (or count) array at (step or time, neuron index).

    ``dt`` [s] puts time in ms on the x axis (else steps). Returns the axes.
    """
    s = np.asarray(spikes)
    if s.ndim != 2:
        raise ValueError(f"raster takes one sample's spikes, shape (T, n); got shape {s.shape}")
    ax = _axes(ax)
    t, i = np.nonzero(s)
    x = t * (dt * 1e3) if dt else t
    ax.scatter(x, i, s=marker_size, c=color, marker="|" if s.shape[1] > 64 else "o", linewidths=0.8)
    ax.set_xlim(-0.5 * (dt * 1e3 if dt else 1), s.shape[0] * (dt * 1e3 if dt else 1))
    ax.set_ylim(-0.5, s.shape[1] - 0.5)
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("time [ms]" if dt else "step")
    ax.set_ylabel("neuron")
    if title:
        ax.set_title(title)
    return ax


def membranes(v, ax=None, *, neurons=None, threshold: float | None = None, dt: float | None = None,
              title: str | None = None, labels=None):
    """Membrane traces of a ``(T, n)`` array, neurons ``neurons`` (default all, at most 10),
    with the threshold as a dashed line. Returns the axes."""
    v = np.asarray(v, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"membranes takes one sample's membranes, shape (T, n); got shape {v.shape}")
    ax = _axes(ax)
    idx = range(min(v.shape[1], 10)) if neurons is None else list(neurons)
    x = np.arange(v.shape[0]) * (dt * 1e3 if dt else 1)        # step t at t * dt, as in raster()
    for j in idx:
        ax.plot(x, v[:, j], lw=1, label=str(labels[j]) if labels is not None else str(j))
    if threshold is not None:
        ax.axhline(threshold, color="k", ls="--", lw=0.8)
    ax.set_xlabel("time [ms]" if dt else "step")
    ax.set_ylabel("v")
    if title:
        ax.set_title(title)
    return ax


def sample_figure(network, data, index: int, out=None, *, dpi: int = 120):
    """One sample through ``network``: its input events, every layer's spikes and the output
    membranes (threshold dashed), titled with label, prediction and spike counts.

    ``data`` is an :class:`~spikelfp.datasets.EventDataset`; writes a PNG to ``out`` (atomically)
    when given. Returns ``(figure, record)``.
    """
    from .io import atomic_path
    from .simulate import simulate

    plt = _pyplot()
    n = len(data)
    if not (0 <= int(index) < n):
        raise ValueError(f"sample {index} is outside the split's {n} samples (0..{n - 1})")
    if data.n_in != network.n_in:
        raise ValueError(f"the model has {network.n_in} inputs but the data {data.n_in}")
    i = int(index)
    x = data.batch(np.array([i]))
    rec = simulate(network, x, raster=True, membrane=True)
    dt = getattr(network, "dt", None)
    L = len(network.layers)
    fig, axes = plt.subplots(L + 2, 1, figsize=(7, 2.0 * (L + 2)), sharex=True)
    raster(x.to_dense()[0], axes[0], dt=dt, title=f"input ({int(x.to_dense()[0].sum())} events)", color="tab:blue")
    for layer in range(L):
        sp = rec.rasters[layer][0]
        kind = "output" if layer == L - 1 else f"layer {layer}"
        raster(sp, axes[layer + 1], dt=dt, title=f"{kind}: {int(sp.sum())} spikes")
    classes = list(getattr(data, "classes", []) or [])
    out_layer = network.layers[-1]
    label, pred = int(data.labels[i]), int(rec.predict()[0])

    def name(k):
        return classes[k] if k < len(classes) else k
    membranes(rec.membranes[-1][0], axes[-1], threshold=float(np.mean(out_layer.params.threshold)), dt=dt,
              title="output membranes", labels=[name(k) for k in range(out_layer.n_out)])
    for ax in axes[:-1]:
        ax.set_xlabel("")                          # one time axis, at the bottom
    axes[-1].legend(fontsize=6, ncol=min(out_layer.n_out, 10), loc="upper left")
    fig.suptitle(f"sample {i}: label {name(label)}, predicted {name(pred)} "
                 f"(output counts {rec.counts[-1][0].tolist()})", fontsize=8)
    fig.tight_layout()
    if out is not None:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    return fig, rec


__all__ = ["raster", "membranes", "sample_figure"]
