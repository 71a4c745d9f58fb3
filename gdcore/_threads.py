"""Thread count resolution and BLAS thread control.

The C core runs its own OpenMP threads and calls BLAS from inside them, so BLAS must stay on one
thread during those calls or the two pools oversubscribe the cores. When the BLAS behind
scipy.linalg.cython_blas is OpenBLAS (SciPy's wheels), its get/set_num_threads functions are
handed to the core once, which then holds BLAS to one thread around each call at the cost of two
C calls. Otherwise every call falls back to a threadpoolctl limit, as scikit-learn's KMeans does.
"""
import contextlib
import ctypes
import os
import numbers
import threading
import weakref

from threadpoolctl import ThreadpoolController

from . import _core

_controller = None
#: Largest n_threads accepted (more threads than cores is allowed, and gives the same bits).
MAX_THREADS = 4096


def usable_cpu_ids():
    """The CPUs gdcore's threads may run on, ascending, or None where the OS does not say:
    where a team of OpenMP's default size runs, asked of its threads. Neither the process's
    affinity nor OpenMP's places say it alone: libgomp binds the main thread to one place at
    load (its own mask then shows one CPU of the process's), and OMP_PROC_BIND=primary,
    places that repeat a CPU, or an affinity set after libgomp bound its threads put two of
    them on one CPU, where they spin against each other (a fit 6x slower than on one thread).
    Elsewhere (not Linux) the process's affinity, where the OS reports it."""
    team = _core.team_cpus(_core.max_threads())
    if team is not None:
        return team
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None


def usable_cores():
    """How many cores gdcore's threads may run on (see usable_cpu_ids)."""
    cpus = usable_cpu_ids()
    return len(cpus) if cpus else (os.cpu_count() or 1)


def resolve_n_threads(n_threads):
    """Turn the user's ``n_threads`` into a positive thread count.

    None or -1: every usable core, capped by OMP_NUM_THREADS when it is set; a positive int: that
    many (more than the cores is allowed and gives the same results, just slower).
    """
    if n_threads is None or (isinstance(n_threads, numbers.Integral) and n_threads == -1):
        return max(1, min(_core.max_threads(), usable_cores()))
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral) \
            or not 1 <= n_threads <= MAX_THREADS:
        raise ValueError(f"n_threads must be None, -1 or an int in [1, {MAX_THREADS}], "
                         f"got {n_threads!r}")
    return int(n_threads)


def _find_scipy_openblas_thread_functions(lib):
    """(get, set) addresses of num_threads in this OpenBLAS controller's library, or None."""
    if lib is None:
        return None
    dynlib = ctypes.CDLL(lib.filepath)
    for prefix in ("scipy_", ""):
        for suffix in ("", "64_", "_64"):
            try:
                get = getattr(dynlib, f"{prefix}openblas_get_num_threads{suffix}")
                put = getattr(dynlib, f"{prefix}openblas_set_num_threads{suffix}")
            except AttributeError:
                continue
            return (ctypes.cast(get, ctypes.c_void_p).value, ctypes.cast(put, ctypes.c_void_p).value)
    return None


#: OpenBLAS cores whose GEMM kernels include a small-matrix path that skips packing, taken for
#: M·N·K up to 100³ (kernel/x86_64/*gemm_small_kernel_permit_skylakex.c). OpenBLAS runs these
#: kernels on AVX-512 Intel CPUs and on AMD Zen 4 and Zen 5.
SMALL_GEMM_CORES = {"skylakex", "cooperlake", "sapphirerapids"}
SMALL_GEMM_MNK = 100 ** 3


def _scipy_blas(controller):
    """threadpoolctl's controller of the OpenBLAS that SciPy's cython_blas calls, or None."""
    libs = [lib for lib in controller.lib_controllers if lib.internal_api == "openblas"]
    scipy_libs = [lib for lib in libs if "scipy" in os.path.dirname(lib.filepath).lower()]
    if len(scipy_libs) != 1 and len(libs) != 1:
        return None
    return (scipy_libs or libs)[0]


def _small_gemm_mnk(lib):
    """The largest M·N·K that this BLAS computes without packing, 0 where it has no such path."""
    core = getattr(lib, "architecture", None) if lib is not None else None
    return SMALL_GEMM_MNK if isinstance(core, str) and core.lower() in SMALL_GEMM_CORES else 0


def _install_blas_thread_control():
    global _controller
    _controller = ThreadpoolController()
    try:
        lib = _scipy_blas(_controller)
        addresses = _find_scipy_openblas_thread_functions(lib)
        _core.set_blas_small_mnk(_small_gemm_mnk(lib))
    except (OSError, AttributeError):  # threadpoolctl internals moved: use the fallback
        addresses = None
    if addresses:
        _core.install_blas_thread_control(*addresses)


def blas_single_thread():
    """Context manager holding BLAS to one thread around core calls: a no-op when the core does
    it itself (the usual case), else a threadpoolctl limit on every BLAS library."""
    if _core.blas_thread_control_installed():
        return contextlib.nullcontext()
    return _controller.limit(limits=1, user_api="blas")


def blas_info():
    """threadpoolctl's description of the BLAS libraries loaded (SciPy's is the one gdcore calls)."""
    return [info for info in _controller.info() if info.get("user_api") == "blas"]


class _HeldAcrossFork:
    """Stands in, in a forked child, for the lock of a model or optimizer that another thread of
    the parent held at the fork. That thread does not exist in the child, so the lock would never
    be released: every use of the object would hang. Its state may also be half-updated (a fork
    in the middle of a batch's update), so it is refused instead, naming the way out."""

    def __init__(self, owner):
        self.owner = owner

    def __enter__(self):
        raise RuntimeError(
            f"this {self.owner} was in use by another thread (training, or being read) when "
            "this process was forked: that thread does not exist here and the state may be "
            "half-updated. Load or build it again in this process, or fork before training.")

    def __exit__(self, *exc_info):
        return False


_locked_objects = weakref.WeakValueDictionary()  # id -> model or optimizer with a _lock


def new_lock(owner):
    """The lock of a model or optimizer (``owner._lock``), registered so that a fork made while
    another thread holds it leaves the child a clear error instead of a hang."""
    _locked_objects[id(owner)] = owner
    return threading.RLock()


def _after_fork_in_child():
    for owner in list(_locked_objects.values()):
        lock = owner.__dict__.get("_lock")
        if isinstance(lock, _HeldAcrossFork) or lock is None:
            continue
        if lock.acquire(blocking=False):  # free, or held by the thread that forked: it goes on
            lock.release()
        else:
            owner.__dict__["_lock"] = _HeldAcrossFork(type(owner).__name__)


_install_blas_thread_control()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
