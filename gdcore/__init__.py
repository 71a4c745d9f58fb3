"""gdcore: train neural networks by gradient descent on the CPU.

A C core (dense layers, activations, losses, backprop, in-place optimizer updates and the whole
mini-batch epoch, split across cores with OpenMP) under a thin Python API.
"""
from . import callbacks, datasets, losses, optim, schedules
from ._config import show_config
from .gradcheck import check_gradients
from .layers import Dense, Dropout
from .models import MLP, DivergenceError, History, Sequential, epoch_permutation
from . import io
from .io import load

__version__ = "0.1.0"

__all__ = ["Dense", "Dropout", "Sequential", "MLP", "History", "DivergenceError", "epoch_permutation",
           "losses", "optim", "schedules", "callbacks", "datasets", "show_config",
           "check_gradients", "io", "load", "__version__"]


def __getattr__(name):
    # gdcore.sklearn needs scikit-learn: imported on first use, so `import gdcore` works without it
    if name in ("sklearn", "plot"):
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'gdcore' has no attribute {name!r}")
