"""Layers. A Dense layer's parameters are NumPy views into its model's one flat buffer."""
import numpy as np

from ._validation import _all_finite, _as_array, check_non_negative_number, finite_float

#: Activation names and their codes in the C core (csrc/gd_types.h, gd_act).
ACTIVATIONS = {"identity": 0, "relu": 1, "leaky_relu": 2, "sigmoid": 3, "tanh": 4, "gelu": 5}
#: Slope of leaky_relu for negative inputs (torch's default).
NEGATIVE_SLOPE = 0.01
#: Weight initializers a Dense layer accepts.
INITIALIZERS = ("auto", "he_uniform", "he_normal", "glorot_uniform", "glorot_normal", "zeros")
_ACTIVATION_ALIASES = {"linear": "identity", "none": "identity"}


def check_activation(activation, name="activation"):
    """Return the canonical activation name, or raise ValueError naming the allowed ones."""
    if activation is None:
        return "identity"
    if isinstance(activation, str):
        canonical = activation.lower()
        canonical = _ACTIVATION_ALIASES.get(canonical, canonical)
        if canonical in ACTIVATIONS:
            return canonical
    raise ValueError(f"{name} must be one of {sorted(ACTIVATIONS)}, got {activation!r}")


def _check_size(value, name):
    # BLAS takes 32-bit sizes: a layer wider than that could not be multiplied
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or not 1 <= value <= 2**31 - 1:
        raise ValueError(f"{name} must be a positive int below 2**31, got {value!r}")
    return int(value)


def _check_param(name, value, shape, dtype):
    """``value`` as a finite array of ``shape`` in ``dtype``, or an error naming ``name``.
    ``value`` may be anything ``view[...] = value`` broadcasts to ``shape`` (a number, a row,
    leading axes of length 1), as the Dense docstring promises."""
    array = _as_array(value, name)
    message = (f"{name} must be a number or a numeric array that broadcasts to shape {shape}, "
               f"got {array.dtype} of shape {array.shape}")
    if array.dtype.kind not in "biuf":  # object (an int beyond int64), complex, str
        raise ValueError(message)
    result = np.empty(shape, dtype)
    try:
        # the assignment itself decides what broadcasts, so that exactly what layer.W[...]
        # takes is taken; an overflow to inf is reported just below
        with np.errstate(over="ignore"):
            result[...] = array
    except ValueError:
        raise ValueError(message) from None
    if not _all_finite(result):
        raise ValueError(f"{name} contains NaN or infinity (in {result.dtype})")
    return result


def _check_init(init):
    if not isinstance(init, str) or init not in INITIALIZERS:
        raise ValueError(f"init must be one of {list(INITIALIZERS)}, got {init!r}")
    return init


