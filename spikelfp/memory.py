"""Memory estimates, checked before a command allocates (a refusal beats an out-of-memory kill)."""

from __future__ import annotations

import os


def available_bytes() -> int:
    """Memory available to new allocations [bytes]: MemAvailable from /proc/meminfo (else total)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def estimate_training_bytes(layers, n_steps: int, batch_size: int, dtype="float64", n_chunks: int = 2) -> int:
    """Bytes a training run holds, dominated by the weights and the temporal rule's buffers.

    Per weight: the weight (dtype), Adam's two moments, the feedback of each chunk and the summed
    feedback (float64). Per chunk of the temporal rule: ~8 float64 buffers of (T, sum of layer
    sizes). ``layers``: per layer (n_in, n_out, number of weights, recurrent), as
    :func:`spikelfp.arch.layer_shapes` gives them; recurrent layers add n_out^2 weights. Plus a
    batch's packed input (int32 per possible event, bounded by T * n_in * batch).
    """
    n_in = int(layers[0][0])
    n_w = sum(int(w) + (int(b) ** 2 if r else 0) for _, b, w, r in layers)
    n_tot = sum(int(b) for _, b, _, _ in layers)
    item = 4 if str(dtype) == "float32" else 8
    weights = n_w * (item + 8 * (2 + n_chunks + 1))
    temporal = n_chunks * 8 * 8 * int(n_steps) * max(n_tot, int(n_in))
    batch = 4 * min(int(n_steps) * int(n_in) * int(batch_size), 1 << 31)
    return int(weights + temporal + batch)
