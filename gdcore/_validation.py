"""Input checks shared by the model and the estimators. Every failure names the argument."""
import math
import numbers

import numpy as np

from . import _core


def _as_array(value, name):
    try:
        return np.asarray(value)
    except (TypeError, ValueError, OverflowError) as exc:  # ragged lists, unconvertible objects
        raise ValueError(f"{name} cannot be read as a rectangular array: {exc}") from None


def _as_real_array(value, name):
    """``value`` as an array of bool, int or float: other dtypes (objects, strings) are converted
    to float64 as NumPy reads them; complex or unreadable values raise TypeError."""
    arr = _as_array(value, name)
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} must be real-valued, got complex dtype {arr.dtype}")
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}") from None
        except OverflowError:
            raise ValueError(f"{name} holds a number too large for float64") from None
    return arr


def _all_finite(arr):
    """True when every element is finite. A NaN or inf makes the sum non-finite, and the sum needs
    no temporary array (np.isfinite(X) allocates one as big as X); only when the sum overflows
    does the exact elementwise check run."""
    if arr.dtype.kind != "f":
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.sum(arr))) or bool(np.isfinite(arr).all())


def check_X(X, n_features, dtype, name="X", check_finite=True, n_threads=1):
    """Return X as a C-contiguous 2-D array of ``dtype`` with ``n_features`` columns, all finite
    (the finiteness check is left out when the caller's C pass does it). The check runs in the C
    core on ``n_threads`` threads: for fit's X it is a pass over the whole data set."""
    if X is None:
        raise TypeError(f"{name} must be an array of shape (n_samples, {n_features}), got None")
    arr = _as_real_array(X, name)
    if arr.ndim == 1 and n_features == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D of shape (n_samples, {n_features}), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has 0 samples")
    if arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} features, but the model expects {n_features}")
    original = arr
    with np.errstate(over="ignore"):  # an overflow to inf is reported just below
        arr = np.ascontiguousarray(arr, dtype=dtype)
    if check_finite and _core.any_nonfinite(arr.reshape(-1), n_threads):
        raise ValueError(f"{name} contains NaN or infinity" + _conversion_note(original, dtype))
    return arr


def _conversion_note(original, dtype):
    """For an error on a non-finite value after converting ``original`` to ``dtype``: the note
    that the conversion made it (a finite float64 beyond float32's range, a long double or a
    Python int beyond the model dtype's, become inf), or "" when ``original`` itself holds the
    NaN or inf. Run on the error path only."""
    dtype = np.dtype(dtype)
    try:
        original = np.asarray(original)
        if original.dtype.kind == "O":  # Python ints beyond int64, mixed lists
            with np.errstate(over="ignore"):
                original = original.astype(np.longdouble)
    except (TypeError, ValueError, OverflowError):
        return ""
    if original.dtype.kind == "f" and original.dtype.itemsize > dtype.itemsize \
            and np.isfinite(original).all():
        return f" (after conversion to {dtype.name})"
    return ""


def check_y(y, loss, n_samples, n_outputs, dtype, name="y", x_name="X"):
    """Return targets as the C core wants them: int64 class indices of shape (n_samples,) for
    index losses, or a C-contiguous (n_samples, n_outputs) array of ``dtype`` otherwise.
    ``x_name`` names the inputs y must match in length."""
    if y is None:
        raise TypeError(f"{name} must be an array of targets, got None")
    arr = _as_real_array(y, name)
    if arr.shape[:1] != (n_samples,):
        raise ValueError(f"{name} has {arr.shape[0] if arr.ndim else 0} samples but {x_name} has "
                         f"{n_samples}")
    if loss.targets == "index":
        if arr.ndim != 1:
            raise ValueError(f"{name} must be 1-D class indices for {loss.name}, got shape {arr.shape}")
        if arr.dtype.kind == "f":
            if not np.isfinite(arr).all():
                raise ValueError(f"{name} contains NaN or infinity")
            if not (arr == np.round(arr)).all():
                raise ValueError(f"{name} must hold integer class indices for {loss.name}")
        if arr.min() < 0 or arr.max() >= n_outputs:
            raise ValueError(f"{name} holds class indices outside [0, {n_outputs}) "
                             f"(min {arr.min()}, max {arr.max()}); the model has {n_outputs} outputs")
        return np.ascontiguousarray(arr, dtype=np.int64)
    if arr.ndim == 1 and n_outputs == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[1] != n_outputs:
        raise ValueError(f"{name} must have shape ({n_samples}, {n_outputs}) for {loss.name}, "
                         f"got {arr.shape}")
    original = arr
    with np.errstate(over="ignore"):
        arr = np.ascontiguousarray(arr, dtype=dtype)
    if not _all_finite(arr):
        raise ValueError(f"{name} contains NaN or infinity" + _conversion_note(original, dtype))
    if loss.name == "binary_cross_entropy" and ((arr < 0) | (arr > 1)).any():
        raise ValueError(f"{name} must be in [0, 1] for binary_cross_entropy")
    return arr


def check_positive_int(value, name):
    return check_int(value, name, minimum=1)


def check_int(value, name, *, minimum, maximum=None):
    """An int in [minimum, maximum] (NumPy's integers too, not a bool), or ValueError naming it."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) \
            or value < minimum or (maximum is not None and value > maximum):
        kind = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        limit = (f" (at most 2**{maximum.bit_length() - 1})"
                 if maximum is not None and isinstance(value, numbers.Integral) and value > 0
                 else "")
        raise ValueError(f"{name} must be {kind}{limit}, got {value!r}")
    return int(value)


def check_bool(value, name):
    """A bool (or NumPy's): bool() would make any non-empty string True, "no" included."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def check_seed(seed, name="seed"):
    """A seed: an int >= 0 (NumPy's integers too, not a bool)."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{name} must be a non-negative int, got {seed!r}")
    return int(seed)


def finite_float(value):
    """``value`` (any real number: int, float, Fraction, NumPy scalar; not a bool) as a finite
    float, or None. np.isfinite cannot take Fractions or ints beyond float's range."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return None
    try:
        value_f = float(value)
    except (OverflowError, ValueError):  # an int or Fraction beyond float's range
        return None
    return value_f if math.isfinite(value_f) else None  # np.longdouble past float64's range


def check_non_negative_number(value, name):
    value_f = finite_float(value)
    if value_f is None or value_f < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value_f


def check_real(value, name, *, low=None, low_open=False, high=None, high_open=False):
    """Return ``value`` (any real number: int, float, Fraction, NumPy scalar) as a finite float
    within the given bounds, or raise ValueError naming ``name`` and the allowed range."""
    value_f = finite_float(value)
    if value_f is None:
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    too_low = low is not None and (value_f <= low if low_open else value_f < low)
    too_high = high is not None and (value_f >= high if high_open else value_f > high)
    if too_low or too_high:
        parts = []
        if low is not None:
            parts.append(("> " if low_open else ">= ") + f"{low:g}")
        if high is not None:
            parts.append(("< " if high_open else "<= ") + f"{high:g}")
        raise ValueError(f"{name} must be {' and '.join(parts)}, got {value!r}")
    return value_f