class Dense:
    """Fully connected layer ``y = act(x @ W + b)``.

    Parameters
    ----------
    n_in : int
        Number of input features.
    n_out : int
        Number of outputs.
    activation : str, default="identity"
        One of identity, relu, leaky_relu (slope 0.01 below zero), sigmoid, tanh, gelu (exact
        erf form, as torch). The softmax of a classifier is not an activation: it belongs to the
        cross-entropy loss, which takes the logits.
    init : str, default="auto"
        Weight initialization, drawn from the model's seeded generator:
        ``he_uniform`` U(±√(6/n_in)), ``he_normal`` N(0, 2/n_in), ``glorot_uniform``
        U(±√(6/(n_in + n_out))), ``glorot_normal`` N(0, 2/(n_in + n_out)), ``zeros``; "auto" is
        he_uniform for the relu family and gelu, glorot_uniform otherwise. Biases start at zero.
    l1, l2 : float, default=0.0
        This layer's weight penalty ``l1·Σ|W| + ½·l2·ΣW²``, added to fit's global l1/l2.

    Attributes
    ----------
    W : ndarray of shape (n_in, n_out)
        Weights, a view into the model's parameter buffer (None until the layer is in a model).
        Assigning ``layer.W = value`` copies into that view, as ``layer.W[...] = value`` does:
        ``value`` may be a number or any array-like of bools, ints or floats that broadcasts
        to the shape (``layer.b = 0`` zeroes the biases). A value that is NaN or infinite, or
        becomes infinite in the model's dtype, is refused with ValueError and changes nothing.
        Writes into the view itself (``layer.W[0, 0] = x``, ``layer.W *= x``) are NumPy's,
        unchecked: a NaN or infinity written so is reported by the next predict or training
        call, which names the weight.
    b : ndarray of shape (n_out,)
        Biases, a view into the same buffer, assigned as W.

    Once the layer is in a model, its sizes, activation, init and penalties are fixed (the
    model built its network from them): assigning one raises AttributeError.
    """

    #: The check of each setting, run on every assignment (the constructor's and later ones).
    _CHECKS = {"n_in": lambda value: _check_size(value, "n_in"),
               "n_out": lambda value: _check_size(value, "n_out"),
               "activation": check_activation,
               "init": _check_init,
               "l1": lambda value: check_non_negative_number(value, "l1"),
               "l2": lambda value: check_non_negative_number(value, "l2")}

    def __setattr__(self, name, value):
        in_model = self.__dict__.get("W") is not None and self.__dict__.get("b") is not None
        if in_model and name in ("W", "b"):
            # W and b are views of the model's parameters; rebinding them to another array
            # would leave the model training weights that get_weights no longer shows
            view = self.__dict__[name]
            view[...] = _check_param(name, value, view.shape, view.dtype)
            return
        if name in ("W", "b") and value is not None:
            # not yet in a model: the model creates and initializes both (see _bind); an array
            # set here would not be the model's, and get_weights would not show it
            raise AttributeError(f"{name} is None until the layer is in a model, which creates "
                                 f"it: build the model, then assign layer.{name}")
        if name in self._CHECKS:
            if in_model:
                raise AttributeError(f"{name} is fixed once the layer is in a model, which built "
                                     f"its network from it; build a new model with "
                                     f"Dense(..., {name}=...)")
            value = self._CHECKS[name](value)
        object.__setattr__(self, name, value)

    def _bind(self, W, b):
        """Make W and b the views of a model's parameters (Sequential calls this once)."""
        self.__dict__.update(W=W, b=b)

    def __init__(self, n_in, n_out, activation="identity", *, init="auto", l1=0.0, l2=0.0):
        self.n_in = n_in
        self.n_out = n_out
        self.activation = activation
        self.init = init
        self.l1 = l1
        self.l2 = l2
        self.W = None
        self.b = None

    @property
    def n_params(self):
        """Number of parameters, ``(n_in + 1) · n_out``: the weights and the biases."""
        return (self.n_in + 1) * self.n_out

    def _initial_weights(self, rng, dtype):
        init = self.init
        if init == "auto":
            init = "he_uniform" if self.activation in ("relu", "leaky_relu", "gelu") else "glorot_uniform"
        shape = (self.n_in, self.n_out)
        if init == "zeros":
            return np.zeros(shape, dtype=dtype)
        fan = self.n_in if init.startswith("he") else self.n_in + self.n_out
        if init.endswith("uniform"):
            bound = np.sqrt(6.0 / fan)
            return rng.uniform(-bound, bound, size=shape).astype(dtype)
        return rng.normal(0.0, np.sqrt(2.0 / fan), size=shape).astype(dtype)

    def __repr__(self):
        return f"Dense({self.n_in}, {self.n_out}, activation={self.activation!r})"


class Dropout:
    """Inverted dropout on the output of the Dense layer before it, while training.

    During fit and train_step each activation is zeroed with probability ``rate`` and the others
    scaled by ``1 / (1 − rate)``; predict, evaluate and loss_and_grad use the whole network. The
    masks come from a hash of (seed, epoch, batch, layer, row, column) in the C core: the same
    seed gives the same masks, and so the same bits, for any thread count.

    Parameters
    ----------
    rate : float
        Probability of dropping an activation, in [0, 1). Fixed: a model builds its network from
        it (and one Dropout may sit in several models).
    """

    def __init__(self, rate):
        value = finite_float(rate)
        if value is None or not 0 <= value < 1:
            raise ValueError(f"rate must be a number in [0, 1), got {rate!r}")
        object.__setattr__(self, "rate", value)

    def __setattr__(self, name, value):
        # a later rate would be ignored by the models built with this one, yet saved with them
        raise AttributeError(f"a Dropout's {name} is fixed; create a new Dropout")

    def __repr__(self):
        return f"Dropout({self.rate})"
