"""gdcore.show_config(): what this installation runs on."""
import platform
import sys

import numpy as np
import scipy

from . import _core
from ._threads import blas_info, resolve_n_threads, usable_cores


def show_config(file=None):
    """Print gdcore's build and runtime configuration: versions, OpenMP, BLAS, thread count.

    The thread count is what ``fit(n_threads=None)`` uses: the usable cores, capped by
    OMP_NUM_THREADS when it is set.
    """
    from . import __version__
    if file is not None and not callable(getattr(file, "write", None)):
        raise TypeError(f"file must be a writable text stream such as sys.stdout or an open "
                        f"file, got {file!r}")
    lines = [
        f"gdcore {__version__}",
        f"python {platform.python_version()} ({sys.executable})",
        f"numpy {np.__version__}",
        f"scipy {scipy.__version__}",
        f"openmp: {'on' if _core.openmp_enabled() else 'OFF (built with GDCORE_OPENMP=OFF)'}",
        f"element-wise loops: {_core.vector_isa()}",
        f"usable cores: {usable_cores()}",
        f"fit() threads (n_threads=None): {resolve_n_threads(None)}"
        + (" (but 1: forked from a process with other threads)" if _core.fork_limited() else ""),
        "blas (GEMM from scipy.linalg.cython_blas; held to 1 thread inside gdcore's OpenMP regions):",
    ]
    for info in blas_info():
        lines.append(f"  {info.get('internal_api')} {info.get('version')} "
                     f"arch={info.get('architecture')} threads={info.get('num_threads')} "
                     f"{info.get('filepath')}")
    small = _core.blas_small_mnk()
    lines.append("  small-matrix path without packing: "
                 + (f"up to M·N·K = {small:,} (narrow layers' tiles sized for it)" if small
                    else "none known (tiles sized for packed GEMMs)"))
    print("\n".join(lines), file=file or sys.stdout)
