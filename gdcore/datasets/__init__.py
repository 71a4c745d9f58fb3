"""Small data sets for examples and tests.

- `load_digits`: the bundled UCI 8x8 handwritten digits (1,797 images).
- `load_mnist`: MNIST-format IDX files from a folder you supply.
- `load_npz`: ``X`` and ``y`` arrays from an ``.npz`` file.
"""

from ._digits import load_digits
from ._files import load_mnist, load_npz

__all__ = ["load_digits", "load_mnist", "load_npz"]
