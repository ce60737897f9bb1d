"""BLAS on one thread around spikelfp's own parallel kernels.

numba's parallel kernels already use the cores; a second pool of BLAS threads fighting them made
LFP steps 1.6-9x slower here (the spike-count rule's np.dot inside a numba kernel calls scipy's
OpenBLAS), and a BLAS thread count changes the bits of a dot product, so pinning also keeps runs
reproducible. The rules pin it themselves around their kernels; the trainer around its loop.
"""

from __future__ import annotations

_controller = None


def single_threaded_blas():
    """A context manager that pins every BLAS (numpy's, and scipy's that numba's np.dot calls) to
    one thread: ~10 us to enter, so it can wrap every feedback call."""
    global _controller
    if _controller is None:
        import scipy.linalg.cython_blas  # noqa: F401 - load the library numba's np.dot uses, so it is seen
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")
