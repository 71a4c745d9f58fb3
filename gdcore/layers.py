"""Layers. A Dense layer's parameters are NumPy views into its model's one flat buffer."""
import numpy as np

#: Activation names and their codes in the C core (csrc/gd_types.h, gd_act).
ACTIVATIONS = {"identity": 0, "relu": 1, "leaky_relu": 2, "sigmoid": 3, "tanh": 4, "gelu": 5}
#: Slope of leaky_relu for negative inputs (torch's default).
NEGATIVE_SLOPE = 0.01
_ACTIVATION_ALIASES = {"linear": "identity", "none": "identity"}


def check_activation(activation):
    """Return the canonical activation name, or raise ValueError naming the allowed ones."""
    if activation is None:
        return "identity"
    if isinstance(activation, str):
        name = activation.lower()
        name = _ACTIVATION_ALIASES.get(name, name)
        if name in ACTIVATIONS:
            return name
    raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")


def _check_size(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


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
    init : {"auto", "he_uniform", "glorot_uniform"}, default="auto"
        Weight initialization; "auto" is He (Kaiming) uniform, ``U(±sqrt(6 / n_in))``, for the
        relu family and gelu, and Glorot uniform, ``U(±sqrt(6 / (n_in + n_out)))``, otherwise.
        Biases start at zero.

    Attributes
    ----------
    W : ndarray of shape (n_in, n_out)
        Weights, a view into the model's parameter buffer (None until the layer is in a model).
    b : ndarray of shape (n_out,)
        Biases, a view into the same buffer.
    """

    def __init__(self, n_in, n_out, activation="identity", *, init="auto"):
        self.n_in = _check_size(n_in, "n_in")
        self.n_out = _check_size(n_out, "n_out")
        self.activation = check_activation(activation)
        if init not in ("auto", "he_uniform", "glorot_uniform"):
            raise ValueError(f"init must be 'auto', 'he_uniform' or 'glorot_uniform', got {init!r}")
        self.init = init
        self.W = None
        self.b = None

    @property
    def n_params(self):
        return (self.n_in + 1) * self.n_out

    def _initial_weights(self, rng, dtype):
        init = self.init
        if init == "auto":
            init = "he_uniform" if self.activation in ("relu", "leaky_relu", "gelu") else "glorot_uniform"
        fan = self.n_in if init == "he_uniform" else self.n_in + self.n_out
        bound = np.sqrt(6.0 / fan)
        return rng.uniform(-bound, bound, size=(self.n_in, self.n_out)).astype(dtype)

    def __repr__(self):
        return f"Dense({self.n_in}, {self.n_out}, activation={self.activation!r})"
