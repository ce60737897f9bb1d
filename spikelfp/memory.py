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


def estimate_training_bytes(n_in: int, hidden, n_out: int, n_steps: int, batch_size: int, dtype="float64",
                            n_chunks: int = 2, recurrent=None) -> int:
    """Bytes a training run holds, dominated by the weights and the temporal rule's buffers.

    Per weight: the weight (dtype), Adam's two moments, the feedback of each chunk and the summed
    feedback (float64). Per chunk of the temporal rule: ~8 float64 buffers of (T, sum of layer
    sizes). Recurrent layers (``recurrent``, one flag per layer) add n_out^2 weights. Plus a batch's packed input (int32 per possible event, bounded by T * n_in * batch).
    """
    sizes = [int(n_in), *[int(h) for h in hidden], int(n_out)]
    rec = recurrent or [False] * (len(sizes) - 1)
    n_w = sum(a * b + (b * b if r else 0) for a, b, r in zip(sizes[:-1], sizes[1:], rec))
    n_tot = sum(sizes[1:])
    item = 4 if str(dtype) == "float32" else 8
    weights = n_w * (item + 8 * (2 + n_chunks + 1))
    temporal = n_chunks * 8 * 8 * int(n_steps) * max(n_tot, int(n_in))
    batch = 4 * min(int(n_steps) * int(n_in) * int(batch_size), 1 << 31)
    return int(weights + temporal + batch)
