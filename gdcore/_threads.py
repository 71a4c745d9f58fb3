"""Thread count resolution and BLAS thread control.

The C core runs its own OpenMP threads and calls BLAS from inside them, so BLAS must stay on one
thread during those calls or the two pools oversubscribe the cores (the route scikit-learn's
KMeans takes). threadpoolctl's controller is built once; limiting it per call is cheap.
"""
import os
import numbers

from threadpoolctl import ThreadpoolController

from . import _core

_controller = None


def usable_cores():
    """Cores this process may run on (CPU affinity where the OS reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_n_threads(n_threads):
    """Turn the user's ``n_threads`` into a positive thread count.

    None or -1: every usable core, capped by OMP_NUM_THREADS when it is set; a positive int: that
    many (more than the cores is allowed and gives the same results, just slower).
    """
    if n_threads is None or (isinstance(n_threads, numbers.Integral) and n_threads == -1):
        return max(1, min(_core.max_threads(), usable_cores()))
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral) or n_threads < 1:
        raise ValueError(f"n_threads must be None, -1 or a positive int, got {n_threads!r}")
    return int(n_threads)


def blas_single_thread():
    """Context manager holding every BLAS library to one thread."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


def blas_info():
    """threadpoolctl's description of the BLAS libraries loaded (SciPy's is the one gdcore calls)."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return [info for info in _controller.info() if info.get("user_api") == "blas"]
