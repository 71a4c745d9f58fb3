"""The bundled UCI handwritten digits data set (8x8 images)."""

import gzip
from importlib import resources

import numpy as np

DIGITS_FILE = "digits.csv.gz"


def load_digits():
    """Load the bundled 8x8 handwritten digits data set.

    The data ship inside the package (about 57 kB), so nothing is
    downloaded.

    Returns
    -------
    X : ndarray of float64, shape (1797, 64)
        One image per row, pixels in row-major order (``X[i].reshape(8, 8)``
        is image ``i``). Values are integer counts from 0 to 16 and are
        **not scaled**; divide by 16 for inputs in [0, 1].
    y : ndarray of int64, shape (1797,)
        The digit shown in each image, 0 to 9 (about 180 of each).

    Notes
    -----
    This is the test part (``optdigits.tes``) of the UCI "Optical
    Recognition of Handwritten Digits" data set: 32x32 bitmaps written by
    13 people, reduced to 8x8 by counting the set pixels in each 4x4 block.
    The file is the copy distributed with scikit-learn 1.9.1
    (``sklearn/datasets/data/digits.csv.gz``); each row holds the 64 pixel
    values followed by the label.

    The data set is licensed under CC BY 4.0
    (https://creativecommons.org/licenses/by/4.0/).

    References
    ----------
    .. [1] E. Alpaydin and C. Kaynak, "Optical Recognition of Handwritten
       Digits", UCI Machine Learning Repository, 1998.
       https://doi.org/10.24432/C50P49

    Examples
    --------
    >>> from gdcore.datasets import load_digits
    >>> X, y = load_digits()
    >>> X.shape, y.shape
    ((1797, 64), (1797,))
    """
    data_file = resources.files(__package__).joinpath("data").joinpath(DIGITS_FILE)
    with data_file.open("rb") as compressed, gzip.open(compressed, "rt") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.int64, ndmin=2)
    X = table[:, :-1].astype(np.float64)
    y = np.ascontiguousarray(table[:, -1])
    return X, y
